import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { FakeNvmlEraPool, type FakeNvmlEnvironment } from '../fake-nvml/harness.js';
import { listScenarios, loadScenario, scenarioBlocks, type FakeNvmlScenario } from '../fake-nvml/scenario.js';
import { NvmlBinding } from './binding.js';
import { collectSnapshot } from './collector.js';
import type { GpuSnapshot, NvmlSnapshot } from './types.js';

/** The r550 library the H100 scenarios run on. */
let env: FakeNvmlEnvironment;
/** One library per driver era, each reading its own state file. */
const pool = new FakeNvmlEraPool();
let nvml: NvmlBinding | undefined;

const envFor = (scenario: string | FakeNvmlScenario): Promise<FakeNvmlEnvironment> => pool.envFor(scenario);

beforeAll(async () => {
  env = await envFor('h100-sxm-8x-healthy');
});

afterEach(async () => {
  await nvml?.shutdown();
  nvml = undefined;
});

afterAll(async () => {
  await pool.dispose();
});

async function snapshotOf(scenario: string | FakeNvmlScenario): Promise<NvmlSnapshot> {
  const e = await envFor(scenario);
  nvml = new NvmlBinding({ libraryPath: e.libraryPath, fallbackToSystemLibrary: false });
  return collectSnapshot({ nvml });
}

function gpu(snapshot: NvmlSnapshot, index: number): GpuSnapshot {
  const found = snapshot.gpus[index];
  if (found === undefined) throw new Error(`no GPU ${index} in snapshot`);
  return found;
}

describe('collectSnapshot against the fake NVML library', () => {
  it('loads every shipped scenario into a JSON-able snapshot of the expected shape', async () => {
    const names = await listScenarios();
    expect(names).toEqual(
      expect.arrayContaining([
        'h100-sxm-8x-healthy',
        'a100-dbe-remap-pending',
        'thermal-hw-slowdown',
        'nvlink-down',
        'gpu-lost-xid79',
        'mig-enabled',
        't4-legacy',
        'no-gpus',
      ]),
    );
    // A scenario whose call blocks for an hour would hold a pool thread of this process for as
    // long; it is exercised by the agent's shutdown test instead.
    const blocking: string[] = [];
    for (const name of names) if (scenarioBlocks(await loadScenario(name))) blocking.push(name);
    expect(blocking).toEqual(['nvml-call-hangs']);
    for (const name of names.filter((n) => !blocking.includes(n))) {
      const snapshot = await snapshotOf(name);
      expect(JSON.parse(JSON.stringify(snapshot))).toEqual(snapshot);
      expect(Number.isNaN(Date.parse(snapshot.collectedAt))).toBe(false);
      const expected = await loadScenario(name);
      expect({ name, errors: snapshot.errors }).toEqual({ name, errors: [] });
      if (expected.gpus.length === 0) {
        expect(snapshot.nvml.available).toBe(false);
      } else {
        expect(snapshot.nvml).toMatchObject({ available: true, driverVersion: expected.driverVersion });
        expect(snapshot.gpus).toHaveLength(expected.gpus.length);
        snapshot.gpus.forEach((g, i) => {
          expect(g.index).toBe(i);
          expect({ name, gpu: i, errors: g.errors }).toEqual({ name, gpu: i, errors: [] });
          if (g.lost) return;
          expect(g.uuid).toMatch(/^GPU-/);
          expect(g.pciBusIdKernel).toMatch(/^[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}$/);
        });
      }
      await nvml?.shutdown();
      nvml = undefined;
    }
  });

  it('covers every field of a healthy H100', async () => {
    const snapshot = await snapshotOf('h100-sxm-8x-healthy');
    expect(snapshot.nvml).toEqual({ available: true, driverVersion: '550.54.15', nvmlVersion: '12.550.54.15', cudaDriverVersion: '12.4' });
    expect(snapshot.errors).toEqual([]);
    expect(snapshot.gpus).toHaveLength(8);
    const g0 = gpu(snapshot, 0);
    expect(g0).toMatchObject({
      index: 0,
      lost: false,
      name: 'NVIDIA H100 80GB HBM3',
      pciBusId: '00000000:18:00.0',
      pciBusIdKernel: '0000:18:00',
      memory: { totalBytes: 81559 * 1024 * 1024, reservedBytes: 579 * 1024 * 1024, usedBytes: 4 * 1024 * 1024 },
      temperature: { gpuCelsius: 51, slowdownCelsius: 89, shutdownCelsius: 92, gpuMaxCelsius: 87, memoryMaxCelsius: 95 },
      power: { usageWatts: 312.25, enforcedLimitWatts: 700 },
      utilization: { gpuPercent: 35, memoryPercent: 12 },
      clocks: { graphicsMHz: 1980, smMHz: 1980, memoryMHz: 2619, maxGraphicsMHz: 1980, maxSmMHz: 1980, maxMemoryMHz: 2619 },
      clockEventReasons: { mask: 0, names: [] },
      ecc: {
        enabled: true,
        pendingEnabled: true,
        volatileCorrected: 0,
        volatileUncorrected: 0,
        aggregateCorrected: 3,
        aggregateUncorrected: 0,
      },
      remappedRows: { corrected: 0, uncorrected: 0, pending: false, failure: false },
      pcie: { currentGen: 5, currentWidth: 16, maxGen: 5, maxWidth: 16, replayCounter: 0 },
      processes: [{ pid: 4242, usedMemoryBytes: 2048 * 1024 * 1024 }],
      migMode: { enabled: false, pendingEnabled: false },
      persistenceMode: true,
      performanceState: 0,
      computeMode: 'default',
      errors: [],
    });
    expect(g0.memory?.freeBytes).toBe((81559 - 579 - 4) * 1024 * 1024);
    expect(g0.serial).toMatch(/^\d{13}$/);
    expect(g0.fanSpeedPercent).toBeUndefined();
    expect(g0.retiredPages).toBeUndefined();
    // H100 boards have no InfoROM power object
    expect(g0.unsupported.sort()).toEqual(['fanSpeedPercent', 'inforom.powerVersion', 'recoveryAction', 'retiredPages']);
    expect(g0.nvlinks).toHaveLength(18);
    expect(g0.nvlinks?.every((l) => l.active)).toBe(true);
    expect(g0.nvlinks?.[17]).toEqual({ link: 17, active: true, errors: { replay: 0, recovery: 0, crcFlit: 0, crcData: 0, eccData: 0 } });
    expect(gpu(snapshot, 1).clockEventReasons).toEqual({ mask: 1, names: ['GpuIdle'] });
    expect(new Set(snapshot.gpus.map((g) => g.uuid)).size).toBe(8);
  });

  it('reports the volatile DBE count and the pending remap on the A100', async () => {
    const snapshot = await snapshotOf('a100-dbe-remap-pending');
    const g2 = gpu(snapshot, 2);
    expect(g2.ecc).toMatchObject({ volatileUncorrected: 2, aggregateUncorrected: 2, volatileCorrected: 14 });
    expect(g2.remappedRows).toEqual({ corrected: 1, uncorrected: 2, pending: true, failure: false });
    expect(gpu(snapshot, 1).remappedRows?.pending).toBe(false);
    expect(snapshot.nvml).toMatchObject({ cudaDriverVersion: '12.2' });
  });

  it('decodes hardware thermal slowdown', async () => {
    const g1 = gpu(await snapshotOf('thermal-hw-slowdown'), 1);
    expect(g1.temperature?.gpuCelsius).toBe(91);
    expect(g1.clockEventReasons).toEqual({ mask: 0x60, names: ['SwThermalSlowdown', 'HwThermalSlowdown'] });
  });

  it('shows the NVLink that is down with its error counters', async () => {
    const snapshot = await snapshotOf('nvlink-down');
    const links = gpu(snapshot, 5).nvlinks ?? [];
    expect(links.filter((l) => !l.active).map((l) => l.link)).toEqual([7]);
    expect(links[7]?.errors).toEqual({ replay: 1200, recovery: 3, crcFlit: 45, crcData: 2, eccData: 0 });
    expect(gpu(snapshot, 4).nvlinks?.every((l) => l.active)).toBe(true);
  });

  it('marks the lost GPU and keeps the other seven intact', async () => {
    const snapshot = await snapshotOf('gpu-lost-xid79');
    const lost = gpu(snapshot, 3);
    expect(lost).toEqual({ index: 3, lost: true, unsupported: [], errors: [] });
    const others = snapshot.gpus.filter((g) => g.index !== 3);
    expect(others).toHaveLength(7);
    for (const g of others) {
      expect(g.lost).toBe(false);
      expect(g.errors).toEqual([]);
      expect(g.temperature?.gpuCelsius).toBe(34);
      expect(g.nvlinks).toHaveLength(18);
    }
  });

  it('lists utilization as unsupported on MIG-enabled GPUs only', async () => {
    const snapshot = await snapshotOf('mig-enabled');
    const mig = gpu(snapshot, 0);
    expect(mig.migMode).toEqual({ enabled: true, pendingEnabled: true });
    expect(mig.utilization).toBeUndefined();
    expect(mig.unsupported).toContain('utilization');
    const plain = gpu(snapshot, 2);
    expect(plain.migMode).toEqual({ enabled: false, pendingEnabled: false });
    expect(plain.utilization).toEqual({ gpuPercent: 0, memoryPercent: 0 });
    expect(plain.unsupported).not.toContain('utilization');
  });

  it('lists the MIG devices of GPUs in MIG mode by slot, skipping empty slots (NOT_FOUND)', async () => {
    const snapshot = await snapshotOf('mig-enabled');
    expect(gpu(snapshot, 0).migDevices?.map((d) => d.index)).toEqual([0, 1, 2]);
    expect(gpu(snapshot, 1).migDevices).toEqual([
      { index: 0, uuid: 'MIG-1f2e3d4c-5b6a-5978-8a9b-1c2d3e4f5a6b' },
      { index: 2, uuid: 'MIG-2a3b4c5d-6e7f-5081-9a2b-3c4d5e6f7a8b' },
    ]);
    expect(gpu(snapshot, 1).errors).toEqual([]);
    expect(gpu(snapshot, 2).migDevices).toBeUndefined();
  });

  it('reports what a T4 on an R470 driver does not support, and reads what it has through the older calls', async () => {
    const snapshot = await snapshotOf('t4-legacy');
    expect(snapshot.nvml).toMatchObject({ driverVersion: '470.223.02', cudaDriverVersion: '11.4' });
    expect(snapshot.errors).toEqual([]);
    const t4 = gpu(snapshot, 0);
    // R470 has no fabric call nor PCIe error-count field; GDDR6 has no memory temperature sensor
    expect(t4.unsupported.sort()).toEqual([
      'fabric',
      'fanSpeedPercent',
      'migMode',
      'nvlinks',
      'pcie.correctableErrors',
      'recoveryAction',
      'remappedRows',
      'temperature.memoryCelsius',
      'temperature.memoryMaxCelsius',
    ]);
    expect(t4.retiredPages).toEqual({ singleBitEcc: 0, doubleBitEcc: 0, pending: false });
    // no MemoryInfo_v2 in R470: the v1 call has no reservation figure
    expect(t4.memory).toEqual({ totalBytes: 15360 * 1024 * 1024, usedBytes: 1537 * 1024 * 1024, freeBytes: 13823 * 1024 * 1024 });
    expect(t4.pcie).toEqual({
      currentGen: 1,
      currentWidth: 16,
      maxGen: 3,
      maxWidth: 16,
      replayCounter: 0,
      replayRolloverCounter: 0,
      countersReadAt: expect.any(String),
    });
    // no ClocksEventReasons in R470: the ThrottleReasons symbol answers
    expect(t4.clockEventReasons).toEqual({ mask: 1, names: ['GpuIdle'] });
    // no _v3 in R470: the _v2 call lists the processes
    expect(t4.processes).toEqual([
      { pid: 3101, usedMemoryBytes: 1024 * 1024 * 1024 },
      { pid: 3177, usedMemoryBytes: 512 * 1024 * 1024 },
    ]);
    expect(t4.performanceState).toBe(8);
    expect(t4.errors).toEqual([]);
  });

  it('reads every pid of 30 processes from a driver that writes 32-byte records (535.43-535.86)', async () => {
    const snapshot = await snapshotOf('h100-r535-43-30-processes');
    const expected = (await loadScenario('h100-r535-43-30-processes')).gpus.map((g) =>
      (g.processes ?? []).map((p) => ({ pid: p.pid, usedMemoryBytes: p.usedMemoryBytes })),
    );
    expect(gpu(snapshot, 0).processes).toEqual(expected[0]);
    expect(gpu(snapshot, 0).processes).toHaveLength(30);
    expect(gpu(snapshot, 1).processes).toEqual(expected[1]);
    expect(gpu(snapshot, 0).errors).toEqual([]);
  });

  it('lists processes through _v2 on 535.98, which shipped without _v3', async () => {
    const snapshot = await snapshotOf('a100-r535-98-processes');
    expect(gpu(snapshot, 1).processes).toEqual([
      { pid: 7011, usedMemoryBytes: 20 * 1024 ** 3 },
      { pid: 7012, usedMemoryBytes: 20 * 1024 ** 3 },
    ]);
    expect(gpu(snapshot, 0).processes).toEqual([]);
    expect(snapshot.gpus.flatMap((g) => g.errors)).toEqual([]);
  });

  it('reads 16-byte records from a _v3 that writes them (the 550.127.08 report)', async () => {
    const base = await loadScenario('h100-r535-43-30-processes');
    const snapshot = await snapshotOf({ ...base, name: 'sixteen-byte-records', driverVersion: '550.127.08', processRecordBytes: 16 });
    expect(gpu(snapshot, 0).processes?.map((p) => p.pid)).toEqual(base.gpus[0]?.processes?.map((p) => p.pid));
  });

  it('falls back to _v2 when _v3 answers FUNCTION_NOT_FOUND', async () => {
    const base = await loadScenario('h100-sxm-8x-healthy');
    const snapshot = await snapshotOf({ ...base, errors: { nvmlDeviceGetComputeRunningProcesses_v3: 13 } });
    expect(gpu(snapshot, 0).processes).toEqual([{ pid: 4242, usedMemoryBytes: 2048 * 1024 * 1024 }]);
    expect(gpu(snapshot, 0).unsupported).not.toContain('processes');
  });

  it('reads the CUDA version without libcuda (the chart mounts only the utility capability)', async () => {
    const before = env.library.callCount('nvmlSystemGetCudaDriverVersion_v2');
    const snapshot = await snapshotOf('h100-sxm-8x-healthy');
    expect(snapshot.nvml).toMatchObject({ cudaDriverVersion: '12.4' });
    expect(snapshot.errors).toEqual([]);
    expect(env.library.callCount('nvmlSystemGetCudaDriverVersion_v2')).toBe(before);
  });

  it('asks the _v2 CUDA call when the unversioned one is missing', async () => {
    const base = await loadScenario('h100-sxm-8x-healthy');
    const snapshot = await snapshotOf({ ...base, cudaLibraryMounted: true, errors: { nvmlSystemGetCudaDriverVersion: 13 } });
    expect(snapshot.nvml).toMatchObject({ cudaDriverVersion: '12.4' });
    expect(snapshot.errors).toEqual([]);
  });

  it('probes every NVLink index past the gaps in the range', async () => {
    const snapshot = await snapshotOf('h100-nvlink-gaps');
    const g0 = gpu(snapshot, 0);
    expect(g0.nvlinks?.map((l) => l.link)).toEqual([0, 1, 3, 4, 5, 6, 7, 8, 10, 11, 12, 13, 14, 15, 16, 17]);
    expect(g0.unsupported).not.toContain('nvlinks');
    expect(g0.errors).toEqual([]);
    expect(gpu(snapshot, 1).nvlinks).toHaveLength(18);
  });

  it('probes the whole NVLink range once, then only the links that exist, and again when a known link stops answering', async () => {
    const e = await envFor('h100-nvlink-gaps');
    nvml = new NvmlBinding({ libraryPath: e.libraryPath, fallbackToSystemLibrary: false });
    const stateCalls = (): number => e.library.callCount('nvmlDeviceGetNvLinkState');
    const linksOf = (snapshot: NvmlSnapshot): Array<number[] | undefined> => snapshot.gpus.map((g) => g.nvlinks?.map((l) => l.link));
    const gpus = (await loadScenario('h100-nvlink-gaps')).gpus.length;

    let before = stateCalls();
    const first = await collectSnapshot({ nvml });
    expect(stateCalls() - before).toBe(gpus * 36);

    // the known links' states come from one field-value batch per GPU (NVML_FI_DEV_NVLINK_GET_STATE)
    before = stateCalls();
    const second = await collectSnapshot({ nvml });
    expect(stateCalls() - before).toBe(0);
    expect(linksOf(second)).toEqual(linksOf(first));

    // link 3 of GPU 0 becomes a gap: this snapshot skips it, the next one probes GPU 0's whole range
    const scenario = e.controller.current;
    const g0 = scenario.gpus[0];
    if (g0?.nvlink === undefined) throw new Error('scenario without NVLink');
    g0.nvlink.unsupported = [...(g0.nvlink.unsupported ?? []), 3];
    await e.controller.load(scenario);
    const third = await collectSnapshot({ nvml });
    expect(linksOf(third)[0]).not.toContain(3);
    before = stateCalls();
    const fourth = await collectSnapshot({ nvml });
    expect(stateCalls() - before).toBe(36);
    expect(linksOf(fourth)[0]).not.toContain(3);
  });

  /** h100-sxm-8x-healthy on `driverVersion` with distinct DL counters on every link of GPU 0. */
  async function countedLinksScenario(driverVersion: string): Promise<FakeNvmlScenario> {
    const scenario = await loadScenario('h100-sxm-8x-healthy');
    scenario.driverVersion = driverVersion;
    const [g0, nvlink] = [scenario.gpus[0], scenario.gpuDefaults?.nvlink];
    if (g0 === undefined || nvlink === undefined) throw new Error('scenario without NVLink');
    const counters = (link: number): NonNullable<typeof nvlink.counters>[string] => ({
      replay: 100 + link,
      recovery: 200 + link,
      crcFlit: 300 + link,
      crcData: 400 + link,
      eccData: 500 + link,
    });
    g0.nvlink = {
      ...nvlink,
      inactive: [9],
      counters: Object.fromEntries(Array.from({ length: 18 }, (_, link) => [String(link), counters(link)])),
    };
    return scenario;
  }

  const expectedLinks = Array.from({ length: 18 }, (_, link) => ({
    link,
    active: link !== 9,
    errors: { replay: 100 + link, recovery: 200 + link, crcFlit: 300 + link, crcData: 400 + link, eccData: 500 + link },
  }));

  it.each([
    // R550: link states and the counters nvml.h has ids for (all five on links 0-11, three on 12-17) in one batch each
    ['550.54.15', 'r550', { states: 0, counters: 12 }],
    // R470 has no link-scoped ids: states and replay/recovery/CRC flit by call, CRC/ECC data of links 0-11 from the batch
    ['470.256.02', 'r470', { states: 18, counters: 18 * 3 + 12 }],
  ])(
    'reads every NVLink counter of every link, through field values where the driver has them (%s)',
    async (driverVersion, era, perGpu) => {
      const e = await envFor(await countedLinksScenario(driverVersion));
      expect(e.era).toBe(era);
      nvml = new NvmlBinding({ libraryPath: e.libraryPath, fallbackToSystemLibrary: false });
      const first = await collectSnapshot({ nvml });
      expect(gpu(first, 0).nvlinks).toEqual(expectedLinks);
      const calls = (fn: string): number => e.library.callCount(fn);
      const [states, counters] = [calls('nvmlDeviceGetNvLinkState'), calls('nvmlDeviceGetNvLinkErrorCounter')];
      const second = await collectSnapshot({ nvml });
      expect(gpu(second, 0).nvlinks).toEqual(expectedLinks);
      expect(gpu(second, 0).errors).toEqual([]);
      expect(gpu(second, 1).nvlinks?.[17]).toEqual({
        link: 17,
        active: true,
        errors: { replay: 0, recovery: 0, crcFlit: 0, crcData: 0, eccData: 0 },
      });
      const gpus = second.gpus.length;
      expect(calls('nvmlDeviceGetNvLinkState') - states).toBe(gpus * perGpu.states);
      expect(calls('nvmlDeviceGetNvLinkErrorCounter') - counters).toBe(gpus * perGpu.counters);
    },
  );

  it('reads what never changes for a GPU once (names, PCI ids, thresholds, maximum clocks and PCIe link), the rest each time', async () => {
    const e = await envFor('h100-sxm-8x-healthy');
    nvml = new NvmlBinding({ libraryPath: e.libraryPath, fallbackToSystemLibrary: false, synchronous: true });
    const first = await collectSnapshot({ nvml });
    const fixed = [
      'nvmlDeviceGetName',
      'nvmlDeviceGetSerial',
      'nvmlDeviceGetPciInfo_v3',
      'nvmlDeviceGetTemperatureThreshold',
      'nvmlDeviceGetMaxClockInfo',
      'nvmlDeviceGetMaxPcieLinkGeneration',
      'nvmlDeviceGetMaxPcieLinkWidth',
    ];
    const live = ['nvmlDeviceGetUUID', 'nvmlDeviceGetTemperature', 'nvmlDeviceGetClockInfo', 'nvmlDeviceGetCurrPcieLinkGeneration'];
    const counts = (): number[] => [...fixed, ...live].map((fn) => e.library.callCount(fn));
    const before = counts();
    const second = await collectSnapshot({ nvml });
    const made = counts().map((n, i) => n - (before[i] ?? 0));
    expect(made).toEqual([0, 0, 0, 0, 0, 0, 0, 8, 8, 8 * 3, 8]);
    // the same document, live values and cached ones side by side in each group
    expect(second.gpus).toEqual(first.gpus);
    expect(gpu(second, 3).temperature).toMatchObject({ gpuCelsius: expect.any(Number), slowdownCelsius: expect.any(Number) });
    expect(Object.keys(gpu(second, 3).pcie ?? {})).toEqual(Object.keys(gpu(first, 3).pcie ?? {}));
  });

  it('reads NVLink5 error counters as field values on Blackwell, where the DL counters are NOT_SUPPORTED', async () => {
    const snapshot = await snapshotOf('b200-nvlink5-counters');
    const g1 = gpu(snapshot, 1);
    expect(g1.errors).toEqual([]);
    expect(g1.nvlinks).toHaveLength(18);
    expect(g1.nvlinks?.[3]).toEqual({
      link: 3,
      active: true,
      errors: { symbolErrors: 12, effectiveErrors: 2, recoverySuccessful: 1, recoveryFailed: 0 },
    });
    expect(g1.nvlinks?.[7]?.errors).toEqual({ symbolErrors: 0, effectiveErrors: 0, recoverySuccessful: 0, recoveryFailed: 1 });
    expect(g1.unsupported).toEqual(
      expect.arrayContaining([
        'nvlinks.errors.replay',
        'nvlinks.errors.recovery',
        'nvlinks.errors.crcFlit',
        'nvlinks.errors.crcData',
        'nvlinks.errors.eccData',
      ]),
    );
    expect(gpu(snapshot, 0).nvlinks?.[0]?.errors).toEqual({
      symbolErrors: 0,
      effectiveErrors: 0,
      recoverySuccessful: 0,
      recoveryFailed: 0,
    });
  });

  it('reads the temperature through nvmlDeviceGetTemperatureV where the driver has it, and the old call elsewhere', async () => {
    const r570 = await envFor('h100-r570-recovery-action');
    const [v, old] = [r570.library.callCount('nvmlDeviceGetTemperatureV'), r570.library.callCount('nvmlDeviceGetTemperature')];
    const snapshot = await snapshotOf('h100-r570-recovery-action');
    expect(gpu(snapshot, 0).temperature?.gpuCelsius).toBe(51);
    expect(gpu(snapshot, 1).temperature?.gpuCelsius).toBe(34);
    expect(r570.library.callCount('nvmlDeviceGetTemperatureV') - v).toBe(2);
    expect(r570.library.callCount('nvmlDeviceGetTemperature') - old).toBe(0);
    await nvml?.shutdown();
    const before = env.library.callCount('nvmlDeviceGetTemperature');
    expect(gpu(await snapshotOf('h100-sxm-8x-healthy'), 0).temperature?.gpuCelsius).toBe(51);
    expect(env.library.callCount('nvmlDeviceGetTemperature') - before).toBe(8);
  });

  it('reports the GPU recovery action on R570+, and lists it unsupported before', async () => {
    const snapshot = await snapshotOf('h100-r570-recovery-action');
    expect(gpu(snapshot, 0).recoveryAction).toBe('none');
    expect(gpu(snapshot, 1).recoveryAction).toBe('gpuReset');
    expect(gpu(snapshot, 1).errors).toEqual([]);
    await nvml?.shutdown();
    const older = gpu(await snapshotOf('h100-sxm-8x-healthy'), 0);
    expect(older.recoveryAction).toBeUndefined();
    expect(older.unsupported).toContain('recoveryAction');
  });

  it('refuses a scenario of another driver era at init, as NVML refuses a mismatched kernel driver', async () => {
    await env.controller.load('t4-legacy');
    nvml = new NvmlBinding({ libraryPath: env.libraryPath, fallbackToSystemLibrary: false });
    const snapshot = await collectSnapshot({ nvml });
    expect(snapshot.nvml).toMatchObject({ available: false, code: 18 });
  });

  it('returns no-GPU mode when the node has no GPUs', async () => {
    const snapshot = await snapshotOf('no-gpus');
    expect(snapshot.nvml).toEqual({
      available: false,
      reason: 'no GPUs found',
      driverVersion: '550.54.15',
      nvmlVersion: '12.550.54.15',
      cudaDriverVersion: '12.4',
    });
    expect(snapshot.gpus).toEqual([]);
  });

  it('keeps the other GPUs when one GPU fails every call with UNKNOWN', async () => {
    const scenario = env.controller.current;
    await env.controller.load('h100-sxm-8x-healthy');
    const base = env.controller.current;
    base.gpus[2] = { ...base.gpus[2], errors: { '*': 999 } };
    base.gpus[5] = { ...base.gpus[5], errors: Object.fromEntries(fieldCalls.map((c) => [c, 999])) };
    await env.controller.load(base);
    nvml = new NvmlBinding({ libraryPath: env.libraryPath, fallbackToSystemLibrary: false });
    const snapshot = await collectSnapshot({ nvml });
    expect(scenario).toBeDefined();
    expect(snapshot.gpus).toHaveLength(8);
    expect(gpu(snapshot, 2)).toMatchObject({ index: 2, lost: false, errors: [{ field: 'handle', code: 999 }] });
    // GPU 5 gets a handle but every field call fails: one error per field, no exception
    const g5 = gpu(snapshot, 5);
    expect(g5.uuid).toBeUndefined();
    expect(g5.errors.length).toBeGreaterThan(20);
    expect(g5.errors.every((e) => e.code === 999 && e.error.includes('Unknown Error'))).toBe(true);
    expect(g5.errors.map((e) => e.field)).toEqual(
      expect.arrayContaining([
        'uuid',
        'memory',
        'temperature.gpuCelsius',
        'power.usageWatts',
        'remappedRows',
        'nvlinks[0].active',
        'processes',
      ]),
    );
    for (const g of snapshot.gpus.filter((x) => x.index !== 2 && x.index !== 5)) {
      expect(g.errors).toEqual([]);
      expect(g.name).toBe('NVIDIA H100 80GB HBM3');
    }
  });

  it('collects only the requested checks', async () => {
    await env.controller.load('h100-sxm-8x-healthy');
    nvml = new NvmlBinding({ libraryPath: env.libraryPath, fallbackToSystemLibrary: false });
    const snapshot = await collectSnapshot({ nvml, checks: ['temperature'] });
    const g0 = gpu(snapshot, 0);
    expect(g0.temperature?.gpuCelsius).toBe(51);
    expect(g0.memory).toBeUndefined();
    expect(g0.nvlinks).toBeUndefined();
    expect(g0.uuid).toMatch(/^GPU-/);
  });

  it('observes faults injected while the process runs', async () => {
    await env.controller.load('h100-sxm-8x-healthy');
    nvml = new NvmlBinding({ libraryPath: env.libraryPath, fallbackToSystemLibrary: false });
    const before = await collectSnapshot({ nvml });
    expect(gpu(before, 6).lost).toBe(false);

    await env.controller.inject({ kind: 'fall-off-bus', gpu: 6 });
    await env.controller.inject({ kind: 'double-bit-ecc', gpu: 1, count: 3 });
    await env.controller.inject({ kind: 'remap-pending', gpu: 1 });
    await env.controller.inject({ kind: 'nvlink-down', gpu: 4, link: 11 });
    await env.controller.inject({ kind: 'temperature', gpu: 7, celsius: 90, hwThermalSlowdown: true });
    const after = await collectSnapshot({ nvml });

    expect(gpu(after, 6)).toMatchObject({ lost: true });
    expect(gpu(after, 1).ecc).toMatchObject({ volatileUncorrected: 3, aggregateUncorrected: 3 });
    expect(gpu(after, 1).remappedRows).toMatchObject({ pending: true, uncorrected: 1 });
    expect(gpu(after, 4).nvlinks?.[11]?.active).toBe(false);
    expect(gpu(after, 7).temperature?.gpuCelsius).toBe(90);
    expect(gpu(after, 7).clockEventReasons?.names).toContain('HwThermalSlowdown');
    expect(after.gpus.filter((g) => !g.lost)).toHaveLength(7);
  });

  it('reports a delayed call past its deadline as a field error while the event loop stays responsive', async () => {
    await env.controller.load('h100-sxm-8x-healthy');
    await env.controller.inject({ kind: 'delay', gpu: 0, call: 'nvmlDeviceGetPowerUsage', ms: 400 });
    nvml = new NvmlBinding({ libraryPath: env.libraryPath, fallbackToSystemLibrary: false, callTimeoutMs: 100 });
    let ticks = 0;
    const timer = setInterval(() => ticks++, 10);
    const snapshot = await collectSnapshot({ nvml });
    clearInterval(timer);
    expect(gpu(snapshot, 0).errors).toEqual([
      { field: 'power.usageWatts', code: 10, error: expect.stringContaining('no answer within 100 ms') },
    ]);
    expect(gpu(snapshot, 0).power).toEqual({ enforcedLimitWatts: 700, minLimitWatts: 200, maxLimitWatts: 700, defaultLimitWatts: 700 });
    expect(gpu(snapshot, 1).power?.usageWatts).toBe(71.5);
    expect(ticks).toBeGreaterThan(3);
    // shutdown (afterEach) still waits for the abandoned native call
  });

  it('aborts a collection through its signal', async () => {
    await env.controller.load('h100-sxm-8x-healthy');
    await env.controller.inject({ kind: 'delay', call: 'nvmlDeviceGetTemperature', ms: 300 });
    nvml = new NvmlBinding({ libraryPath: env.libraryPath, fallbackToSystemLibrary: false });
    const started = Date.now();
    await expect(collectSnapshot({ nvml, signal: AbortSignal.timeout(50) })).rejects.toThrow();
    expect(Date.now() - started).toBeLessThan(250);
  });

  it('falls back to no-GPU mode with the path in the reason when the library is missing', async () => {
    const missing = '/nonexistent/gpudiag/libnvidia-ml.so.1';
    nvml = new NvmlBinding({ libraryPath: missing, fallbackToSystemLibrary: false });
    const snapshot = await collectSnapshot({ nvml });
    expect(snapshot.nvml.available).toBe(false);
    expect(snapshot.nvml.available === false && snapshot.nvml.reason).toContain(missing);
    expect(snapshot.gpus).toEqual([]);
  });

  it('falls back to no-GPU mode when nvmlInit_v2 fails', async () => {
    await env.controller.load({ name: 'driver-not-loaded', initError: 9, gpus: [] });
    nvml = new NvmlBinding({ libraryPath: env.libraryPath, fallbackToSystemLibrary: false });
    const snapshot = await collectSnapshot({ nvml });
    expect(snapshot.nvml).toMatchObject({ available: false, code: 9, reason: expect.stringContaining('Driver Not Loaded') });
  });
});

const fieldCalls = [
  'nvmlDeviceGetName',
  'nvmlDeviceGetUUID',
  'nvmlDeviceGetSerial',
  'nvmlDeviceGetPciInfo_v3',
  'nvmlDeviceGetMemoryInfo',
  'nvmlDeviceGetMemoryInfo_v2',
  'nvmlDeviceGetTemperature',
  'nvmlDeviceGetTemperatureThreshold',
  'nvmlDeviceGetPowerUsage',
  'nvmlDeviceGetEnforcedPowerLimit',
  'nvmlDeviceGetUtilizationRates',
  'nvmlDeviceGetClockInfo',
  'nvmlDeviceGetMaxClockInfo',
  'nvmlDeviceGetCurrentClocksEventReasons',
  'nvmlDeviceGetEccMode',
  'nvmlDeviceGetTotalEccErrors',
  'nvmlDeviceGetRetiredPages',
  'nvmlDeviceGetRetiredPagesPendingStatus',
  'nvmlDeviceGetRemappedRows',
  'nvmlDeviceGetNvLinkState',
  'nvmlDeviceGetCurrPcieLinkGeneration',
  'nvmlDeviceGetCurrPcieLinkWidth',
  'nvmlDeviceGetMaxPcieLinkGeneration',
  'nvmlDeviceGetMaxPcieLinkWidth',
  'nvmlDeviceGetPcieReplayCounter',
  'nvmlDeviceGetComputeRunningProcesses_v3',
  'nvmlDeviceGetMigMode',
  'nvmlDeviceGetPerformanceState',
  'nvmlDeviceGetFanSpeed',
  'nvmlDeviceGetPersistenceMode',
  'nvmlDeviceGetComputeMode',
];
