import { describe, expect, it } from '@jest/globals';
import { StalledError, WaitingError } from './errors.js';
import { FakeClock, flushMicrotasks } from './fake-clock.js';
import { WorkQueue, type ReconcileOutcome, type ReconcileResult } from './work-queue.js';

interface Deferred {
  resolve: (r?: ReconcileResult) => void;
  reject: (err: unknown) => void;
  promise: Promise<ReconcileResult | void>;
}

function deferred(): Deferred {
  let resolve!: (r?: ReconcileResult) => void;
  let reject!: (err: unknown) => void;
  const promise = new Promise<ReconcileResult | void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { resolve, reject, promise };
}

/** A handler whose runs the test finishes by hand. */
function manualHandler(): {
  calls: { key: string; signal: AbortSignal; run: Deferred }[];
  handler: (key: string, signal: AbortSignal) => Promise<ReconcileResult | void>;
  running: () => number;
  peak: () => number;
} {
  const calls: { key: string; signal: AbortSignal; run: Deferred }[] = [];
  let running = 0;
  let peak = 0;
  return {
    calls,
    running: () => running,
    peak: () => peak,
    handler: async (key, signal) => {
      const run = deferred();
      calls.push({ key, signal, run });
      running++;
      peak = Math.max(peak, running);
      try {
        return await run.promise;
      } finally {
        running--;
      }
    },
  };
}

describe('WorkQueue', () => {
  it('deduplicates a key added many times while queued', async () => {
    const clock = new FakeClock();
    const q = new WorkQueue({ clock, concurrency: 1 });
    const h = manualHandler();
    q.add('a');
    q.add('b');
    q.add('a');
    q.add('a');
    expect(q.depth).toBe(2);
    q.start(h.handler);
    await flushMicrotasks();
    expect(h.calls.map((c) => c.key)).toEqual(['a']);
    h.calls[0]?.run.resolve();
    await flushMicrotasks();
    h.calls[1]?.run.resolve();
    await flushMicrotasks();
    expect(h.calls.map((c) => c.key)).toEqual(['a', 'b']);
    expect(q.depth).toBe(0);
  });

  it('never runs one key concurrently: an add during processing runs once after', async () => {
    const clock = new FakeClock();
    const q = new WorkQueue({ clock, concurrency: 4 });
    const h = manualHandler();
    q.start(h.handler);
    q.add('ns/x');
    await flushMicrotasks();
    expect(h.calls).toHaveLength(1);
    q.add('ns/x');
    q.add('ns/x');
    await flushMicrotasks();
    expect(h.calls).toHaveLength(1);
    expect(h.running()).toBe(1);
    h.calls[0]?.run.resolve();
    await flushMicrotasks();
    expect(h.calls).toHaveLength(2);
    h.calls[1]?.run.resolve();
    await flushMicrotasks();
    expect(h.calls).toHaveLength(2);
    expect(h.peak()).toBe(1);
  });

  it('bounds the number of handlers running at once', async () => {
    const clock = new FakeClock();
    const q = new WorkQueue({ clock, concurrency: 3 });
    let running = 0;
    let peak = 0;
    q.start(async () => {
      running++;
      peak = Math.max(peak, running);
      await new Promise((r) => setTimeout(r, 1 + Math.floor(Math.random() * 3)));
      running--;
    });
    for (let i = 0; i < 40; i++) q.add(`k${i}`);
    for (let i = 0; i < 200 && (q.depth > 0 || q.inFlight > 0); i++) await new Promise((r) => setTimeout(r, 2));
    expect(q.depth).toBe(0);
    expect(q.inFlight).toBe(0);
    expect(peak).toBe(3);
  });

  it('backs off per key exponentially up to the cap, and forget resets it', () => {
    const q = new WorkQueue({ clock: new FakeClock(), backoff: { baseMs: 100, maxMs: 5 * 60_000 } });
    expect([0, 1, 2, 3, 10, 11, 12, 100, 5000].map((n) => q.backoffDelay(n))).toEqual([
      100, 200, 400, 800, 102_400, 204_800, 300_000, 300_000, 300_000,
    ]);
    q.addRateLimited('a');
    q.addRateLimited('a');
    expect(q.numRequeues('a')).toBe(2);
    q.forget('a');
    expect(q.numRequeues('a')).toBe(0);
  });

  it('retries a failing key after 100, 200, 400 ms and resets after a success', async () => {
    const clock = new FakeClock();
    const outcomes: ReconcileOutcome[] = [];
    const q = new WorkQueue({ clock, onOutcome: (o) => outcomes.push(o) });
    const runsAt: number[] = [];
    let failuresLeft = 3;
    q.start(async () => {
      runsAt.push(clock.now());
      if (failuresLeft-- > 0) throw new Error('agent unreachable');
      return {};
    });
    q.add('k');
    await flushMicrotasks();
    await clock.advance(99);
    expect(runsAt).toEqual([0]);
    await clock.advance(1);
    expect(runsAt).toEqual([0, 100]);
    await clock.advance(200);
    expect(runsAt).toEqual([0, 100, 300]);
    await clock.advance(400);
    expect(runsAt).toEqual([0, 100, 300, 700]);
    expect(q.numRequeues('k')).toBe(0);
    expect(outcomes.map((o) => o.kind)).toEqual(['retry', 'retry', 'retry', 'success']);
    expect(outcomes[2]).toMatchObject({ kind: 'retry', requeueAfterMs: 400, message: 'agent unreachable' });
  });

  it('requeues after requeueAfterMs, and a sooner schedule wins', async () => {
    const clock = new FakeClock();
    const q = new WorkQueue({ clock });
    const runsAt: number[] = [];
    q.start(async () => {
      runsAt.push(clock.now());
      return { requeueAfterMs: 1_000 };
    });
    q.add('k');
    await flushMicrotasks();
    expect(runsAt).toEqual([0]);
    expect(q.depth).toBe(1); // scheduled
    q.addAfter('k', 5_000); // later: ignored
    q.addAfter('k', 300); // sooner: wins
    await clock.advance(300);
    expect(runsAt).toEqual([0, 300]);
    await clock.advance(1_000);
    expect(runsAt).toEqual([0, 300, 1_300]);
    q.add('k'); // now beats the pending schedule
    await flushMicrotasks();
    expect(runsAt).toEqual([0, 300, 1_300, 1_300]);
    await clock.advance(999);
    expect(runsAt).toHaveLength(4);
    await clock.advance(1);
    expect(runsAt).toHaveLength(5);
    await q.shutDown();
  });

  it('does not retry a stalled key; retries a waiting key after its delay without backoff', async () => {
    const clock = new FakeClock();
    const outcomes: ReconcileOutcome[] = [];
    const q = new WorkQueue({ clock, onOutcome: (o) => outcomes.push(o) });
    const runs: string[] = [];
    q.start(async (key) => {
      runs.push(`${key}@${clock.now()}`);
      if (key === 'stalled')
        throw new Error('reconcile failed', { cause: new StalledError('NoMatchingNodes', 'no node matches the selector') });
      if (runs.filter((r) => r.startsWith('waiting')).length === 1) throw new WaitingError('WaitingForAgents', 'agents starting', 2_000);
      return {};
    });
    q.add('stalled');
    q.add('waiting');
    await flushMicrotasks();
    await clock.advance(10 * 60_000);
    expect(runs).toEqual(['stalled@0', 'waiting@0', 'waiting@2000']);
    expect(outcomes.find((o) => o.key === 'stalled')).toMatchObject({ kind: 'stalled', reason: 'NoMatchingNodes' });
    expect(outcomes.find((o) => o.key === 'waiting')).toMatchObject({ kind: 'waiting', reason: 'WaitingForAgents', requeueAfterMs: 2_000 });
    expect(q.numRequeues('waiting')).toBe(0);
    expect(q.depth).toBe(0);
  });

  it('shutDown aborts running handlers, waits for them, and stops accepting keys', async () => {
    const clock = new FakeClock();
    const outcomes: ReconcileOutcome[] = [];
    const q = new WorkQueue({ clock, concurrency: 2, onOutcome: (o) => outcomes.push(o) });
    let finished = 0;
    const handler = async (_key: string, signal: AbortSignal): Promise<void> => {
      await new Promise<void>((resolve) => signal.addEventListener('abort', () => setTimeout(resolve, 20), { once: true }));
      finished++;
      throw signal.reason;
    };
    q.start(handler);
    q.add('a');
    q.add('b');
    q.add('c');
    q.addAfter('d', 1_000);
    await flushMicrotasks();
    expect(q.inFlight).toBe(2);
    const drained = await q.shutDown(5_000);
    expect(drained).toBe(true);
    expect(finished).toBe(2);
    expect(q.depth).toBe(0);
    expect(outcomes.map((o) => o.kind)).toEqual(['aborted', 'aborted']);
    q.add('e');
    expect(q.depth).toBe(0);
    expect(clock.pendingTimers).toBe(0);
  });

  it('shutDown gives up on a handler that ignores its signal after the grace period', async () => {
    const q = new WorkQueue({ clock: new FakeClock() });
    q.start(() => new Promise(() => undefined));
    q.add('stuck');
    await flushMicrotasks();
    const started = Date.now();
    expect(await q.shutDown(50)).toBe(false);
    expect(Date.now() - started).toBeLessThan(2_000);
  });

  it('rejects an invalid configuration', () => {
    expect(() => new WorkQueue({ concurrency: 0 })).toThrow('concurrency');
    expect(() => new WorkQueue({ backoff: { baseMs: 10, maxMs: 5 } })).toThrow('backoff');
  });
});
