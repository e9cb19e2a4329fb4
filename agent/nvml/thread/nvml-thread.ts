/**
 * The main thread's handle on an NVML thread (nvml-worker.ts). Requests go by message; a
 * watchdog reads the worker's shared call slot, and a call that outlives the per-call deadline
 * is declared hung: the blocked worker is set aside (never waited for), a replacement takes over
 * at once, and that call on that GPU is skipped — reported as timed out — until it returns. So
 * one hung GPU delays the others by one deadline, and never HTTP, probes or logging.
 */
import { Worker } from 'node:worker_threads';
import type { HeapTrimResult } from '../../../lib/heap-trim.js';
import type { Logger } from '../../../lib/logger.js';
import { NvmlTimeoutError, NVML_FUNCTION_NAMES, type NvmlBindingOptions } from '../binding.js';
import type { NvmlEventHandlers } from '../events.js';
import type { NvmlCheck, NvmlSnapshot } from '../types.js';
import { parseGpuList } from '../gpu-list-json.js';
import { CallSlot, type CallInProgress } from './call-slot.js';
import type { FromWorker, ToWorker, WorkerSetup } from './protocol.js';

/** What a thread does: `nvml` collects snapshots and watches events, `collect` only collects. */
export type NvmlThreadRole = 'nvml' | 'collect';

/** Options of an NVML thread. */
export interface NvmlThreadOptions {
  readonly binding: NvmlBindingOptions;
  /** The per-call deadline. */
  readonly callTimeoutMs: number;
  readonly logger: Logger;
  /** The thread collected its heap after a {@link NvmlThread.trim}. */
  readonly onHeapTrimmed?: (result: HeapTrimResult) => void;
}

/** A call that never returned. */
export interface HungNvmlCall {
  readonly fn: string;
  /** The GPU's nvmlDevice_t as a decimal string; null for a call on no device. */
  readonly device: string | null;
  readonly sinceMs: number;
}

interface Pending {
  readonly checks: readonly NvmlCheck[] | undefined;
  resolve(snapshot: NvmlSnapshot): void;
  reject(err: Error): void;
}

/** Replacements allowed within RESPAWN_WINDOW_MS before the thread gives up (a library that hangs every call). */
const MAX_RESPAWNS = 8;
const RESPAWN_WINDOW_MS = 60_000;
const WORKER_URL = new URL('./nvml-worker.js', import.meta.url);
/**
 * Heap bounds of an NVML thread. It holds one snapshot at a time (~30 KB of JSON), yet V8's
 * defaults let each thread's young generation grow to 16 MiB semi-spaces under load: an agent
 * runs on every GPU node, so its threads stay small.
 */
const NVML_THREAD_LIMITS = { maxYoungGenerationSizeMb: 2, maxOldGenerationSizeMb: 32 };

/** One NVML thread of one role, replaced when a call hangs. */
export class NvmlThread {
  private worker: Worker | undefined;
  private slot: CallSlot | undefined;
  private readonly pending = new Map<number, Pending>();
  private readonly hung = new Map<Worker, HungNvmlCall>();
  private readonly respawns: number[] = [];
  private nextId = 1;
  private watchdog: NodeJS.Timeout | undefined;
  private stopped = false;
  private events: NvmlEventHandlers | undefined;

  constructor(
    private readonly role: NvmlThreadRole,
    private readonly options: NvmlThreadOptions,
  ) {}

  /** Starts the worker; resolves once it is ready to take requests. */
  async start(): Promise<void> {
    await this.spawn();
    const tick = Math.max(25, Math.min(250, Math.floor(this.options.callTimeoutMs / 4)));
    this.watchdog = setInterval(() => this.checkForHang(), tick);
    this.watchdog.unref();
  }

  /** Collects a snapshot in the thread (role `collect`). */
  collect(checks?: readonly NvmlCheck[]): Promise<NvmlSnapshot> {
    if (this.stopped) return Promise.reject(new Error('the NVML thread is stopped'));
    return new Promise<NvmlSnapshot>((resolve, reject) => {
      const id = this.nextId++;
      this.pending.set(id, { checks, resolve, reject });
      this.send({ type: 'collect', id, ...(checks === undefined ? {} : { checks }), skip: this.skipList() });
    });
  }

  /** Watches NVML events in the thread (role `nvml`); errors arrive through the handlers. */
  watch(handlers: NvmlEventHandlers): void {
    this.events = handlers;
    this.send(this.watchMessage());
  }

  /** The thread also collects: it never blocks in the event wait (see NvmlEventWatcherOptions.nativeWaitMs). */
  private watchMessage(): ToWorker {
    return { type: 'watch', nativeWaitMs: 0 };
  }

  /**
   * Asks the thread to collect its heap if it grew (the agent is idle; `mainTrimmed`: this thread's
   * heap was just collected); it answers through onHeapTrimmed.
   */
  trim(mainTrimmed: boolean): void {
    this.send({ type: 'trim', mainTrimmed });
  }

  /** Calls that hung and have not returned yet. */
  hungCalls(): HungNvmlCall[] {
    return [...this.hung.values()];
  }

  /**
   * Closes the thread: NVML shut down within `graceMs`. Resolves false when that did not finish
   * or a hung call is still blocked in a set-aside thread (the caller then ends the process).
   */
  async stop(graceMs: number): Promise<boolean> {
    this.stopped = true;
    if (this.watchdog !== undefined) clearInterval(this.watchdog);
    for (const p of this.pending.values()) p.reject(new Error('the NVML thread is stopping'));
    this.pending.clear();
    const worker = this.worker;
    this.worker = undefined;
    let clean = this.hung.size === 0;
    if (worker !== undefined) {
      const closed = new Promise<boolean>((resolve) => {
        const timer = setTimeout(() => resolve(false), graceMs);
        timer.unref();
        worker.on('message', (m: FromWorker) => {
          if (m.type === 'closed') {
            clearTimeout(timer);
            resolve(true);
          }
        });
        worker.once('exit', () => {
          clearTimeout(timer);
          resolve(true);
        });
      });
      worker.postMessage({ type: 'close' } satisfies ToWorker);
      clean = (await closed) && clean;
      await worker.terminate();
    }
    for (const w of this.hung.keys()) w.unref();
    return clean;
  }

  /** `device:function` pairs the next thread must not call (the same call on the same GPU hung). */
  private skipList(): string[] {
    return [...new Set([...this.hung.values()].flatMap((h) => (h.device === null ? [] : [`${h.device}:${h.fn}`])))];
  }

  private send(message: ToWorker): void {
    this.worker?.postMessage(message);
  }

  private async spawn(): Promise<void> {
    const buffer = CallSlot.allocate();
    const setup: WorkerSetup = {
      binding: this.options.binding,
      callTimeoutMs: this.options.callTimeoutMs,
      slot: buffer,
      callNames: NVML_FUNCTION_NAMES,
    };
    const worker = new Worker(WORKER_URL, { workerData: setup, name: `nvml-${this.role}`, resourceLimits: NVML_THREAD_LIMITS });
    this.worker = worker;
    this.slot = new CallSlot(buffer, NVML_FUNCTION_NAMES);
    worker.on('message', (m: FromWorker) => this.onMessage(worker, m));
    worker.on('error', (err) => this.onWorkerGone(worker, err));
    worker.on('exit', (code) => this.onWorkerGone(worker, new Error(`NVML thread exited with code ${code}`)));
    await new Promise<void>((resolve, reject) => {
      const onReady = (m: FromWorker): void => {
        if (m.type !== 'ready') return;
        worker.off('message', onReady);
        worker.off('error', reject);
        resolve();
      };
      worker.on('message', onReady);
      worker.once('error', reject);
    });
  }

  private onMessage(worker: Worker, m: FromWorker): void {
    if (worker !== this.worker) {
      // A set-aside thread spoke: its hung call returned. Its GPU is called again; it goes.
      const hung = this.hung.get(worker);
      if (hung === undefined) return;
      this.options.logger.info('hung NVML call returned; its GPU is polled again', { fn: hung.fn, heldMs: Date.now() - hung.sinceMs });
      this.hung.delete(worker);
      this.retire(worker);
      return;
    }
    switch (m.type) {
      case 'result':
      case 'failed': {
        const p = this.pending.get(m.id);
        this.pending.delete(m.id);
        if (p === undefined) return;
        if (m.type === 'result')
          p.resolve({ ...(JSON.parse(m.snapshotJson) as Omit<NvmlSnapshot, 'gpus'>), gpus: parseGpuList(m.gpusJson) });
        else p.reject(Object.assign(new Error(m.message), { name: m.name }));
        return;
      }
      case 'event':
        this.events?.onEvent(m.event);
        return;
      case 'event-error':
        this.events?.onError(new Error(m.message));
        return;
      case 'event-warning':
        this.events?.onWarning?.(new Error(m.message));
        return;
      case 'gpu-lost':
        this.events?.onGpuLost?.(m.gpu);
        return;
      case 'trimmed':
        this.options.onHeapTrimmed?.({ beforeBytes: m.beforeBytes, afterBytes: m.afterBytes });
        return;
      default:
        return;
    }
  }

  /** Lets a set-aside thread shut its NVML down (balancing its nvmlInit), then ends it. */
  private retire(worker: Worker): void {
    const timer = setTimeout(() => void worker.terminate(), 2_000);
    timer.unref();
    worker.on('message', (m: FromWorker) => {
      if (m.type !== 'closed') return;
      clearTimeout(timer);
      void worker.terminate();
    });
    worker.postMessage({ type: 'close' } satisfies ToWorker);
  }

  private checkForHang(): void {
    const call: CallInProgress | null | undefined = this.slot?.current();
    const worker = this.worker;
    if (call === null || call === undefined || worker === undefined || this.stopped) return;
    const limit = this.options.callTimeoutMs;
    if (Date.now() - call.startedAtMs <= limit) return;
    const hung: HungNvmlCall = { fn: call.fn, device: call.device === null ? null : call.device.toString(), sinceMs: call.startedAtMs };
    this.options.logger.warn('NVML call hung; a new NVML thread takes over and that GPU is skipped until the call returns', {
      fn: hung.fn,
      role: this.role,
      timeoutMs: limit,
    });
    this.hung.set(worker, hung);
    this.worker = undefined;
    this.slot = undefined;
    void this.replace(new NvmlTimeoutError(call.fn, limit));
  }

  private onWorkerGone(worker: Worker, err: Error): void {
    if (this.hung.delete(worker) || worker !== this.worker || this.stopped) return;
    this.options.logger.error('NVML thread ended; starting a new one', { role: this.role, error: err.message });
    this.worker = undefined;
    void this.replace(err);
  }

  /** Starts a replacement and hands it what the old thread was doing. */
  private async replace(cause: Error): Promise<void> {
    const now = Date.now();
    while (this.respawns.length > 0 && (this.respawns[0] ?? 0) < now - RESPAWN_WINDOW_MS) this.respawns.shift();
    if (this.respawns.length >= MAX_RESPAWNS) {
      for (const p of this.pending.values()) p.reject(cause);
      this.pending.clear();
      this.events?.onError(
        new Error(`NVML thread replaced ${MAX_RESPAWNS} times within ${RESPAWN_WINDOW_MS / 1000} s; giving up: ${cause.message}`),
      );
      return;
    }
    this.respawns.push(now);
    try {
      await this.spawn();
    } catch (err) {
      for (const p of this.pending.values()) p.reject(err instanceof Error ? err : new Error(String(err)));
      this.pending.clear();
      return;
    }
    for (const [id, p] of this.pending)
      this.send({ type: 'collect', id, ...(p.checks === undefined ? {} : { checks: p.checks }), skip: this.skipList() });
    if (this.events !== undefined) this.send(this.watchMessage());
  }
}
