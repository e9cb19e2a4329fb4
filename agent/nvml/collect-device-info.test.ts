import { afterAll, afterEach, describe, expect, it } from '@jest/globals';
import { FakeNvmlEraPool, type FakeNvmlEnvironment } from '../fake-nvml/harness.js';
import { loadScenario, type FakeNvmlScenario } from '../fake-nvml/scenario.js';
import { InforomObject, NvmlBinding, NvmlFieldId, NvmlReturn } from './binding.js';
import { SLOW_COUNTER_REFRESH_MS, toGpuFabric } from './collect-device-info.js';
import { collectSnapshot } from './collector.js';
import type { GpuSnapshot, NvmlCheck, NvmlSnapshot } from './types.js';

const GiB = 1024 ** 3;
const MiB = 1024 ** 2;
const CLUSTER = '6b2f1c9e0d4a4f3b8e7a5c1d2e3f4a5b';
/** One library per driver era, each reading its own state file. */
const pool = new FakeNvmlEraPool();
let nvml: NvmlBinding | undefined;

const envFor = (scenario: string | FakeNvmlScenario): Promise<FakeNvmlEnvironment> => pool.envFor(scenario);

afterEach(async () => {
  await nvml?.shutdown();
  nvml = undefined;
});

afterAll(async () => {
  await pool.dispose();
});

async function snapshotOf(
  scenario: string | FakeNvmlScenario,
  checks?: readonly NvmlCheck[],
): Promise<{ snapshot: NvmlSnapshot; env: FakeNvmlEnvironment }> {
  const env = await envFor(scenario);
  nvml = new NvmlBinding({ libraryPath: env.libraryPath, fallbackToSystemLibrary: false });
  const snapshot = await collectSnapshot(checks === undefined ? { nvml } : { nvml, checks });
  return { snapshot, env };
}

function gpu(snapshot: NvmlSnapshot, index: number): GpuSnapshot {
  const found = snapshot.gpus[index];
  if (found === undefined) throw new Error(`no GPU ${index} in snapshot`);
  return found;
}

describe('device info through the fake library', () => {
  it('reads field values, fabric (V, v2 struct), VBIOS, InfoROM, limits and BAR1 of an HGX H100 on R550', async () => {
    const { snapshot } = await snapshotOf('h100-sxm-8x-healthy');
    expect(snapshot.errors).toEqual([]);
    const g0 = gpu(snapshot, 0);
    expect(g0.errors).toEqual([]);
    expect(g0.temperature?.memoryCelsius).toBe(38);
    expect(g0.energyMillijoules).toBe(912345678);
    expect(g0.violationTime).toEqual({ thermalNs: 0, powerNs: 0, thermalReadAt: expect.any(String) });
    expect(g0.pcie).toMatchObject({ replayRolloverCounter: 0, correctableErrors: 0 });
    // R550 refuses the v3 struct: the v2 answer carries the health mask, not the summary
    expect(g0.fabric).toEqual({
      state: 'completed',
      status: 0,
      cliqueId: 1,
      clusterUuid: CLUSTER,
      healthMask: 2,
      degradedBandwidth: false,
    });
    expect(g0.vbiosVersion).toBe('96.00.74.00.01');
    expect(g0.inforom).toEqual({ imageVersion: 'G520.0200.00.05', oemVersion: '2.1', eccVersion: '7.16', valid: true });
    expect(g0.power).toMatchObject({ minLimitWatts: 200, maxLimitWatts: 700, defaultLimitWatts: 700 });
    expect(g0.bar1).toEqual({ totalBytes: 128 * GiB, usedBytes: 2 * MiB, freeBytes: 128 * GiB - 2 * MiB });
  });

  it('re-reads the slow counters (energy, thermal violation, PCIe) at most every SLOW_COUNTER_REFRESH_MS and says when', async () => {
    let nowMs = Date.parse('2026-12-04T12:00:00.000Z');
    const now = (): Date => new Date(nowMs);
    const env = await envFor('h100-sxm-8x-healthy');
    nvml = new NvmlBinding({ libraryPath: env.libraryPath, fallbackToSystemLibrary: false });
    const first = await collectSnapshot({ nvml, now });
    // the slow counters' values [energy, thermal violation, replays, rollovers, correctable] and their stamps
    const slowCounters = (
      [energy, thermalNs, replays, rollovers, correctable]: readonly number[],
      at: string,
    ): Record<string, unknown> => ({
      energyMillijoules: energy,
      energyReadAt: at,
      violationTime: { thermalNs, thermalReadAt: at },
      pcie: { replayCounter: replays, replayRolloverCounter: rollovers, correctableErrors: correctable, countersReadAt: at },
    });
    const before = [912345678, 0, 0, 0, 0];
    const at0 = '2026-12-04T12:00:00.000Z';
    expect(gpu(first, 0)).toMatchObject(slowCounters(before, at0));
    expect(gpu(first, 0).violationTime?.powerNs).toBe(0);
    await env.controller.inject({
      kind: 'patch-gpu',
      gpu: 0,
      patch: {
        energyMillijoules: 912400000,
        violationTime: { thermalNs: 7, powerNs: 9 },
        memoryTemperatureCelsius: 41,
        pcie: { replay: 5, replayRollover: 1, correctableErrors: 12 },
      },
    });
    const replayCalls = env.library.callCount('nvmlDeviceGetPcieReplayCounter');
    nowMs += SLOW_COUNTER_REFRESH_MS - 1;
    const soon = await collectSnapshot({ nvml, now });
    expect(gpu(soon, 0)).toMatchObject(slowCounters(before, at0));
    expect(env.library.callCount('nvmlDeviceGetPcieReplayCounter')).toBe(replayCalls);
    // what is cheap to read is read every time
    expect(gpu(soon, 0).temperature?.memoryCelsius).toBe(41);
    expect(gpu(soon, 0).violationTime?.powerNs).toBe(9);
    nowMs += 1;
    const later = await collectSnapshot({ nvml, now });
    expect(gpu(later, 0)).toMatchObject(slowCounters([912400000, 7, 5, 1, 12], '2026-12-04T12:00:05.000Z'));
    expect(gpu(later, 0).violationTime?.powerNs).toBe(9);
  });

  it('a synchronous binding (the NVML thread) reads every GPU its own field values, 64-bit values included', async () => {
    const env = await envFor('h100-sxm-8x-healthy');
    // the largest exact value (all 53 bits) and one just above 2^32 (the high word counts)
    const energies = [Number.MAX_SAFE_INTEGER, 2 ** 32 + 5, 912345678];
    for (const [index, energyMillijoules] of energies.entries())
      await env.controller.inject({ kind: 'patch-gpu', gpu: index, patch: { energyMillijoules } });
    nvml = new NvmlBinding({ libraryPath: env.libraryPath, fallbackToSystemLibrary: false });
    const pooled = await collectSnapshot({ nvml });
    await nvml.shutdown();
    nvml = new NvmlBinding({ libraryPath: env.libraryPath, fallbackToSystemLibrary: false, synchronous: true });
    // the GPUs are read concurrently: each batch is decoded before another call reuses the scratch buffer
    const synchronous = await collectSnapshot({ nvml });
    expect(synchronous.gpus.slice(0, 3).map((g) => g.energyMillijoules)).toEqual(energies);
    // the values, not when each binding read them
    const fieldsOf = (s: NvmlSnapshot): unknown[] =>
      s.gpus.map((g) => [
        g.energyMillijoules,
        g.temperature?.memoryCelsius,
        g.violationTime?.thermalNs,
        g.violationTime?.powerNs,
        g.pcie?.replayRolloverCounter,
        g.pcie?.correctableErrors,
        g.recoveryAction,
        g.nvlinks,
      ]);
    expect(fieldsOf(synchronous)).toEqual(fieldsOf(pooled));
  });

  it('remembers a GPU that has no fan or page retirement instead of asking again every snapshot', async () => {
    const { snapshot: first, env } = await snapshotOf('h100-sxm-8x-healthy');
    expect(gpu(first, 0).unsupported).toEqual(expect.arrayContaining(['fanSpeedPercent', 'retiredPages']));
    const calls = (): number[] =>
      ['nvmlDeviceGetFanSpeed', 'nvmlDeviceGetRetiredPages', 'nvmlDeviceGetRetiredPagesPendingStatus'].map((fn) =>
        env.library.callCount(fn),
      );
    const before = calls();
    const again = await collectSnapshot({ nvml: nvml as NvmlBinding });
    expect(calls()).toEqual(before);
    // the refusal is replayed: the snapshot says the same as when it asked
    expect(again.gpus.map((g) => [...g.unsupported].sort())).toEqual(first.gpus.map((g) => [...g.unsupported].sort()));
    expect(gpu(again, 0).fanSpeedPercent).toBeUndefined();
  });

  it('keeps reading a fan the board has, every snapshot', async () => {
    const scenario = await loadScenario('h100-sxm-8x-healthy');
    const withFan: FakeNvmlScenario = {
      ...scenario,
      name: 'h100-with-fans',
      gpuDefaults: {
        ...scenario.gpuDefaults,
        fanSpeedPercent: 41,
        unsupported: ['nvmlDeviceGetRetiredPages', 'nvmlDeviceGetRetiredPagesPendingStatus'],
      },
    };
    const { snapshot: first, env } = await snapshotOf(withFan);
    expect(gpu(first, 0).fanSpeedPercent).toBe(41);
    const before = env.library.callCount('nvmlDeviceGetFanSpeed');
    const again = await collectSnapshot({ nvml: nvml as NvmlBinding });
    expect(env.library.callCount('nvmlDeviceGetFanSpeed') - before).toBe(8);
    expect(gpu(again, 7).fanSpeedPercent).toBe(41);
  });

  it('remembers the fabric struct version the driver accepts (R550 refuses v3 once, not every snapshot)', async () => {
    const { env } = await snapshotOf('h100-sxm-8x-healthy');
    const before = env.library.callCount('nvmlDeviceGetGpuFabricInfoV');
    const again = await collectSnapshot({ nvml: nvml as NvmlBinding });
    expect(env.library.callCount('nvmlDeviceGetGpuFabricInfoV') - before).toBe(8);
    expect(gpu(again, 7).fabric?.healthMask).toBe(2);
  });

  it('makes one field-value call per GPU for every new field and the recovery action, and caches static answers', async () => {
    const env = await envFor('h100-r570-recovery-action');
    // synchronous, as on the NVML thread: no call deadline can expire on a busy machine (an answer with an error is not cached)
    nvml = new NvmlBinding({ libraryPath: env.libraryPath, fallbackToSystemLibrary: false, synchronous: true });
    const first = await collectSnapshot({ nvml });
    expect(first.gpus.flatMap((g) => g.errors)).toEqual([]);
    const calls = (fn: string): number => env.library.callCount(fn);
    const [fields, fabric, vbios, validate] = [
      'nvmlDeviceGetFieldValues',
      'nvmlDeviceGetGpuFabricInfoV',
      'nvmlDeviceGetVbiosVersion',
      'nvmlDeviceValidateInforom',
    ].map(calls);
    const again = await collectSnapshot({ nvml: nvml as NvmlBinding });
    // 2 GPUs, H100: one device-info batch each; the NVLink states (18 values) and DL counters (78
    // values, two calls of at most 64) as field values too (no NVLink5 batch); one fabric call
    // each, versions from the cache
    expect(calls('nvmlDeviceGetFieldValues') - (fields ?? 0)).toBe(2 * (1 + 1 + 2));
    expect(calls('nvmlDeviceGetGpuFabricInfoV') - (fabric ?? 0)).toBe(2);
    expect(calls('nvmlDeviceGetVbiosVersion') - (vbios ?? 0)).toBe(0);
    expect(calls('nvmlDeviceValidateInforom') - (validate ?? 0)).toBe(0);
    expect(gpu(again, 1).recoveryAction).toBe('gpuReset');
    expect(gpu(again, 0).vbiosVersion).toBe('96.00.74.00.01');
    expect(gpu(again, 0).unsupported).toContain('inforom.powerVersion');
    // R570 answers the v3 struct: the health summary is there
    expect(gpu(again, 0).fabric).toMatchObject({ state: 'completed', healthSummary: 'healthy', degradedBandwidth: false });
  });

  it('reports a fabric that is not started and one that completed with an error (R570, v3)', async () => {
    const { snapshot } = await snapshotOf('hgx-h100-fabric-not-ready');
    expect(gpu(snapshot, 0).fabric).toMatchObject({ state: 'notStarted', healthSummary: 'notSupported' });
    expect(gpu(snapshot, 1).fabric).toEqual({
      state: 'completed',
      status: 999,
      cliqueId: 1,
      clusterUuid: CLUSTER,
      healthMask: 1,
      healthSummary: 'unhealthy',
      degradedBandwidth: true,
    });
  });

  it('reads the fabric through the v1 call where GpuFabricInfoV is absent (R535)', async () => {
    const { snapshot, env } = await snapshotOf('h100-r535-43-30-processes');
    expect(nvml?.hasFunction('nvmlDeviceGetGpuFabricInfoV')).toBe(false);
    expect(gpu(snapshot, 0).fabric).toEqual({ state: 'completed', status: 0, cliqueId: 1, clusterUuid: CLUSTER });
    expect(env.library.callCount('nvmlDeviceGetGpuFabricInfo')).toBeGreaterThan(0);
  });

  it('marks a corrupted InfoROM invalid without an error', async () => {
    const { snapshot } = await snapshotOf('h100-inforom-corrupted');
    expect(gpu(snapshot, 0).inforom?.valid).toBe(true);
    expect(gpu(snapshot, 1).inforom?.valid).toBe(false);
    expect(gpu(snapshot, 1).errors).toEqual([]);
  });

  it('reads the memory and link fault fields', async () => {
    const { snapshot } = await snapshotOf('h100-memory-faults');
    const g0 = gpu(snapshot, 0);
    expect(g0.temperature).toMatchObject({ memoryCelsius: 96, memoryMaxCelsius: 95 });
    expect(g0.violationTime).toEqual({ thermalNs: 600_000_000_000, powerNs: 0, thermalReadAt: expect.any(String) });
    expect(g0.pcie).toMatchObject({ replayCounter: 12, replayRolloverCounter: 3, correctableErrors: 25000 });
  });

  it('asks only the fields of the wanted checks', async () => {
    const { snapshot } = await snapshotOf('h100-memory-faults', ['pcie']);
    const g0 = gpu(snapshot, 0);
    expect(g0.pcie).toMatchObject({ replayRolloverCounter: 3, correctableErrors: 25000 });
    expect(g0.temperature).toBeUndefined();
    expect(g0.recoveryAction).toBeUndefined();
    expect(g0.fabric).toBeUndefined();
    expect(g0.bar1).toBeUndefined();
  });

  it('lists every field as unsupported when nvmlDeviceGetFieldValues is', async () => {
    const base = await loadScenario('h100-sxm-8x-healthy');
    const { snapshot } = await snapshotOf({
      ...base,
      name: 'no-field-values',
      gpus: base.gpus.slice(0, 1),
      gpuDefaults: { ...base.gpuDefaults, unsupported: ['nvmlDeviceGetFieldValues'] },
    });
    expect(gpu(snapshot, 0).unsupported).toEqual(
      expect.arrayContaining(['temperature.memoryCelsius', 'energyMillijoules', 'pcie.correctableErrors', 'recoveryAction']),
    );
    expect(gpu(snapshot, 0).unsupported).not.toContain('fieldValues');
  });
});

describe('binding calls through the fake library', () => {
  it('falls back from v3 to v2 and answers FUNCTION_NOT_FOUND for the fabric on R470', async () => {
    const env = await envFor('t4-legacy');
    nvml = new NvmlBinding({ libraryPath: env.libraryPath, fallbackToSystemLibrary: false });
    await nvml.init();
    const h = await nvml.deviceGetHandleByIndex(0);
    await expect(nvml.deviceGetGpuFabricInfo(h)).rejects.toMatchObject({ code: NvmlReturn.FUNCTION_NOT_FOUND });
    expect(await nvml.deviceGetInforomVersion(h, InforomObject.ECC)).toBe('5.0');
    expect(await nvml.deviceGetInforomVersion(h, InforomObject.POWER)).toBe('N/A');
    expect(await nvml.deviceGetPowerManagementLimitConstraints(h)).toEqual({ min: 60_000, max: 70_000 });
    expect(await nvml.deviceGetPowerManagementDefaultLimit(h)).toBe(70_000);
    const [rollover, correctable] = await nvml.deviceGetFieldValues(h, [
      { fieldId: NvmlFieldId.PCIE_REPLAY_ROLLOVER_COUNTER },
      { fieldId: NvmlFieldId.PCIE_COUNT_CORRECTABLE_ERRORS },
    ]);
    expect(rollover).toEqual({ fieldId: 95, scopeId: 0, code: NvmlReturn.SUCCESS, value: 0 });
    expect(correctable?.code).toBe(NvmlReturn.NOT_SUPPORTED);
  });

  it('answers a synchronous binding (the NVML thread path) the same way', async () => {
    const env = await envFor('hgx-h100-fabric-not-ready');
    nvml = new NvmlBinding({ libraryPath: env.libraryPath, fallbackToSystemLibrary: false, synchronous: true });
    await nvml.init();
    const h = await nvml.deviceGetHandleByIndex(1);
    expect(toGpuFabric(await nvml.deviceGetGpuFabricInfo(h))).toMatchObject({
      state: 'completed',
      status: 999,
      healthSummary: 'unhealthy',
    });
    expect(await nvml.deviceValidateInforom(h)).toBe(true);
    expect(await nvml.deviceGetBar1MemoryInfo(h)).toEqual({ total: 128 * GiB, used: 2 * MiB, free: 128 * GiB - 2 * MiB });
  });
});
