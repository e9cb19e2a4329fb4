/** lib/heap-trim: a full collection only when the heap grew, twice, and counted from what was left. */
import { afterEach, describe, expect, it } from '@jest/globals';
import { exposedGc, HeapTrim, HEAP_TRIM_MIN_GROWTH_BYTES } from '../../lib/heap-trim.js';

const MiB = 1024 * 1024;

/** A heap of `bytes`; each gc() leaves `afterGc` of it. */
function fakeHeap(bytes: number, afterGc: number[]): { heap: { bytes: number }; gc: () => void; gcs: () => number } {
  const heap = { bytes };
  let gcs = 0;
  return {
    heap,
    gc: () => {
      heap.bytes = afterGc[gcs] ?? heap.bytes;
      gcs += 1;
    },
    gcs: () => gcs,
  };
}

describe('HeapTrim', () => {
  it('does not collect while the heap grew less than the minimum since construction', () => {
    const { heap, gc, gcs } = fakeHeap(10 * MiB, []);
    const trim = new HeapTrim(gc, MiB, () => heap.bytes);
    heap.bytes += MiB - 1;
    expect(trim.trimIfGrown()).toBeUndefined();
    expect(gcs()).toBe(0);
  });

  it('collects twice once it grew (V8 gives back the emptied pages in the second), and reports before and after', () => {
    const { heap, gc, gcs } = fakeHeap(10 * MiB, [18 * MiB, 11 * MiB]);
    const trim = new HeapTrim(gc, MiB, () => heap.bytes);
    heap.bytes = 20 * MiB;
    expect(trim.trimIfGrown()).toEqual({ beforeBytes: 20 * MiB, afterBytes: 11 * MiB });
    expect(gcs()).toBe(2);
  });

  it('counts growth from what the last trim left: live data that stayed is not trimmed again', () => {
    const { heap, gc, gcs } = fakeHeap(10 * MiB, [15 * MiB, 15 * MiB]);
    const trim = new HeapTrim(gc, MiB, () => heap.bytes);
    heap.bytes = 16 * MiB;
    expect(trim.trimIfGrown()).toEqual({ beforeBytes: 16 * MiB, afterBytes: 15 * MiB });
    heap.bytes = 15.5 * MiB;
    expect(trim.trimIfGrown()).toBeUndefined();
    expect(gcs()).toBe(2);
  });

  it('defaults to a minimum growth of 1 MiB and the committed V8 heap', () => {
    expect(HEAP_TRIM_MIN_GROWTH_BYTES).toBe(MiB);
    let gcs = 0;
    const trim = new HeapTrim(() => (gcs += 1));
    // this thread's heap does not grow by a MiB between two lines
    expect(trim.trimIfGrown()).toBeUndefined();
    expect(gcs).toBe(0);
  });
});

describe('exposedGc', () => {
  const original = globalThis.gc;
  afterEach(() => {
    globalThis.gc = original;
  });

  it("is node's gc when --expose-gc put it there, else undefined", () => {
    globalThis.gc = undefined;
    expect(exposedGc()).toBeUndefined();
    let calls = 0;
    globalThis.gc = (() => {
      calls += 1;
    }) as NodeJS.GCFunction;
    const gc = exposedGc();
    expect(gc).toBeDefined();
    gc?.();
    expect(calls).toBe(1);
  });
});
