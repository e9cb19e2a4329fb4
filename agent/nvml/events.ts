/**
 * Watches NVML events (XIDs, double-bit ECC, GPU unavailable, recovery actions) with short
 * nvmlEventSetWait_v2 polls on the thread pool, so stop() completes within one poll. A wait that
 * fails (GPU_IS_LOST when a registered GPU fell off the bus, or UNKNOWN) never ends the watch:
 * lost GPUs leave a fresh event set that holds the others, and other failures are retried with
 * a growing pause.
 */
import { NvmlError, NvmlReturn, NvmlTimeoutError, type NvmlBinding, type NvmlDeviceHandle, type NvmlEventSetHandle } from './binding.js';
import type { NvmlEvent, NvmlEventKind, NvmlFieldError, NvmlMemoryEventKind } from './types.js';

/** nvmlEventType bits the watcher asks for. */
export const NvmlEventType = {
  SINGLE_BIT_ECC: 0x1,
  DOUBLE_BIT_ECC: 0x2,
  PSTATE: 0x4,
  XID_CRITICAL: 0x8,
  GPU_UNAVAILABLE: 0x4000,
  GPU_RECOVERY_ACTION: 0x8000,
  /** nvml.h nvmlEventTypeSingleBitEccErrorStorm .. nvmlEventTypeFatalPoisonError (R560+). */
  SINGLE_BIT_ECC_STORM: 0x200,
  DRAM_RETIREMENT: 0x400,
  DRAM_RETIREMENT_FAILURE: 0x800,
  NON_FATAL_POISON: 0x1000,
  FATAL_POISON: 0x2000,
} as const;

/** The memory event types and the kinds they are reported as. */
export const MEMORY_EVENT_KINDS: ReadonlyArray<readonly [number, NvmlMemoryEventKind]> = [
  [NvmlEventType.DRAM_RETIREMENT_FAILURE, 'dramRetirementFailure'],
  [NvmlEventType.FATAL_POISON, 'fatalPoison'],
  [NvmlEventType.NON_FATAL_POISON, 'nonFatalPoison'],
  [NvmlEventType.DRAM_RETIREMENT, 'dramRetirement'],
  [NvmlEventType.SINGLE_BIT_ECC_STORM, 'singleBitEccStorm'],
];

const MEMORY_EVENT_MASK = MEMORY_EVENT_KINDS.reduce((mask, [bit]) => mask | bit, 0);

/**
 * Default wanted mask: XidCriticalError | DoubleBitEccError | GpuUnavailableError | GpuRecoveryAction
 * and the memory events (drivers before R560 do not support them: the per-GPU mask drops them).
 */
export const DEFAULT_EVENT_MASK =
  NvmlEventType.XID_CRITICAL |
  NvmlEventType.DOUBLE_BIT_ECC |
  NvmlEventType.GPU_UNAVAILABLE |
  NvmlEventType.GPU_RECOVERY_ACTION |
  MEMORY_EVENT_MASK;

/** nvmlEventSetWait_v2 timeout per poll; bounded so a thread-pool thread is never held long. */
export const MAX_EVENT_POLL_MS = 1000;
const DEFAULT_EVENT_POLL_MS = 500;
/** Longest pause between failing waits (the pause doubles from pollMs up to this). */
const MAX_FAILED_WAIT_PAUSE_MS = 30_000;

/** Options for {@link NvmlEventWatcher}. */
export interface NvmlEventWatcherOptions {
  nvml: NvmlBinding;
  onEvent: (event: NvmlEvent) => void;
  /** The watcher stopped for good: NVML shut down underneath it, or a wait outlived its deadline (a hung driver). */
  onError?: (err: Error) => void;
  /** A wait or a set rebuild failed and the watcher carries on (lost GPUs are reported by onGpuLost). */
  onWarning?: (err: Error) => void;
  /** A registered GPU answered GPU_IS_LOST: it left the event set, the other GPUs are still watched. */
  onGpuLost?: (gpu: LostGpu) => void;
  /** Aborting stops the watcher. */
  signal?: AbortSignal;
  /** Poll length in ms (≤ {@link MAX_EVENT_POLL_MS}). */
  pollMs?: number;
  /**
   * How long one nvmlEventSetWait_v2 blocks (default: the whole poll). 0 on a thread that also
   * collects snapshots: the wait returns at once and the rest of the poll is a timer, so the
   * thread answers collection requests between polls.
   */
  nativeWaitMs?: number;
  /** Wanted event bits; masked per GPU with nvmlDeviceGetSupportedEventTypes. */
  mask?: number;
  now?: () => Date;
}

/** What an event source tells its owner (the watcher's callbacks, wherever it runs). */
export interface NvmlEventHandlers {
  onEvent: (event: NvmlEvent) => void;
  /** The watcher stopped for good. */
  onError: (err: Error) => void;
  /** A wait or a set rebuild failed and the watcher carries on. */
  onWarning?: (err: Error) => void;
  /** A GPU answered GPU_IS_LOST: it left the event set; the others are still watched. */
  onGpuLost?: (gpu: LostGpu) => void;
}

/** One GPU the watcher registered. */
export interface RegisteredGpu {
  index: number;
  uuid?: string;
  pciBusId?: string;
  /** Event bits registered for it. */
  mask: number;
}

/** A GPU the watcher stopped watching because it fell off the bus. */
export interface LostGpu extends RegisteredGpu {
  /** The NVML code it answered (GPU_IS_LOST). */
  code: number;
}

/** What {@link NvmlEventWatcher.start} achieved. */
export interface EventWatcherStartResult {
  registered: RegisteredGpu[];
  /** GPUs that could not be registered (lost, unsupported, failing). */
  errors: Array<NvmlFieldError & { gpuIndex: number }>;
}

function kindOf(eventType: number): NvmlEventKind {
  if (eventType & NvmlEventType.XID_CRITICAL) return 'xid';
  if (eventType & NvmlEventType.DOUBLE_BIT_ECC) return 'doubleBitEcc';
  if (eventType & NvmlEventType.GPU_UNAVAILABLE) return 'gpuUnavailable';
  if (eventType & NvmlEventType.GPU_RECOVERY_ACTION) return 'gpuRecoveryAction';
  for (const [bit, kind] of MEMORY_EVENT_KINDS) if (eventType & bit) return kind;
  return 'other';
}

function asError(err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err));
}

function isLost(err: unknown): boolean {
  return err instanceof NvmlError && err.code === NvmlReturn.GPU_IS_LOST;
}

/** A failed wait the watcher rides out: an NVML code, but not NVML gone (UNINITIALIZED) nor our deadline. */
function isSurvivable(err: unknown): boolean {
  return err instanceof NvmlError && !(err instanceof NvmlTimeoutError) && err.code !== NvmlReturn.UNINITIALIZED;
}

/** Delivers NVML events to a callback until stopped; frees its event set on the way out. */
export class NvmlEventWatcher {
  private set: NvmlEventSetHandle | undefined;
  private readonly gpus = new Map<NvmlDeviceHandle, RegisteredGpu>();
  /** GPUs found lost, at registration or later, in that order. */
  private readonly lost: LostGpu[] = [];
  /** Dropped GPUs by handle, so an event of theirs that arrives late is still attributed. */
  private readonly lostByHandle = new Map<NvmlDeviceHandle, LostGpu>();
  private loop: Promise<void> | undefined;
  private stopping = false;
  /** Ends the pause between failing waits early (stop()). */
  private wake: (() => void) | undefined;
  /** A rebuild of the event set without the lost GPUs failed: retry it on the next failed wait. */
  private rebuildPending = false;
  private readonly pollMs: number;
  private readonly nativeWaitMs: number;
  private readonly onAbort = (): void => {
    void this.stop();
  };

  constructor(private readonly options: NvmlEventWatcherOptions) {
    this.pollMs = Math.min(Math.max(1, options.pollMs ?? DEFAULT_EVENT_POLL_MS), MAX_EVENT_POLL_MS);
    this.nativeWaitMs = Math.min(Math.max(0, options.nativeWaitMs ?? this.pollMs), this.pollMs);
  }

  /** True while the wait loop runs. */
  get running(): boolean {
    return this.loop !== undefined && !this.stopping;
  }

  /** GPUs dropped from the watch because they fell off the bus, in the order they were lost. */
  get lostGpus(): readonly LostGpu[] {
    return [...this.lost];
  }

  /** Initialises NVML, creates the event set, registers every GPU and starts the wait loop. */
  async start(): Promise<EventWatcherStartResult> {
    if (this.loop !== undefined) throw new Error('NvmlEventWatcher already started');
    const { nvml, signal } = this.options;
    const o = signal === undefined ? {} : { signal };
    await nvml.init(o);
    const wanted = this.options.mask ?? DEFAULT_EVENT_MASK;
    const result: EventWatcherStartResult = { registered: [], errors: [] };
    const set = await nvml.eventSetCreate(o);
    this.set = set;
    try {
      const count = await nvml.deviceGetCount(o);
      for (let index = 0; index < count; index++) {
        let step = 'handle';
        try {
          const handle = await nvml.deviceGetHandleByIndex(index, o);
          step = 'supportedEventTypes';
          const mask = (await nvml.deviceGetSupportedEventTypes(handle, o)) & wanted;
          if (mask === 0) continue;
          step = 'identity';
          const uuid = await nvml.deviceGetUuid(handle, o);
          const pci = await nvml.deviceGetPciInfo(handle, o);
          step = 'registerEvents';
          await nvml.deviceRegisterEvents(handle, mask, set, o);
          const gpu: RegisteredGpu = { index, uuid, pciBusId: pci.busId, mask };
          this.gpus.set(handle, gpu);
          result.registered.push(gpu);
        } catch (err) {
          if (signal?.aborted === true) throw err;
          const code = err instanceof NvmlError ? err.code : 0;
          result.errors.push({ gpuIndex: index, field: step, code, error: asError(err).message });
          if (isLost(err)) this.reportLost({ index, mask: 0, code });
        }
      }
    } catch (err) {
      await this.freeSet();
      throw new Error('cannot start the NVML event watcher', { cause: err });
    }
    if (signal?.aborted === true) {
      await this.freeSet();
      return result;
    }
    signal?.addEventListener('abort', this.onAbort, { once: true });
    this.loop = this.run();
    return result;
  }

  /** Stops after the current poll (≤ pollMs) and frees the event set. Idempotent. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.wake?.();
    this.options.signal?.removeEventListener('abort', this.onAbort);
    // never free the set while a native wait may still be using it: let the poll finish
    if (this.loop !== undefined) await this.loop;
    else await this.freeSet();
  }

  private async run(): Promise<void> {
    const { nvml, onEvent, onError, onWarning } = this.options;
    let failures = 0;
    try {
      while (!this.stopping && this.set !== undefined) {
        let data;
        try {
          data = await nvml.eventSetWait(this.set, this.nativeWaitMs);
        } catch (err) {
          if (this.stopping || !isSurvivable(err)) throw err;
          failures++;
          onWarning?.(new Error(`NVML event wait failed (${failures} in a row); watching on`, { cause: err }));
          // a lost GPU fails every wait of its set: rebuild the set without it and wait at once
          if ((await this.dropLostGpus()) > 0) failures = 0;
          else await this.pause(Math.min(this.pollMs * 2 ** (failures - 1), MAX_FAILED_WAIT_PAUSE_MS));
          continue;
        }
        failures = 0;
        if (data === null) {
          // nothing pending: the rest of the poll off the driver (an event drains at once)
          if (this.nativeWaitMs < this.pollMs) await this.pause(this.pollMs - this.nativeWaitMs);
          continue;
        }
        onEvent(this.toEvent(data.device, data.eventType, data.eventData));
      }
    } catch (err) {
      if (!this.stopping) onError?.(new Error('NVML event wait failed; watcher stopped', { cause: err }));
      // a wait past our deadline may still be running natively: leak the set rather than free it under the driver
      if (err instanceof NvmlTimeoutError) this.set = undefined;
    } finally {
      this.stopping = true;
      await this.freeSet();
    }
  }

  private toEvent(device: NvmlDeviceHandle, eventType: number, eventData: number): NvmlEvent {
    const gpu = this.gpus.get(device) ?? this.lostByHandle.get(device);
    const type = kindOf(eventType);
    const event: NvmlEvent = { type, eventType, data: eventData, time: (this.options.now?.() ?? new Date()).toISOString() };
    if (type === 'xid') event.xid = eventData;
    if (gpu !== undefined) {
      event.gpuIndex = gpu.index;
      if (gpu.uuid !== undefined) event.gpuUuid = gpu.uuid;
      if (gpu.pciBusId !== undefined) event.pciBusId = gpu.pciBusId;
    }
    return event;
  }

  /**
   * Asks every registered GPU a cheap question; those answering GPU_IS_LOST are reported and
   * dropped, and the others move to a fresh event set (NVML cannot unregister a GPU from a set).
   * Returns how many were dropped.
   */
  private async dropLostGpus(): Promise<number> {
    const { nvml } = this.options;
    const lost: Array<[NvmlDeviceHandle, number]> = [];
    for (const handle of this.gpus.keys()) {
      try {
        await nvml.deviceGetSupportedEventTypes(handle);
      } catch (err) {
        if (isLost(err)) lost.push([handle, NvmlReturn.GPU_IS_LOST]);
      }
    }
    if (lost.length === 0 && !this.rebuildPending) return 0;
    for (const [handle, code] of lost) this.markLost(handle, code);
    try {
      await this.rebuildSet();
      this.rebuildPending = false;
    } catch (err) {
      this.rebuildPending = true;
      this.options.onWarning?.(
        new Error('cannot rebuild the NVML event set without the lost GPUs; retrying on the next failed wait', { cause: err }),
      );
      return 0;
    }
    return Math.max(lost.length, 1);
  }

  private markLost(handle: NvmlDeviceHandle, code: number): void {
    const gpu = this.gpus.get(handle);
    if (gpu === undefined) return;
    this.gpus.delete(handle);
    const entry: LostGpu = { ...gpu, code };
    this.lostByHandle.set(handle, entry);
    this.reportLost(entry);
  }

  private reportLost(gpu: LostGpu): void {
    this.lost.push(gpu);
    this.options.onGpuLost?.(gpu);
  }

  /** Registers the remaining GPUs on a new set, then frees the old one. */
  private async rebuildSet(): Promise<void> {
    const { nvml } = this.options;
    const next = await nvml.eventSetCreate();
    for (const [handle, gpu] of [...this.gpus]) {
      try {
        await nvml.deviceRegisterEvents(handle, gpu.mask, next);
      } catch (err) {
        if (isLost(err)) this.markLost(handle, NvmlReturn.GPU_IS_LOST);
        else this.options.onWarning?.(new Error(`cannot register GPU ${gpu.index} on the new NVML event set`, { cause: err }));
      }
    }
    const old = this.set;
    this.set = next;
    if (old !== undefined) {
      try {
        await nvml.eventSetFree(old);
      } catch (err) {
        this.options.onWarning?.(new Error('nvmlEventSetFree failed on the replaced event set', { cause: err }));
      }
    }
  }

  /** Waits `ms`, or less when stop() is called. */
  private pause(ms: number): Promise<void> {
    if (this.stopping) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const timer = setTimeout(done, ms);
      function done(): void {
        clearTimeout(timer);
        resolve();
      }
      this.wake = done;
    }).finally(() => {
      this.wake = undefined;
    });
  }

  private async freeSet(): Promise<void> {
    const set = this.set;
    this.set = undefined;
    if (set === undefined || !this.options.nvml.initialized) return;
    try {
      await this.options.nvml.eventSetFree(set);
    } catch (err) {
      this.options.onError?.(new Error('nvmlEventSetFree failed', { cause: err }));
    }
  }
}
