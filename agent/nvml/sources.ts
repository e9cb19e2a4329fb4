/**
 * What the agent's services need from NVML — snapshots and events — and the two ways to get
 * them: on an NVML thread (the agent's default: every call synchronous on a worker thread, watched
 * for hangs) or in this process on the libuv pool (many simulated agents in one process).
 */
import type { HeapTrimResult } from '../../lib/heap-trim.js';
import type { Logger } from '../../lib/logger.js';
import type { NvmlBinding, NvmlBindingOptions } from './binding.js';
import { collectSnapshot } from './collector.js';
import { NvmlEventWatcher, type NvmlEventHandlers } from './events.js';
import { NvmlThread, type HungNvmlCall } from './thread/nvml-thread.js';

export type { HungNvmlCall, NvmlEventHandlers };
import type { NvmlCheck, NvmlSnapshot } from './types.js';

/** NVML snapshots. */
export interface NvmlSnapshotSource {
  collect(checks: readonly NvmlCheck[]): Promise<NvmlSnapshot>;
  /** Calls that never returned (empty where calls cannot be watched). */
  hungCalls(): readonly HungNvmlCall[];
  /** Shuts NVML down within `graceMs`; false when a call still blocks. */
  stop(graceMs: number): Promise<boolean>;
  /** Asks the NVML thread to collect its heap if it grew (absent where NVML runs in this thread); see NvmlThread.trim. */
  trimHeap?: (mainTrimmed: boolean) => void;
}

/** NVML events (XIDs and the rest); errors arrive through the handlers, never as a rejection. */
export interface NvmlEventSource {
  watch(handlers: NvmlEventHandlers): Promise<void>;
  stop(graceMs: number): Promise<boolean>;
}

/**
 * Snapshots and events on one NVML thread (the agent's default): a thread costs ~10 MiB, and an
 * agent runs on every GPU node. The event wait does not block (its poll interval is a timer), so
 * a collection waits for at most one event poll's call. The events stop with the thread.
 */
export async function threadSources(
  binding: NvmlBindingOptions,
  callTimeoutMs: number,
  logger: Logger,
  onHeapTrimmed?: (result: HeapTrimResult) => void,
): Promise<{ snapshots: NvmlSnapshotSource & { readonly thread: NvmlThread }; events: NvmlEventSource }> {
  const thread = new NvmlThread('nvml', { binding, callTimeoutMs, logger, ...(onHeapTrimmed === undefined ? {} : { onHeapTrimmed }) });
  await thread.start();
  const snapshots = {
    thread,
    collect: (checks: readonly NvmlCheck[]) => thread.collect(checks),
    hungCalls: () => thread.hungCalls(),
    stop: (graceMs: number) => thread.stop(graceMs),
    trimHeap: (mainTrimmed: boolean) => thread.trim(mainTrimmed),
  };
  const events: NvmlEventSource = {
    watch: (handlers) => {
      thread.watch(handlers);
      return Promise.resolve();
    },
    stop: () => Promise.resolve(true),
  };
  return { snapshots, events };
}

/** Snapshots through a binding in this process (libuv pool). */
export function bindingSnapshotSource(nvml: NvmlBinding): NvmlSnapshotSource {
  return {
    collect: (checks) => collectSnapshot({ nvml, checks }),
    hungCalls: () => [],
    stop: async (graceMs) => {
      let timer: NodeJS.Timeout | undefined;
      const expired = new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(false), graceMs);
        timer.unref();
      });
      const done = nvml.shutdown().then(() => true);
      const clean = await Promise.race([done, expired]);
      clearTimeout(timer);
      return clean;
    },
  };
}

/** Events through a binding in this process. */
export function bindingEventSource(nvml: NvmlBinding): NvmlEventSource {
  let watcher: NvmlEventWatcher | undefined;
  return {
    watch: async (handlers) => {
      const { onEvent, onError, onWarning, onGpuLost } = handlers;
      watcher = new NvmlEventWatcher({
        nvml,
        onEvent,
        onError,
        ...(onWarning === undefined ? {} : { onWarning }),
        ...(onGpuLost === undefined ? {} : { onGpuLost }),
      });
      try {
        await watcher.start();
      } catch (err) {
        watcher = undefined;
        onError(err instanceof Error ? err : new Error(String(err)));
      }
    },
    stop: async () => {
      await watcher?.stop();
      return true;
    },
  };
}
