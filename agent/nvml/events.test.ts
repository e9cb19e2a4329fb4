import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { startFakeNvml, type FakeNvmlEnvironment } from '../fake-nvml/harness.js';
import { NvmlBinding } from './binding.js';
import { NvmlEventWatcher } from './events.js';
import type { NvmlEvent } from './types.js';

const POLL_MS = 100;
// A bound, not a timing assert: the unit project runs many suites at once on two cores.
const WAIT_LIMIT_MS = 15_000;

let env: FakeNvmlEnvironment;

beforeAll(async () => {
  env = await startFakeNvml('h100-sxm-8x-healthy');
});

afterAll(async () => {
  await env.dispose();
});

async function waitFor(predicate: () => boolean): Promise<void> {
  const deadline = Date.now() + WAIT_LIMIT_MS;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

describe('NvmlEventWatcher', () => {
  it('delivers an injected XID 79 and stops cleanly', async () => {
    await env.controller.load('h100-sxm-8x-healthy');
    const nvml = new NvmlBinding({ libraryPath: env.libraryPath, fallbackToSystemLibrary: false });
    const events: NvmlEvent[] = [];
    const errors: Error[] = [];
    const watcher = new NvmlEventWatcher({ nvml, pollMs: POLL_MS, onEvent: (e) => events.push(e), onError: (e) => errors.push(e) });
    const started = await watcher.start();
    expect(started.registered).toHaveLength(8);
    // R550 predates the GpuRecoveryAction event (0x8000, R565+)
    expect(started.registered[0]?.mask).toBe(0x8 | 0x2 | 0x4000);
    expect(watcher.running).toBe(true);

    await env.controller.inject({ kind: 'fall-off-bus', gpu: 2 });
    await waitFor(() => events.length > 0);
    const uuid = env.controller.current.gpus[2]?.uuid;
    expect(events[0]).toMatchObject({
      type: 'xid',
      xid: 79,
      data: 79,
      eventType: 0x8,
      gpuIndex: 2,
      gpuUuid: uuid,
      pciBusId: '00000000:3A:00.0',
    });

    const stopStarted = Date.now();
    await watcher.stop();
    expect(Date.now() - stopStarted).toBeLessThan(POLL_MS * 5);
    expect(watcher.running).toBe(false);
    await nvml.shutdown();
    expect(errors).toEqual([]);
    expect(env.library.inflightCalls()).toBe(0);
  });

  it('skips a lost GPU at registration and reports a DBE on another', async () => {
    await env.controller.load('gpu-lost-xid79');
    const nvml = new NvmlBinding({ libraryPath: env.libraryPath, fallbackToSystemLibrary: false });
    const events: NvmlEvent[] = [];
    const abort = new AbortController();
    const watcher = new NvmlEventWatcher({ nvml, pollMs: POLL_MS, signal: abort.signal, onEvent: (e) => events.push(e) });
    const started = await watcher.start();
    expect(started.registered.map((g) => g.index)).toEqual([0, 1, 2, 4, 5, 6, 7]);
    expect(started.errors).toEqual([expect.objectContaining({ gpuIndex: 3, code: 15 })]);

    await env.controller.inject({ kind: 'double-bit-ecc', gpu: 5 });
    await waitFor(() => events.some((e) => e.type === 'doubleBitEcc'));
    expect(events.find((e) => e.type === 'doubleBitEcc')).toMatchObject({ gpuIndex: 5 });

    abort.abort();
    await watcher.stop();
    await nvml.shutdown();
  });

  it('keeps watching the other GPUs when one falls off the bus and the wait answers GPU_IS_LOST', async () => {
    await env.controller.load('h100-sxm-8x-healthy');
    const nvml = new NvmlBinding({ libraryPath: env.libraryPath, fallbackToSystemLibrary: false });
    const events: NvmlEvent[] = [];
    const errors: Error[] = [];
    const lost: number[] = [];
    const watcher = new NvmlEventWatcher({
      nvml,
      pollMs: POLL_MS,
      onEvent: (e) => events.push(e),
      onError: (e) => errors.push(e),
      onGpuLost: (gpu) => lost.push(gpu.index),
    });
    await watcher.start();
    const waits = env.library.callCount('nvmlEventSetWait_v2');

    await env.controller.inject({ kind: 'fall-off-bus', gpu: 2 });
    await waitFor(() => lost.length > 0);
    expect(events.map((e) => [e.type, e.gpuIndex, e.xid])).toEqual([['xid', 2, 79]]);
    expect(lost).toEqual([2]);
    expect(watcher.lostGpus.map((g) => ({ index: g.index, code: g.code }))).toEqual([{ index: 2, code: 15 }]);

    await env.controller.inject({ kind: 'double-bit-ecc', gpu: 5 });
    await env.controller.inject({ kind: 'xid', gpu: 0, xid: 48 });
    await waitFor(() => events.length >= 3);
    expect(events.slice(1).map((e) => [e.type, e.gpuIndex])).toEqual([
      ['doubleBitEcc', 5],
      ['xid', 0],
    ]);
    expect(watcher.running).toBe(true);
    expect(errors).toEqual([]);
    // the watcher waits on, it does not spin on the lost GPU
    expect(env.library.callCount('nvmlEventSetWait_v2') - waits).toBeLessThan(40);

    await watcher.stop();
    await nvml.shutdown();
    expect(env.library.inflightCalls()).toBe(0);
  });

  it('rides out a wait that fails with UNKNOWN and delivers the events after it', async () => {
    await env.controller.load('h100-sxm-8x-healthy');
    const nvml = new NvmlBinding({ libraryPath: env.libraryPath, fallbackToSystemLibrary: false });
    const events: NvmlEvent[] = [];
    const errors: Error[] = [];
    const warnings: Error[] = [];
    const watcher = new NvmlEventWatcher({
      nvml,
      pollMs: POLL_MS,
      onEvent: (e) => events.push(e),
      onError: (e) => errors.push(e),
      onWarning: (e) => warnings.push(e),
    });
    await watcher.start();
    const scenario = env.controller.current;
    await env.controller.load({ ...scenario, errors: { nvmlEventSetWait_v2: 999 } });
    await waitFor(() => warnings.length > 0);
    expect(warnings[0]?.message).toContain('NVML event wait failed');
    await env.controller.load({ ...scenario, events: [{ gpu: 4, type: 'xid', data: 31 }] });
    await waitFor(() => events.length > 0);
    expect(events[0]).toMatchObject({ type: 'xid', xid: 31, gpuIndex: 4 });
    expect(watcher.running).toBe(true);
    expect(errors).toEqual([]);
    await watcher.stop();
    await nvml.shutdown();
  });
});

describe('NvmlEventWatcher memory events (R560+ event types)', () => {
  it('registers the memory event types on R570 and reports each kind', async () => {
    const r570 = await startFakeNvml('h100-memory-faults');
    try {
      const nvml = new NvmlBinding({ libraryPath: r570.libraryPath, fallbackToSystemLibrary: false });
      const events: NvmlEvent[] = [];
      const watcher = new NvmlEventWatcher({ nvml, pollMs: POLL_MS, onEvent: (e) => events.push(e) });
      const started = await watcher.start();
      // XID | DBE | GpuUnavailable | GpuRecoveryAction | ECC storm, DRAM retirement (+failure), poison (both)
      expect(started.registered[1]?.mask).toBe(0x8 | 0x2 | 0x4000 | 0x8000 | 0x200 | 0x400 | 0x800 | 0x1000 | 0x2000);
      await waitFor(() => events.length >= 3);
      expect(events.map((e) => [e.type, e.gpuIndex, e.eventType])).toEqual([
        ['dramRetirement', 1, 0x400],
        ['dramRetirementFailure', 1, 0x800],
        ['fatalPoison', 1, 0x2000],
      ]);
      await r570.controller.inject({ kind: 'event', event: { gpu: 0, type: 'singleBitEccStorm' } });
      await r570.controller.inject({ kind: 'event', event: { gpu: 0, type: 'nonFatalPoison' } });
      await waitFor(() => events.length >= 5);
      expect(events.slice(3).map((e) => e.type)).toEqual(['singleBitEccStorm', 'nonFatalPoison']);
      await watcher.stop();
      await nvml.shutdown();
    } finally {
      await r570.dispose();
    }
  });

  it('leaves them out on R550, whose driver does not know them', async () => {
    await env.controller.load('h100-sxm-8x-healthy');
    const nvml = new NvmlBinding({ libraryPath: env.libraryPath, fallbackToSystemLibrary: false });
    const supported = await (async () => {
      await nvml.init();
      return nvml.deviceGetSupportedEventTypes(await nvml.deviceGetHandleByIndex(0));
    })();
    // the scenario claims DramRetirementEvent|Failure (0xC00); the R550 build masks them as the driver would
    expect(supported & 0x3e00).toBe(0);
    await nvml.shutdown();
  });
});
