import { describe, expect, it } from '@jest/globals';
import { setTimeout as delay } from 'node:timers/promises';
import { runBounded } from './pool.js';

describe('runBounded', () => {
  it.each([1, 3, 8, 50])('never has more than %i in flight and runs every item', async (concurrency) => {
    const items = Array.from({ length: 40 }, (_, i) => i);
    let inFlight = 0;
    let observedPeak = 0;
    const finished: number[] = [];
    const stats = await runBounded(
      items,
      concurrency,
      async (item) => {
        inFlight += 1;
        observedPeak = Math.max(observedPeak, inFlight);
        await delay(1 + (item % 3));
        inFlight -= 1;
        return item * 2;
      },
      new AbortController().signal,
      (result, item) => {
        expect(result).toBe(item * 2);
        finished.push(item);
      },
    );
    expect(observedPeak).toBeLessThanOrEqual(concurrency);
    expect(stats.peakInFlight).toBe(observedPeak);
    expect(stats.peakInFlight).toBe(Math.min(concurrency, items.length));
    expect(stats).toMatchObject({ started: 40, completed: 40, notStarted: 0 });
    expect([...finished].sort((a, b) => a - b)).toEqual(items);
  });

  it('streams results as they finish, not at the end', async () => {
    const order: string[] = [];
    await runBounded(
      [30, 1],
      2,
      async (ms) => {
        await delay(ms);
        order.push(`done ${ms}`);
        return ms;
      },
      new AbortController().signal,
      (ms) => order.push(`result ${ms}`),
    );
    expect(order).toEqual(['done 1', 'result 1', 'done 30', 'result 30']);
  });

  it('starts nothing more once the signal aborts, and waits for the in-flight workers', async () => {
    const controller = new AbortController();
    const started: number[] = [];
    const run = runBounded(
      Array.from({ length: 10 }, (_, i) => i),
      2,
      async (item, _index, signal) => {
        started.push(item);
        // The abort ends the wait early, which is the point: the worker then returns normally.
        await delay(1_000, undefined, { signal }).catch((err: unknown) => expect(err).toMatchObject({ name: 'AbortError' }));
        return item;
      },
      controller.signal,
    );
    await delay(20);
    const t0 = Date.now();
    controller.abort(new Error('deadline'));
    const stats = await run;
    expect(Date.now() - t0).toBeLessThan(500);
    expect(started).toEqual([0, 1]);
    expect(stats).toMatchObject({ started: 2, completed: 2, notStarted: 8, peakInFlight: 2 });
  });

  it('handles an empty list', async () => {
    expect(await runBounded([], 4, async () => 1, new AbortController().signal)).toEqual({
      started: 0,
      completed: 0,
      notStarted: 0,
      peakInFlight: 0,
    });
  });

  it('rejects with the first worker failure as cause, after the others settle', async () => {
    const boom = new Error('boom');
    let settled = 0;
    const run = runBounded(
      [1, 2, 3, 4, 5],
      2,
      async (item) => {
        await delay(item * 5);
        settled += 1;
        if (item === 1) throw boom;
        return item;
      },
      new AbortController().signal,
    );
    await expect(run).rejects.toMatchObject({ message: 'bounded run: worker for item 0 failed', cause: boom });
    expect(settled).toBe(2);
  });

  it('rejects a bad concurrency', async () => {
    await expect(runBounded([1], 0, async () => 1, new AbortController().signal)).rejects.toThrow('concurrency must be a positive integer');
  });
});
