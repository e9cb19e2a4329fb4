import { describe, expect, it } from '@jest/globals';
import { CpuSlices } from '../../lib/cpu-slices.js';

function busy(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until) {
    // spin: a CPU-bound step
  }
}

describe('CpuSlices', () => {
  it('runs steps in order and resolves each with its result', async () => {
    const slices = new CpuSlices(5);
    const order: number[] = [];
    const results = await Promise.all([1, 2, 3].map((n) => slices.run(() => (order.push(n), n * 10))));
    expect(results).toEqual([10, 20, 30]);
    expect(order).toEqual([1, 2, 3]);
    expect(slices.pending).toBe(0);
  });

  it('rejects with what a step threw and goes on with the next', async () => {
    const slices = new CpuSlices(5);
    const failing = slices.run(() => {
      throw new Error('bad snapshot');
    });
    const next = slices.run(() => 'ok');
    await expect(failing).rejects.toThrow('bad snapshot');
    await expect(next).resolves.toBe('ok');
  });

  it('lets the event loop turn between slices: a timer fires while a burst is still queued', async () => {
    const slices = new CpuSlices(5);
    const done: number[] = [];
    let pendingWhenTimerFired = -1;
    const timer = new Promise<void>((resolve) =>
      setTimeout(() => {
        pendingWhenTimerFired = slices.pending;
        resolve();
      }, 1),
    );
    // 40 steps of 2 ms: 80 ms in one turn without slices.
    const burst = Promise.all(Array.from({ length: 40 }, (_, i) => slices.run(() => (busy(2), done.push(i)))));
    await Promise.all([timer, burst]);
    expect(done).toHaveLength(40);
    expect(pendingWhenTimerFired).toBeGreaterThan(0);
  });
});
