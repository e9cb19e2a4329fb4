/**
 * The NVML threads over the fake library's real ABI: snapshots come from a worker thread, a hung
 * call is noticed from outside, a replacement thread answers the other GPUs one deadline later,
 * and the hung GPU is skipped until its call returns — while this thread's event loop never waits.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { startFakeNvml, type FakeNvmlEnvironment } from '../../fake-nvml/harness.js';
import { loadScenario } from '../../fake-nvml/scenario.js';
import { createLogger } from '../../../lib/logger.js';
import { XidService } from '../../xid-service.js';
import { threadSources } from '../sources.js';
import { NvmlThread } from './nvml-thread.js';

const CALL_TIMEOUT_MS = 300;
const HANG_MS = 2_500;
let env: FakeNvmlEnvironment;
const logger = createLogger({ silent: true });

beforeAll(async () => {
  env = await startFakeNvml('h100-sxm-8x-healthy');
});
afterAll(async () => {
  await env.dispose();
});

function thread(): NvmlThread {
  return new NvmlThread('collect', {
    binding: { libraryPath: env.libraryPath, fallbackToSystemLibrary: false, callTimeoutMs: CALL_TIMEOUT_MS },
    callTimeoutMs: CALL_TIMEOUT_MS,
    logger,
  });
}

describe('NvmlThread', () => {
  it('collects a full snapshot on its worker thread', async () => {
    await env.controller.load('h100-sxm-8x-healthy');
    const t = thread();
    await t.start();
    try {
      const snap = await t.collect();
      expect(snap.nvml.available).toBe(true);
      expect(snap.gpus).toHaveLength(8);
      expect(snap.gpus.every((g) => g.errors.length === 0)).toBe(true);
    } finally {
      expect(await t.stop(2_000)).toBe(true);
    }
  });

  it('answers the other GPUs one deadline after a call hangs, skips the hung GPU, and polls it again once the call returns', async () => {
    const scenario = await loadScenario('h100-sxm-8x-healthy');
    await env.controller.load({
      ...scenario,
      gpus: scenario.gpus.map((g, i) => (i === 3 ? { ...g, delays: { nvmlDeviceGetPowerUsage: HANG_MS } } : g)),
    });
    const t = thread();
    await t.start();
    const loop = monitorEventLoopDelay({ resolution: 10 });
    loop.enable();
    try {
      const started = Date.now();
      const first = await t.collect();
      const took = Date.now() - started;
      expect(took).toBeLessThan(HANG_MS);
      expect(first.gpus).toHaveLength(8);
      const hungGpu = first.gpus[3];
      expect(hungGpu?.errors.some((e) => /no answer within/.test(e.error))).toBe(true);
      expect(first.gpus.filter((_g, i) => i !== 3).every((g) => g.power !== undefined)).toBe(true);
      expect(t.hungCalls()).toEqual([expect.objectContaining({ fn: 'nvmlDeviceGetPowerUsage' })]);

      // While the call is still blocked, the GPU is skipped: no second deadline to wait.
      const second = Date.now();
      const again = await t.collect();
      expect(Date.now() - second).toBeLessThan(CALL_TIMEOUT_MS);
      expect(again.gpus[3]?.errors.map((e) => e.error)).toEqual([expect.stringMatching(/nvmlDeviceGetPowerUsage.*skipped/)]);

      // The blocked call returns: its GPU is polled again.
      await env.controller.load(scenario);
      const deadline = Date.now() + HANG_MS * 3;
      while (t.hungCalls().length > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      expect(t.hungCalls()).toEqual([]);
      const recovered = await t.collect();
      expect(recovered.gpus[3]?.power).toBeDefined();
      // The main thread's event loop never waited on NVML.
      expect(loop.max / 1e6).toBeLessThan(200);
    } finally {
      loop.disable();
      await t.stop(2_000);
    }
  });
});

describe('NVML events on the NVML thread', () => {
  it('tell the XID service which GPU fell off the bus, keep the others watched, and leave the thread free for snapshots', async () => {
    await env.controller.load('h100-sxm-8x-healthy');
    const uuid = (await loadScenario('h100-sxm-8x-healthy')).gpus[2]?.uuid;
    const { snapshots, events: source } = await threadSources(
      { libraryPath: env.libraryPath, fallbackToSystemLibrary: false },
      CALL_TIMEOUT_MS,
      logger,
    );
    const xid = new XidService({ kmsgPath: '', kmsgPollMs: 1_000, logger, nvmlEvents: source });
    try {
      const waits = env.library.callCount('nvmlEventSetWait_v2');
      await xid.start();
      const deadline = Date.now() + 15_000;
      // the thread registers the GPUs (UUIDs included) before its first wait
      while (env.library.callCount('nvmlEventSetWait_v2') === waits && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      await env.controller.inject({ kind: 'fall-off-bus', gpu: 2 });
      while (xid.status().nvmlEvents.lostGpus === undefined && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      // the wait that answered GPU_IS_LOST is the watcher's warning; it rebuilt its set without GPU 2
      expect(xid.status().nvmlEvents).toEqual({ running: true, lostGpus: [uuid], warning: expect.stringContaining('event wait failed') });
      // the XID 79 the driver raised with it still arrives, and another GPU's XID after it
      await env.controller.inject({ kind: 'xid', gpu: 0, xid: 48 });
      while (xid.eventsSince(0).events.length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      expect(
        xid
          .eventsSince(0)
          .events.map((e) => e.xid)
          .sort((a, b) => a - b),
      ).toEqual([48, 79]);
      // the same thread collects while it watches: its event wait never blocks
      const snapshot = await snapshots.collect(['memory']);
      expect(snapshot.gpus.map((g) => g.lost)).toEqual([false, false, true, false, false, false, false, false]);
      expect(env.library.callCount('nvmlEventSetWait_v2') - waits).toBeGreaterThan(1);
    } finally {
      await xid.stop();
      expect(await source.stop(2_000)).toBe(true);
      expect(await snapshots.stop(2_000)).toBe(true);
    }
  });
});
