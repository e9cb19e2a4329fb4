/**
 * Gives back the heap pages a burst of work committed. V8 keeps the pages a load grew a heap to
 * (the agent's two heaps go from ~17 to ~34 MiB of pages under 64 clients, with ~14 MB live),
 * and its memory reducer starts only seconds after the allocation rate drops, then works
 * incrementally: a process looked at 3 s after a burst still holds them all. One full collection,
 * run while the thread is idle, returns them (bench/README.md, "Agent, 2026-12-05"); the NVML
 * thread then gives free malloc memory back too (lib/malloc-trim.ts).
 *
 * It needs `gc`, which node exposes only with --expose-gc (the agent image passes it); without it
 * nothing is trimmed.
 */
import { getHeapStatistics } from 'node:v8';

/** A trim runs only when the committed heap grew at least this much since the last one: a full collection is not free. */
export const HEAP_TRIM_MIN_GROWTH_BYTES = 1024 * 1024;

/** The committed heap before and after one trim. */
export interface HeapTrimResult {
  readonly beforeBytes: number;
  readonly afterBytes: number;
}

/** This thread's committed V8 heap. */
export function committedHeapBytes(): number {
  return getHeapStatistics().total_heap_size;
}

/** node's `gc` when it runs with --expose-gc (in every thread of the process), else undefined. */
export function exposedGc(): (() => void) | undefined {
  const gc = globalThis.gc;
  return typeof gc === 'function' ? () => void gc() : undefined;
}

/** Runs a full collection of this thread's heap when it grew since the last one. */
export class HeapTrim {
  private baselineBytes: number;

  constructor(
    private readonly gc: () => void,
    private readonly minGrowthBytes = HEAP_TRIM_MIN_GROWTH_BYTES,
    private readonly heapBytes: () => number = committedHeapBytes,
  ) {
    this.baselineBytes = heapBytes();
  }

  /** Collects when the heap grew by at least the minimum since the last trim (or since construction). */
  trimIfGrown(): HeapTrimResult | undefined {
    const beforeBytes = this.heapBytes();
    if (beforeBytes - this.baselineBytes < this.minGrowthBytes) return undefined;
    // The first collection frees the burst's objects; V8 compacts the pages they leave sparse
    // and gives back the empty ones only in the next (measured: 13.8 → 13.8 MiB, then → 6.1).
    this.gc();
    this.gc();
    const afterBytes = this.heapBytes();
    // what is still committed now is live data, not a burst's leftovers: growth counts from here
    this.baselineBytes = afterBytes;
    return { beforeBytes, afterBytes };
  }
}
