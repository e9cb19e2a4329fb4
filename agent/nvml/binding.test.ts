import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { startFakeNvml, type FakeNvmlEnvironment } from '../fake-nvml/harness.js';
import {
  NvmlBinding,
  NvmlError,
  NvmlLibraryError,
  NvmlReturn,
  NvmlTimeoutError,
  PROCESS_BUFFER_FILL,
  decodeProcessRecords,
  normalizeU64,
  normalizeU32,
} from './binding.js';

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
  return new NvmlBinding({
    libraryPath: env.libraryPath,
    fallbackToSystemLibrary: false,
    ...(callTimeoutMs === undefined ? {} : { callTimeoutMs }),
  });
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
    expect(err).toMatchObject({
      code: NvmlReturn.GPU_IS_LOST,
      codeName: 'GPU_IS_LOST',
      errorString: 'GPU is lost',
      fn: 'nvmlDeviceGetName',
    });
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

describe('NvmlBinding on an R470 driver, which lacks the newer symbols', () => {
  let r470: FakeNvmlEnvironment;

  beforeAll(async () => {
    r470 = await startFakeNvml('t4-legacy');
  });

  afterAll(async () => {
    await r470.dispose();
  });

  it('binds what the library exports and falls back to ThrottleReasons, memory info v1 and the _v2 process list', async () => {
    const nvml = new NvmlBinding({ libraryPath: r470.libraryPath, fallbackToSystemLibrary: false });
    await nvml.init();
    expect(nvml.hasFunction('nvmlDeviceGetCurrentClocksEventReasons')).toBe(false);
    expect(nvml.hasFunction('nvmlDeviceGetMemoryInfo_v2')).toBe(false);
    expect(nvml.hasFunction('nvmlDeviceGetComputeRunningProcesses_v3')).toBe(false);
    const handle = await nvml.deviceGetHandleByIndex(0);
    const calls = r470.library.callCount('nvmlDeviceGetComputeRunningProcesses_v2');
    expect(await nvml.deviceGetComputeRunningProcesses(handle)).toEqual([
      { pid: 3101, usedGpuMemory: 1024 * 1024 * 1024 },
      { pid: 3177, usedGpuMemory: 512 * 1024 * 1024 },
    ]);
    expect(r470.library.callCount('nvmlDeviceGetComputeRunningProcesses_v2')).toBeGreaterThan(calls);
    expect(await nvml.deviceGetCurrentClocksEventReasons(handle)).toBe(1);
    expect((await nvml.deviceGetMemoryInfo(handle)).reserved).toBeUndefined();
    await nvml.shutdown();
  });
});

describe('decodeProcessRecords', () => {
  /** A buffer as the binding hands it to the driver, with `records` written at `stride` bytes each. */
  function written(stride: number, records: Array<[number, bigint]>, capacity = 8): Buffer {
    const buffer = Buffer.alloc(capacity * 64, PROCESS_BUFFER_FILL);
    records.forEach(([pid, memory], i) => {
      const base = i * stride;
      buffer.fill(0, base, base + stride);
      buffer.writeUInt32LE(pid, base);
      buffer.writeBigUInt64LE(memory, base + 8);
      if (stride >= 24) {
        buffer.writeUInt32LE(0xffff_ffff, base + 16);
        buffer.writeUInt32LE(0xffff_ffff, base + 20);
      }
    });
    return buffer;
  }

  it.each([16, 24, 32])('tells %i-byte records by how far the driver wrote', (stride) => {
    const records: Array<[number, bigint]> = [
      [4242, 2n ** 31n],
      [4243, 2097152n],
      [4244, 0xffff_ffff_ffff_ffffn],
    ];
    expect(decodeProcessRecords(written(stride, records), 3)).toEqual({
      stride,
      processes: [{ pid: 4242, usedGpuMemory: 2 ** 31 }, { pid: 4243, usedGpuMemory: 2097152 }, { pid: 4244 }],
    });
  });

  it('reads a single record whatever its size', () => {
    for (const stride of [16, 24, 32])
      expect(decodeProcessRecords(written(stride, [[77, 1024n]]), 1)?.processes).toEqual([{ pid: 77, usedGpuMemory: 1024 }]);
  });

  it('refuses a buffer no record size explains rather than guess pids', () => {
    // the driver says one record but wrote two 24-byte ones: more than any record size explains
    expect(
      decodeProcessRecords(
        written(24, [
          [1, 1n],
          [2, 2n],
        ]),
        1,
      ),
    ).toBeUndefined();
    // pid 0 is no process
    expect(decodeProcessRecords(written(24, [[0, 5n]]), 1)).toBeUndefined();
    expect(decodeProcessRecords(Buffer.alloc(64, PROCESS_BUFFER_FILL), 0)).toEqual({ stride: 0, processes: [] });
  });
});
