/**
 * What the agent's services need from NVML — snapshots and events — and the two ways to get
 * them: on NVML threads (the agent's default: every call synchronous on a worker thread, watched
 * for hangs) or in this process on the libuv pool (many simulated agents in one process).
 */
import type { Logger } from '../../lib/logger.js';
import type { NvmlBinding, NvmlBindingOptions } from './binding.js';
import { collectSnapshot } from './collector.js';
import { MAX_EVENT_POLL_MS, NvmlEventWatcher, type NvmlEventHandlers } from './events.js';
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
}

/** NVML events (XIDs and the rest); errors arrive through the handlers, never as a rejection. */
export interface NvmlEventSource {
  watch(handlers: NvmlEventHandlers): Promise<void>;
  stop(graceMs: number): Promise<boolean>;
}

/** Snapshots collected on an NVML thread. */
export async function threadSnapshotSource(binding: NvmlBindingOptions, callTimeoutMs: number, logger: Logger): Promise<NvmlSnapshotSource & { readonly thread: NvmlThread }> {
  const thread = new NvmlThread('collect', { binding, callTimeoutMs, logger });
  await thread.start();
  return { thread, collect: (checks) => thread.collect(checks), hungCalls: () => thread.hungCalls(), stop: (graceMs) => thread.stop(graceMs) };
}

/** Events watched on their own NVML thread (an event wait blocks it for up to a poll interval). */
export async function threadEventSource(binding: NvmlBindingOptions, callTimeoutMs: number, logger: Logger): Promise<NvmlEventSource> {
  const thread = new NvmlThread('events', { binding, callTimeoutMs, slackMs: MAX_EVENT_POLL_MS, logger });
  await thread.start();
  return {
    watch: (handlers) => {
      thread.watch(handlers);
      return Promise.resolve();
    },
    stop: (graceMs) => thread.stop(graceMs),
  };
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
      watcher = new NvmlEventWatcher({ nvml, onEvent, onError, ...(onWarning === undefined ? {} : { onWarning }), ...(onGpuLost === undefined ? {} : { onGpuLost }) });
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

