/**
 * `node --import` entry that records what a process loads into GPUDIAG_TEST_MODULE_LOG: ES
 * modules through loader hooks as they resolve, and CommonJS modules (which Node 20's hooks do
 * not see when required from CommonJS) from the require cache at exit. Used through
 * module-log.ts; never part of production code.
 */
import { appendFileSync } from 'node:fs';
import { createRequire, register } from 'node:module';
import { pathToFileURL } from 'node:url';

const logFile = process.env['GPUDIAG_TEST_MODULE_LOG'];
if (logFile !== undefined && logFile !== '') {
  register('./module-log-hooks.js', import.meta.url, { data: { logFile } });
  const cache = createRequire(import.meta.url).cache;
  process.on('exit', () =>
    appendFileSync(
      logFile,
      Object.keys(cache)
        .map((file) => `${pathToFileURL(file).href}\n`)
        .join(''),
    ),
  );
}
