import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { startFakeNvml, type FakeNvmlEnvironment } from '../fake-nvml/harness.js';
import { NvmlBinding } from './binding.js';
import { NvmlEventWatcher } from './events.js';
import type { NvmlEvent } from './types.js';

const POLL_MS = 100;
const WAIT_LIMIT_MS = 5_000;

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
    expect(started.registered[0]?.mask).toBe(0x8 | 0x2 | 0x4000 | 0x8000);
    expect(watcher.running).toBe(true);

    await env.controller.inject({ kind: 'fall-off-bus', gpu: 2 });
    await waitFor(() => events.length > 0);
    const uuid = env.controller.current.gpus[2]?.uuid;
    expect(events[0]).toMatchObject({ type: 'xid', xid: 79, data: 79, eventType: 0x8, gpuIndex: 2, gpuUuid: uuid, pciBusId: '00000000:3A:00.0' });

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
});
