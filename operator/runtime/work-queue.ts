/**
 * A keyed work queue for level-triggered controllers: keys (`namespace/name` or `name`) are
 * deduplicated while queued, one handler runs per key at a time, at most `concurrency`
 * handlers run at once, failures back off per key, and a handler's result or typed error
 * decides when the key comes back (see errors.ts).
 */
import { systemClock, type Clock, type TimerHandle } from './clock.js';
import { classifyError, type ErrorClassification } from './errors.js';

/** What a reconcile pass asks of the queue. */
export interface ReconcileResult {
  /** Reconcile this key again after this many milliseconds (periodic work, polling). */
  requeueAfterMs?: number;
}

/** Reconciles one key; `signal` aborts on queue shutdown. */
export type ReconcileHandler = (key: string, signal: AbortSignal) => Promise<ReconcileResult | void>;

/** How one handler run ended, for metrics and logs. */
export type ReconcileOutcome =
  | { key: string; durationMs: number; kind: 'success'; requeueAfterMs?: number }
  | { key: string; durationMs: number; kind: 'aborted'; error: unknown }
  | ({ key: string; durationMs: number; requeueAfterMs?: number } & ErrorClassification);

/** Per-key exponential backoff for `addRateLimited`. */
export interface BackoffOptions {
  /** First delay (default 100 ms). */
  baseMs?: number;
  /** Cap (default 5 min). */
  maxMs?: number;
}

/** Options of a {@link WorkQueue}. */
export interface WorkQueueOptions {
  /** Maximum handlers running at once (default 4). */
  concurrency?: number;
  backoff?: BackoffOptions;
  clock?: Clock;
  /** Called after every handler run (metrics, logging, Warning events). Must not throw. */
  onOutcome?: (outcome: ReconcileOutcome) => void;
}

interface Delayed {
  at: number;
  timer: TimerHandle;
}

/** Default first backoff delay. */
export const DEFAULT_BACKOFF_BASE_MS = 100;
/** Default backoff cap. */
export const DEFAULT_BACKOFF_MAX_MS = 5 * 60_000;

/** A keyed, deduplicating, rate-limited work queue with bounded workers. */
export class WorkQueue {
  private readonly concurrency: number;
  private readonly baseMs: number;
  private readonly maxMs: number;
  private readonly clock: Clock;
  private readonly onOutcome: ((outcome: ReconcileOutcome) => void) | undefined;

  /** Ready keys in FIFO order (each at most once). */
  private ready: string[] = [];
  /** Keys waiting to run: in `ready`, or marked while processing to run again after. */
  private readonly dirty = new Set<string>();
  private readonly processing = new Map<string, { controller: AbortController; done: Promise<void> }>();
  private readonly delayed = new Map<string, Delayed>();
  private readonly failures = new Map<string, number>();
  private handler: ReconcileHandler | undefined;
  private shuttingDown = false;

  constructor(options: WorkQueueOptions = {}) {
    this.concurrency = options.concurrency ?? 4;
    if (!Number.isInteger(this.concurrency) || this.concurrency < 1)
      throw new Error(`work queue concurrency must be a positive integer, got ${this.concurrency}`);
    this.baseMs = options.backoff?.baseMs ?? DEFAULT_BACKOFF_BASE_MS;
    this.maxMs = options.backoff?.maxMs ?? DEFAULT_BACKOFF_MAX_MS;
    if (!(this.baseMs > 0) || !(this.maxMs >= this.baseMs)) throw new Error(`invalid backoff: baseMs ${this.baseMs}, maxMs ${this.maxMs}`);
    this.clock = options.clock ?? systemClock;
    this.onOutcome = options.onOutcome;
  }

  /** Keys waiting to run now plus keys scheduled for later (queue depth metric). */
  get depth(): number {
    return this.ready.length + this.delayed.size;
  }

  /** Handlers running now. */
  get inFlight(): number {
    return this.processing.size;
  }

  /** Whether `shutDown()` has been called. */
  get isShuttingDown(): boolean {
    return this.shuttingDown;
  }

  /** Consecutive failures recorded for `key` (drives its backoff). */
  numRequeues(key: string): number {
    return this.failures.get(key) ?? 0;
  }

  /** Queues `key` now (no-op if already queued); cancels a later schedule for it. */
  add(key: string): void {
    if (this.shuttingDown) return;
    this.cancelDelayed(key);
    if (this.dirty.has(key)) return;
    this.dirty.add(key);
    // A key being processed runs again once the current run ends (never concurrently).
    if (!this.processing.has(key)) {
      this.ready.push(key);
      this.pump();
    }
  }

  /** Queues `key` after `ms`; if it is already queued or scheduled sooner, the sooner wins. */
  addAfter(key: string, ms: number): void {
    if (this.shuttingDown) return;
    if (!(ms > 0)) {
      this.add(key);
      return;
    }
    if (this.dirty.has(key)) return;
    const at = this.clock.now() + ms;
    const existing = this.delayed.get(key);
    if (existing !== undefined) {
      if (existing.at <= at) return;
      this.clock.clearTimeout(existing.timer);
    }
    const timer = this.clock.setTimeout(() => {
      const current = this.delayed.get(key);
      if (current?.timer !== timer) return;
      this.delayed.delete(key);
      this.add(key);
    }, ms);
    this.delayed.set(key, { at, timer });
  }

  /** Queues `key` after its next backoff delay (base doubling per failure, capped). */
  addRateLimited(key: string): void {
    const failures = this.failures.get(key) ?? 0;
    this.failures.set(key, failures + 1);
    this.addAfter(key, this.backoffDelay(failures));
  }

  /** The backoff delay after `failures` consecutive failures. */
  backoffDelay(failures: number): number {
    // 2^failures overflows to Infinity for large counts; Math.min caps it.
    return Math.min(this.maxMs, this.baseMs * 2 ** failures);
  }

  /** Clears the failure count of `key` (its next backoff starts at the base delay). */
  forget(key: string): void {
    this.failures.delete(key);
  }

  /** Starts dispatching keys to `handler`. Call once. */
  start(handler: ReconcileHandler): void {
    if (this.handler !== undefined) throw new Error('work queue already started');
    if (this.shuttingDown) throw new Error('work queue is shut down');
    this.handler = handler;
    this.pump();
  }

  /**
   * Stops accepting keys, drops queued and scheduled ones, aborts running handlers' signals and
   * waits up to `graceMs` for them. Resolves true when every handler finished in time.
   */
  async shutDown(graceMs = 10_000): Promise<boolean> {
    this.shuttingDown = true;
    for (const d of this.delayed.values()) this.clock.clearTimeout(d.timer);
    this.delayed.clear();
    this.ready = [];
    this.dirty.clear();
    const running = [...this.processing.values()];
    for (const p of running) p.controller.abort(new Error('work queue shutting down'));
    if (running.length === 0) return true;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timedOut = new Promise<false>((resolve) => {
      timer = setTimeout(() => resolve(false), graceMs);
    });
    try {
      return await Promise.race([Promise.all(running.map((p) => p.done)).then(() => true as const), timedOut]);
    } finally {
      clearTimeout(timer);
    }
  }

  private cancelDelayed(key: string): void {
    const d = this.delayed.get(key);
    if (d === undefined) return;
    this.clock.clearTimeout(d.timer);
    this.delayed.delete(key);
  }

  /** Starts handlers for ready keys while worker slots are free. */
  private pump(): void {
    const handler = this.handler;
    if (handler === undefined || this.shuttingDown) return;
    while (this.processing.size < this.concurrency && this.ready.length > 0) {
      const key = this.ready.shift();
      if (key === undefined) break;
      this.dirty.delete(key);
      const controller = new AbortController();
      const entry = { controller, done: Promise.resolve() };
      this.processing.set(key, entry);
      entry.done = this.run(handler, key, controller.signal);
    }
  }

  private async run(handler: ReconcileHandler, key: string, signal: AbortSignal): Promise<void> {
    // Start on a later microtask: a handler never runs inside the caller of add().
    await Promise.resolve();
    const started = this.clock.now();
    let outcome: ReconcileOutcome;
    try {
      if (signal.aborted) throw signal.reason;
      const result = await handler(key, signal);
      outcome = this.onSuccess(key, result ?? {}, started);
    } catch (err) {
      outcome = this.onFailure(key, err, signal, started);
    }
    this.processing.delete(key);
    if (this.dirty.has(key) && !this.shuttingDown) this.ready.push(key);
    this.report(outcome);
    this.pump();
  }

  private onSuccess(key: string, result: ReconcileResult, started: number): ReconcileOutcome {
    this.forget(key);
    const durationMs = this.clock.now() - started;
    const after = result.requeueAfterMs;
    if (after !== undefined && Number.isFinite(after) && after >= 0) {
      this.addAfter(key, after);
      return { key, durationMs, kind: 'success', requeueAfterMs: after };
    }
    return { key, durationMs, kind: 'success' };
  }

  /** The one place a failure's meaning turns into scheduling. */
  private onFailure(key: string, err: unknown, signal: AbortSignal, started: number): ReconcileOutcome {
    const durationMs = this.clock.now() - started;
    if (signal.aborted && this.shuttingDown) return { key, durationMs, kind: 'aborted', error: err };
    const classified = classifyError(err);
    switch (classified.kind) {
      case 'stalled':
        // Needs a human: the spec must change, and that change queues the key again.
        this.forget(key);
        return { key, durationMs, ...classified };
      case 'waiting':
        this.forget(key);
        this.addAfter(key, classified.retryAfterMs);
        return { key, durationMs, requeueAfterMs: classified.retryAfterMs, ...classified };
      case 'retry': {
        const delay = this.backoffDelay(this.failures.get(key) ?? 0);
        this.addRateLimited(key);
        return { key, durationMs, requeueAfterMs: delay, ...classified };
      }
    }
  }

  private report(outcome: ReconcileOutcome): void {
    if (this.onOutcome === undefined) return;
    try {
      this.onOutcome(outcome);
    } catch (err) {
      // A broken metrics/log hook must not wedge the queue nor crash the process: warn.
      process.emitWarning(new Error('work queue onOutcome hook threw', { cause: err }));
    }
  }
}
