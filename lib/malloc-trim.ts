/**
 * glibc's malloc_trim(0): hands the free memory of every malloc arena back to the OS. Node's
 * buffers, HTTP parsers and strings outside the V8 heap are malloc'ed; after a burst glibc keeps
 * what they freed (~6 MiB after 10 s of 64 clients on the agent), and a heap trim
 * (lib/heap-trim.ts) frees more of it. Loaded on first use where koffi already is (the NVML
 * thread); on a libc without it (musl) it does nothing.
 */
import { koffi } from './koffi.js';

type MallocTrim = (pad: number) => number;
let mallocTrim: MallocTrim | null | undefined;

/** Returns free malloc memory to the OS; false where libc has no malloc_trim or nothing was returned. */
export function releaseFreeMemory(): boolean {
  if (mallocTrim === undefined) {
    try {
      mallocTrim = koffi().load('libc.so.6').func('int malloc_trim(size_t pad)') as MallocTrim;
    } catch {
      // not glibc: its allocator has no such call
      mallocTrim = null;
    }
  }
  return mallocTrim !== null && mallocTrim(0) === 1;
}
