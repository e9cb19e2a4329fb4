/**
 * Loader hooks (module.register, run on Node's hooks thread) that append the URL of every
 * module a process resolves to a file, as soon as it is resolved: nothing depends on the
 * process exiting cleanly. Registered by module-log-register.ts.
 */
import { appendFileSync } from 'node:fs';

interface ResolveResult {
  url: string;
}
type NextResolve = (specifier: string, context: unknown) => Promise<ResolveResult>;

let logFile: string | undefined;

/** Receives the log file from module.register's `data`. */
export function initialize(data: { logFile: string }): void {
  logFile = data.logFile;
}

/** Resolves as Node would, then records the result. */
export async function resolve(specifier: string, context: unknown, nextResolve: NextResolve): Promise<ResolveResult> {
  const result = await nextResolve(specifier, context);
  if (logFile !== undefined) appendFileSync(logFile, `${result.url}\n`);
  return result;
}
