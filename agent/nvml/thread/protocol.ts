/** Messages between the agent's main thread and its NVML threads (nvml-worker.ts). */
import type { NvmlBindingOptions } from '../binding.js';
import type { LostGpu } from '../events.js';
import type { NvmlCheck, NvmlEvent } from '../types.js';

/** What a worker is told at start (workerData). */
export interface WorkerSetup {
  readonly binding: NvmlBindingOptions;
  readonly callTimeoutMs: number;
  readonly slot: SharedArrayBuffer;
  readonly callNames: readonly string[];
}

/** Main → worker. `skip` holds `device:function` pairs, the device handle as a decimal string. */
export type ToWorker =
  | { readonly type: 'collect'; readonly id: number; readonly checks?: readonly NvmlCheck[]; readonly skip: readonly string[] }
  /** `nativeWaitMs`: see NvmlEventWatcherOptions (0 where the thread also collects). */
  | { readonly type: 'watch'; readonly nativeWaitMs?: number }
  /**
   * The agent is idle: collect this thread's heap if it grew (lib/heap-trim.ts), then give free
   * malloc memory back (lib/malloc-trim.ts) if either heap was collected (`mainTrimmed`: the main thread's was).
   */
  | { readonly type: 'trim'; readonly mainTrimmed: boolean }
  | { readonly type: 'close' };

/** Worker → main. */
export type FromWorker =
  | { readonly type: 'ready' }
  /**
   * The snapshot as JSON text, its GPU list apart (answers reuse that text: gpu-list-json.ts): a
   * string crosses threads as one copy, where a structured clone of the object graph (8 GPUs × 36
   * links of objects) cost about 1 ms on each side.
   */
  | { readonly type: 'result'; readonly id: number; readonly snapshotJson: string; readonly gpusJson: string }
  | { readonly type: 'failed'; readonly id: number; readonly name: string; readonly message: string }
  | { readonly type: 'watching' }
  | { readonly type: 'event'; readonly event: NvmlEvent }
  | { readonly type: 'event-error'; readonly message: string }
  | { readonly type: 'event-warning'; readonly message: string }
  | { readonly type: 'gpu-lost'; readonly gpu: LostGpu }
  /** Answers a `trim` that collected (none comes when the heap had not grown or gc is not exposed). */
  | { readonly type: 'trimmed'; readonly beforeBytes: number; readonly afterBytes: number }
  | { readonly type: 'closed' };
