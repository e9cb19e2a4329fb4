/**
 * Watches NVML events (XIDs, double-bit ECC, GPU unavailable, recovery actions) with short
 * nvmlEventSetWait_v2 polls on the thread pool, so stop() completes within one poll.
 */
import { NvmlError, NvmlTimeoutError, type NvmlBinding, type NvmlDeviceHandle, type NvmlEventSetHandle } from './binding.js';
import type { NvmlEvent, NvmlEventKind, NvmlFieldError } from './types.js';

/** nvmlEventType bits the watcher asks for. */
export const NvmlEventType = {
  SINGLE_BIT_ECC: 0x1,
  DOUBLE_BIT_ECC: 0x2,
  PSTATE: 0x4,
  XID_CRITICAL: 0x8,
  GPU_UNAVAILABLE: 0x4000,
  GPU_RECOVERY_ACTION: 0x8000,
} as const;

/** Default wanted mask: XidCriticalError | DoubleBitEccError | GpuUnavailableError | GpuRecoveryAction. */
export const DEFAULT_EVENT_MASK =
  NvmlEventType.XID_CRITICAL | NvmlEventType.DOUBLE_BIT_ECC | NvmlEventType.GPU_UNAVAILABLE | NvmlEventType.GPU_RECOVERY_ACTION;

/** nvmlEventSetWait_v2 timeout per poll; bounded so a thread-pool thread is never held long. */
export const MAX_EVENT_POLL_MS = 1000;
const DEFAULT_EVENT_POLL_MS = 500;

/** Options for {@link NvmlEventWatcher}. */
export interface NvmlEventWatcherOptions {
  nvml: NvmlBinding;
  onEvent: (event: NvmlEvent) => void;
  /** A wait failed and the watcher stopped (e.g. NVML shut down underneath it). */
  onError?: (err: Error) => void;
  /** Aborting stops the watcher. */
  signal?: AbortSignal;
  /** Poll length in ms (≤ {@link MAX_EVENT_POLL_MS}). */
  pollMs?: number;
  /** Wanted event bits; masked per GPU with nvmlDeviceGetSupportedEventTypes. */
  mask?: number;
  now?: () => Date;
}

/** One GPU the watcher registered. */
export interface RegisteredGpu {
  index: number;
  uuid?: string;
  pciBusId?: string;
  /** Event bits registered for it. */
  mask: number;
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
  return 'other';
}

function asError(err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err));
}

/** Delivers NVML events to a callback until stopped; frees its event set on the way out. */
export class NvmlEventWatcher {
  private set: NvmlEventSetHandle | undefined;
  private readonly gpus = new Map<NvmlDeviceHandle, RegisteredGpu>();
  private loop: Promise<void> | undefined;
  private stopping = false;
  private readonly pollMs: number;
  private readonly onAbort = (): void => {
    void this.stop();
  };

  constructor(private readonly options: NvmlEventWatcherOptions) {
    this.pollMs = Math.min(Math.max(1, options.pollMs ?? DEFAULT_EVENT_POLL_MS), MAX_EVENT_POLL_MS);
  }

  /** True while the wait loop runs. */
  get running(): boolean {
    return this.loop !== undefined && !this.stopping;
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
    this.loop = this.run(set);
    return result;
  }

  /** Stops after the current poll (≤ pollMs) and frees the event set. Idempotent. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.options.signal?.removeEventListener('abort', this.onAbort);
    // never free the set while a native wait may still be using it: let the poll finish
    if (this.loop !== undefined) await this.loop;
    else await this.freeSet();
  }

  private async run(set: NvmlEventSetHandle): Promise<void> {
    const { nvml, onEvent, onError } = this.options;
    try {
      while (!this.stopping) {
        const data = await nvml.eventSetWait(set, this.pollMs);
        if (data === null) continue;
        const gpu = this.gpus.get(data.device);
        const type = kindOf(data.eventType);
        const event: NvmlEvent = {
          type,
          eventType: data.eventType,
          data: data.eventData,
          time: (this.options.now?.() ?? new Date()).toISOString(),
        };
        if (type === 'xid') event.xid = data.eventData;
        if (gpu !== undefined) {
          event.gpuIndex = gpu.index;
          if (gpu.uuid !== undefined) event.gpuUuid = gpu.uuid;
          if (gpu.pciBusId !== undefined) event.pciBusId = gpu.pciBusId;
        }
        onEvent(event);
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
