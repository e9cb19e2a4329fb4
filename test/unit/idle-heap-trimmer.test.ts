/** agent/idle-heap-trimmer: trims once per idle spell after requests, never while they keep coming. */
import { describe, expect, it } from '@jest/globals';
import { IdleHeapTrimmer } from '../../agent/idle-heap-trimmer.js';
import { HeapTrim, type HeapTrimResult } from '../../lib/heap-trim.js';

/** A trimmer over a heap that grows by 2 MiB per request and shrinks back on gc. */
function setup(): {
  trimmer: IdleHeapTrimmer;
  request: () => void;
  trimmed: HeapTrimResult[];
  nvmlAsked: boolean[];
} {
  const base = 8 * 1024 * 1024;
  let bytes = base;
  const trim = new HeapTrim(
    () => (bytes = base),
    1024 * 1024,
    () => bytes,
  );
  const trimmed: HeapTrimResult[] = [];
  const nvmlAsked: boolean[] = [];
  const trimmer = new IdleHeapTrimmer({
    idleMs: 1000,
    trim,
    trimNvmlThread: (mainTrimmed) => nvmlAsked.push(mainTrimmed),
    onTrimmed: (r) => trimmed.push(r),
  });
  const request = (): void => {
    bytes += 2 * 1024 * 1024;
    trimmer.touch();
  };
  return { trimmer, request, trimmed, nvmlAsked };
}

describe('IdleHeapTrimmer', () => {
  it('does nothing before any request', () => {
    const { trimmer, trimmed, nvmlAsked } = setup();
    trimmer.check();
    trimmer.check();
    expect(trimmed).toEqual([]);
    expect(nvmlAsked).toEqual([]);
  });

  it('waits a whole interval without requests, trims both threads once, then waits for new requests', () => {
    const { trimmer, request, trimmed, nvmlAsked } = setup();
    request();
    request();
    trimmer.check(); // the interval saw requests: busy
    expect(nvmlAsked).toEqual([]);
    trimmer.check(); // a quiet interval: trim
    expect(trimmed).toEqual([{ beforeBytes: 12 * 1024 * 1024, afterBytes: 8 * 1024 * 1024 }]);
    expect(nvmlAsked).toEqual([true]);
    trimmer.check(); // still quiet, nothing new: no second trim
    trimmer.check();
    expect(nvmlAsked).toEqual([true]);
  });

  it('never trims while every interval sees a request', () => {
    const { trimmer, request, nvmlAsked } = setup();
    for (let i = 0; i < 10; i++) {
      request();
      trimmer.check();
    }
    expect(nvmlAsked).toEqual([]);
  });

  it("asks the NVML thread even when this thread's heap did not grow (its own may have)", () => {
    const trimmed: HeapTrimResult[] = [];
    const nvmlAsked: boolean[] = [];
    const bytes = 8 * 1024 * 1024;
    const trimmer = new IdleHeapTrimmer({
      idleMs: 1000,
      trim: new HeapTrim(
        () => undefined,
        1024 * 1024,
        () => bytes,
      ),
      trimNvmlThread: (mainTrimmed) => nvmlAsked.push(mainTrimmed),
      onTrimmed: (r) => trimmed.push(r),
    });
    trimmer.touch();
    trimmer.check();
    trimmer.check();
    expect(trimmed).toEqual([]);
    expect(nvmlAsked).toEqual([false]);
  });

  it('checks on its own timer once started, and stops', async () => {
    const nvmlAsked: boolean[] = [];
    const trimmer = new IdleHeapTrimmer({
      idleMs: 20,
      trim: undefined,
      trimNvmlThread: (m) => nvmlAsked.push(m),
      onTrimmed: () => undefined,
    });
    trimmer.start();
    trimmer.touch();
    const deadline = Date.now() + 5_000;
    while (nvmlAsked.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    trimmer.stop();
    expect(nvmlAsked).toEqual([false]);
    trimmer.touch();
    await new Promise((r) => setTimeout(r, 100));
    expect(nvmlAsked).toEqual([false]);
  });
});
