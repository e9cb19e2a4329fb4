import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { startFakeNvml, type FakeNvmlEnvironment } from '../fake-nvml/harness.js';
import { NvmlBinding, NvmlError, NvmlLibraryError, NvmlReturn, NvmlTimeoutError, normalizeU64, normalizeU32 } from './binding.js';
import { collectSnapshot } from './collector.js';

const CONCURRENT_INITS = 50;
const DELAY_MS = 300;

let env: FakeNvmlEnvironment;

beforeAll(async () => {
  env = await startFakeNvml('h100-sxm-8x-healthy');
});

afterAll(async () => {
  await env.dispose();
});

function binding(callTimeoutMs?: number): NvmlBinding {
  return new NvmlBinding({ libraryPath: env.libraryPath, fallbackToSystemLibrary: false, ...(callTimeoutMs === undefined ? {} : { callTimeoutMs }) });
}

describe('NvmlBinding', () => {
  it('runs nvmlInit_v2 exactly once for 50 concurrent init calls', async () => {
    const nvml = binding();
    const before = env.library.initCount();
    await Promise.all(Array.from({ length: CONCURRENT_INITS }, () => nvml.init()));
    expect(env.library.initCount() - before).toBe(1);
    expect(nvml.initialized).toBe(true);
    await nvml.init();
    expect(env.library.initCount() - before).toBe(1);
    const shutdowns = env.library.shutdownCount();
    await nvml.shutdown();
    expect(env.library.shutdownCount() - shutdowns).toBe(1);
    expect(nvml.initialized).toBe(false);
  });

  it('makes shutdown wait for an in-flight delayed call', async () => {
    await env.controller.load('h100-sxm-8x-healthy');
    await env.controller.inject({ kind: 'delay', call: 'nvmlDeviceGetPowerUsage', ms: DELAY_MS });
    const nvml = binding(DELAY_MS * 10);
    await nvml.init();
    const handle = await nvml.deviceGetHandleByIndex(0);
    const order: string[] = [];
    const call = nvml.deviceGetPowerUsage(handle).then((mw) => order.push(`call:${mw}`));
    await new Promise((resolve) => setTimeout(resolve, 20));
    const busyBefore = env.library.shutdownWhileBusyCount();
    await nvml.shutdown().then(() => order.push('shutdown'));
    await call;
    expect(order).toEqual(['call:312250', 'shutdown']);
    expect(env.library.shutdownWhileBusyCount()).toBe(busyBefore);
    await expect(nvml.deviceGetCount()).rejects.toMatchObject({ code: NvmlReturn.UNINITIALIZED });
  });

  it('rejects a call past its deadline with NvmlTimeoutError and still waits for it on shutdown', async () => {
    await env.controller.load('h100-sxm-8x-healthy');
    await env.controller.inject({ kind: 'delay', call: 'nvmlDeviceGetPowerUsage', ms: DELAY_MS });
    const nvml = binding(50);
    await nvml.init();
    const handle = await nvml.deviceGetHandleByIndex(0);
    const started = Date.now();
    const err = await nvml.deviceGetPowerUsage(handle).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NvmlTimeoutError);
    expect(err).toBeInstanceOf(NvmlError);
    expect(Date.now() - started).toBeLessThan(DELAY_MS);
    expect(nvml.inflightCalls).toBe(1);
    const busyBefore = env.library.shutdownWhileBusyCount();
    await nvml.shutdown();
    expect(nvml.inflightCalls).toBe(0);
    expect(env.library.shutdownWhileBusyCount()).toBe(busyBefore);
  });

  it('honours an AbortSignal on a call', async () => {
    await env.controller.load('h100-sxm-8x-healthy');
    await env.controller.inject({ kind: 'delay', call: 'nvmlDeviceGetPowerUsage', ms: DELAY_MS });
    const nvml = binding();
    await nvml.init();
    const handle = await nvml.deviceGetHandleByIndex(0);
    const controller = new AbortController();
    const pending = nvml.deviceGetPowerUsage(handle, { signal: controller.signal });
    controller.abort(new Error('caller gave up'));
    await expect(pending).rejects.toThrow('caller gave up');
    await nvml.shutdown();
  });

  it('maps return codes to typed errors carrying nvmlErrorString text', async () => {
    await env.controller.load('gpu-lost-xid79');
    const nvml = binding();
    await nvml.init();
    const handle = await nvml.deviceGetHandleByIndex(3);
    const err = await nvml.deviceGetName(handle).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NvmlError);
    expect(err).toMatchObject({ code: NvmlReturn.GPU_IS_LOST, codeName: 'GPU_IS_LOST', errorString: 'GPU is lost', fn: 'nvmlDeviceGetName' });
    await nvml.shutdown();
  });

  it('wraps a missing library in NvmlLibraryError naming the path', async () => {
    const nvml = new NvmlBinding({ libraryPath: '/nonexistent/libnvidia-ml.so.1', fallbackToSystemLibrary: false });
    const err = await nvml.init().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NvmlLibraryError);
    expect((err as Error).message).toContain('/nonexistent/libnvidia-ml.so.1');
    expect((err as Error).message).toContain('Failed to load shared library');
  });

  it('tolerates a second binding on the same library in the same process', async () => {
    await env.controller.load('h100-sxm-8x-healthy');
    const a = binding();
    const b = binding();
    await Promise.all([a.init(), b.init()]);
    expect(await a.deviceGetCount()).toBe(8);
    expect(await b.deviceGetCount()).toBe(8);
    await Promise.all([a.shutdown(), b.shutdown()]);
  });

  it('normalises 64-bit values and NOT_AVAILABLE sentinels', () => {
    expect(normalizeU64(42)).toBe(42);
    expect(normalizeU64(2n ** 60n)).toBe(2 ** 60);
    expect(normalizeU64(0xffff_ffff_ffff_ffffn)).toBeUndefined();
    expect(normalizeU32(0xffff_ffff)).toBeUndefined();
    expect(normalizeU32(7)).toBe(7);
  });
});

describe('NvmlBinding on a legacy driver without newer symbols', () => {
  let legacy: FakeNvmlEnvironment;

  beforeAll(async () => {
    legacy = await startFakeNvml('h100-sxm-8x-healthy', 'legacy');
  });

  afterAll(async () => {
    await legacy.dispose();
    // the current-variant library must read its own state again for later tests
    env.library.setStatePath(env.controller.stateFile);
  });

  it('falls back to ClocksThrottleReasons and memory info v1, and reports max PCIe as unsupported', async () => {
    const nvml = new NvmlBinding({ libraryPath: legacy.libraryPath, fallbackToSystemLibrary: false });
    const snapshot = await collectSnapshot({ nvml });
    await nvml.shutdown();
    expect(nvml.hasFunction('nvmlDeviceGetCurrentClocksEventReasons')).toBe(false);
    const g1 = snapshot.gpus[1];
    expect(g1?.clockEventReasons).toEqual({ mask: 1, names: ['GpuIdle'] });
    expect(g1?.memory?.reservedBytes).toBeUndefined();
    expect(g1?.memory?.usedBytes).toBe((579 + 4) * 1024 * 1024);
    expect(g1?.pcie).toEqual({ currentGen: 5, currentWidth: 16, replayCounter: 0 });
    expect(g1?.unsupported).toEqual(expect.arrayContaining(['pcie.maxGen', 'pcie.maxWidth']));
    expect(g1?.errors).toEqual([]);
  });
});
