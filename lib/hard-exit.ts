/**
 * The last resort of a shutdown whose grace period ran out while a native call still blocks
 * (a hung NVML call holds a libuv pool thread): `process.exit()` would wait forever for that
 * thread in libuv's exit-time cleanup, so the process ends with `_exit(2)` instead.
 */
import { koffi } from './koffi.js';

type ExitFunction = (code: number) => void;
let exitNow: ExitFunction | undefined;

/** Ends the process at once with `code`, skipping exit handlers (stdout/stderr pipes are synchronous on Linux). */
export function hardExit(code: number): never {
  exitNow ??= koffi().load('libc.so.6').func('void _exit(int)') as ExitFunction;
  exitNow(code);
  // _exit does not return; this satisfies the type checker and covers a libc without _exit.
  process.exit(code);
}
