/** Which modules a child process loaded: run it with moduleLogEnv, then read the log with readModuleLog. */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { repoRoot } from '../../dev/control-plane/binaries.js';

/** Environment variables that make a Node child process record every module it loads into `logFile`. */
export function moduleLogEnv(logFile: string): Record<string, string> {
  const register = pathToFileURL(path.join(repoRoot, 'dist', 'test', 'support', 'module-log-register.js')).href;
  return { NODE_OPTIONS: `--import ${register}`, GPUDIAG_TEST_MODULE_LOG: logFile };
}

/** The distinct module URLs recorded in `logFile` (file:, node: and data: URLs). */
export async function readModuleLog(logFile: string): Promise<string[]> {
  const text = await readFile(logFile, 'utf8');
  return [...new Set(text.split('\n').filter((line) => line !== ''))].sort();
}

/** The npm packages among `urls` (`@scope/name` or `name`), each once. */
export function packagesIn(urls: readonly string[]): string[] {
  const names = urls.flatMap((url) => {
    const match = /.*\/node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(url);
    return match?.[1] === undefined ? [] : [match[1]];
  });
  return [...new Set(names)].sort();
}
