/**
 * The NVML thread: a worker_thread that owns every NVML call of its role, made synchronously
 * (never on the libuv pool). The `collect` role answers snapshot requests; the `events` role
 * runs the event watcher. Before each native call it writes the call into the shared slot, so
 * the main thread can tell a hung call while this thread is blocked inside it.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { exposedGc, HeapTrim } from '../../../lib/heap-trim.js';
import { releaseFreeMemory } from '../../../lib/malloc-trim.js';
import { NvmlBinding, NvmlTimeoutError, type NvmlBindingOptions } from '../binding.js';
import { collectSnapshot } from '../collector.js';
import { NvmlEventWatcher } from '../events.js';
import type { NvmlCheck } from '../types.js';
import { CallSlot } from './call-slot.js';
import type { ToWorker, FromWorker, WorkerSetup } from './protocol.js';

const setup = workerData as WorkerSetup;
const port = parentPort;
if (port === null) throw new Error('nvml-worker.js runs only as a worker thread');

const slot = new CallSlot(setup.slot, setup.callNames);
/** `device:function` pairs not to call (they hung in an earlier thread). */
let skipped = new Set<string>();

function post(message: FromWorker): void {
  port?.postMessage(message);
}

const bindingOptions: NvmlBindingOptions = {
  ...setup.binding,
  synchronous: true,
  guard: {
    before(fn, device) {
      // A device whose call hung in an earlier thread is not called again until that call returns.
      if (device !== null && skipped.size > 0 && skipped.has(`${device}:${fn}`))
        throw new NvmlTimeoutError(fn, setup.callTimeoutMs, 'skipped: this call on this GPU hung earlier and has not returned');
      slot.enter(fn, device, Date.now());
    },
    after() {
      slot.leave();
    },
  },
};
const nvml = new NvmlBinding(bindingOptions);
let watcher: NvmlEventWatcher | undefined;
const gc = exposedGc();
const heapTrim = gc === undefined ? undefined : new HeapTrim(gc);

async function collect(id: number, checks: readonly NvmlCheck[] | undefined, skip: readonly string[]): Promise<void> {
  skipped = new Set(skip);
  try {
    const snapshot = await collectSnapshot({ nvml, ...(checks === undefined ? {} : { checks }) });
    const { gpus, ...rest } = snapshot;
    post({ type: 'result', id, snapshotJson: JSON.stringify(rest), gpusJson: JSON.stringify(gpus) });
  } catch (err) {
    post({
      type: 'failed',
      id,
      name: err instanceof Error ? err.name : 'Error',
      message: err instanceof Error ? err.message : String(err),
    });
  }
}

async function watch(nativeWaitMs: number | undefined): Promise<void> {
  watcher = new NvmlEventWatcher({
    nvml,
    ...(nativeWaitMs === undefined ? {} : { nativeWaitMs }),
    onEvent: (event) => post({ type: 'event', event }),
    onError: (err) => post({ type: 'event-error', message: err.message }),
    onWarning: (err) => post({ type: 'event-warning', message: err.message }),
    onGpuLost: (gpu) => post({ type: 'gpu-lost', gpu }),
  });
  try {
    await watcher.start();
    post({ type: 'watching' });
  } catch (err) {
    watcher = undefined;
    post({ type: 'event-error', message: err instanceof Error ? err.message : String(err) });
  }
}

async function close(): Promise<void> {
  await watcher?.stop();
  await nvml.shutdown();
  post({ type: 'closed' });
}

port.on('message', (message: ToWorker) => {
  const done = (p: Promise<void>): void => {
    p.catch((err: unknown) => post({ type: 'event-error', message: `NVML thread: ${err instanceof Error ? err.message : String(err)}` }));
  };
  if (message.type === 'collect') done(collect(message.id, message.checks, message.skip));
  else if (message.type === 'watch') done(watch(message.nativeWaitMs));
  else if (message.type === 'trim') {
    const trimmed = heapTrim?.trimIfGrown();
    // after the collections, so the memory they freed outside the heaps goes back too
    if (trimmed !== undefined || message.mainTrimmed) releaseFreeMemory();
    if (trimmed !== undefined) post({ type: 'trimmed', ...trimmed });
  } else done(close());
});
post({ type: 'ready' });
