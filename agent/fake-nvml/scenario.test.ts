import { afterEach, describe, expect, it } from '@jest/globals';
import { mkdtemp, readFile, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { NvmlBinding } from '../nvml/binding.js';
import { startFakeNvml } from './harness.js';
import {
  FakeNvmlController,
  ScenarioValidationError,
  escapeKmsgText,
  fakeNvmlEraOf,
  listScenarios,
  loadScenario,
  scenarioKmsgRecords,
  scenarioToStateText,
  validateScenario,
  type FakeNvmlScenario,
} from './scenario.js';
import { parseKmsgRecord } from '../xid/kmsg-reader.js';
import { KernelLogScanner, type ParsedLine } from '../xid/parser.js';

const minimal: FakeNvmlScenario = {
  name: 'minimal',
  driverVersion: '550.54.15',
  gpuDefaults: { name: 'NVIDIA H100 80GB HBM3', unsupported: ['nvmlDeviceGetFanSpeed'] },
  gpus: [
    {
      uuid: 'GPU-12345678-1234-1234-1234-123456789abc',
      pciBusId: '00000000:18:00.0',
      unsupported: ['nvmlDeviceGetRetiredPages'],
      powerUsageWatts: 71.5,
    },
  ],
  events: [{ gpu: 0, type: 'xid', data: 79 }],
};

describe('scenario validation', () => {
  it('accepts every shipped scenario', async () => {
    const names = await listScenarios();
    expect(names.length).toBeGreaterThanOrEqual(8);
    for (const name of names) {
      const scenario = await loadScenario(name);
      expect(scenario.name).toBe(name);
    }
  });

  it.each<[string, unknown, string]>([
    ['missing gpus', { name: 'x' }, 'x.gpus must be present'],
    [
      'bad memory',
      { name: 'x', gpus: [{ memory: { totalBytes: -1, usedBytes: 0 } }] },
      'x.gpus[0].memory.totalBytes must be a non-negative integer',
    ],
    ['unknown field', { name: 'x', gpus: [{ temprature: 3 }] }, 'x.gpus[0].temprature is not a known field'],
    ['bad bus id', { name: 'x', gpus: [{ pciBusId: '18:00.0' }] }, 'x.gpus[0].pciBusId must be a bus id like 00000000:18:00.0'],
    [
      'unknown call',
      { name: 'x', gpus: [{ unsupported: ['nvmlDeviceGetNope'] }] },
      'x.gpus[0].unsupported[0] must be a known device-level NVML function name',
    ],
    [
      'event gpu out of range',
      { name: 'x', gpus: [{}], events: [{ gpu: 1, type: 'xid', data: 79 }] },
      'x.events[0].gpu must be below the GPU count 1',
    ],
    ['xid without number', { name: 'x', gpus: [{}], events: [{ gpu: 0, type: 'xid' }] }, 'x.events[0].data must be the XID number'],
    ['empty kmsg text', { name: 'x', gpus: [{}], kmsg: [' '] }, 'x.kmsg[0] must be a non-empty kernel-log text'],
    [
      'kmsg text over the record size',
      { name: 'x', gpus: [{}], kmsg: ['x'.repeat(993)] },
      'x.kmsg[0] must be a non-empty kernel-log text of at most 992',
    ],
    [
      'kmsg about a GPU the scenario lacks',
      {
        name: 'x',
        gpus: [{ pciBusId: '00000000:18:00.0' }],
        kmsg: ['NVRM: GPU 0000:18:00.0: GPU has fallen off the bus.', 'NVRM: Xid (PCI:0000:19:00): 79, GPU has fallen off the bus.'],
      },
      "x.kmsg[1] must be about the scenario's GPUs (0000:19:00 is none of 0000:18:00)",
    ],
    [
      'a driver no era models',
      { name: 'x', driverVersion: '525.85.12', gpus: [{}] },
      'driverVersion 525.85.12 is in no modeled era (r470 [470, 510), r535-43',
    ],
    [
      'NVLink5 before R570',
      { name: 'x', driverVersion: '550.54.15', gpus: [{ nvlink: { count: 18, generation: 5 } }] },
      'x.gpus[0].nvlink.generation must be below 5 on driver era r550',
    ],
    [
      'an NVLink gap past the count',
      { name: 'x', gpus: [{ nvlink: { count: 4, unsupported: [4] } }] },
      'x.gpus[0].nvlink link 4 must be below the link count 4',
    ],
    ['an odd process record size', { name: 'x', gpus: [{}], processRecordBytes: 40 }, 'x.processRecordBytes must be 16, 24 or 32'],
  ])('rejects %s with a field-named error', (_label, value, message) => {
    expect(() => validateScenario(value, 'x')).toThrow(ScenarioValidationError);
    expect(() => validateScenario(value, 'x')).toThrow(message);
  });
});

describe('driver eras', () => {
  it.each<[string, string]>([
    ['470.223.02', 'r470'],
    ['535.54.03', 'r535-43'],
    ['535.86.10', 'r535-43'],
    ['535.98', 'r535-98'],
    ['535.104.05', 'r550'],
    ['535.161.08', 'r550'],
    ['550.127.08', 'r550'],
    ['570.133.20', 'r570'],
    ['575.57.08', 'r570'],
  ])('runs a scenario on driver %s on the %s build', (driverVersion, era) => {
    expect(fakeNvmlEraOf({ driverVersion })).toBe(era);
  });

  it('runs a scenario without a driver version on the newest build, and binds only named drivers to an era', () => {
    expect(fakeNvmlEraOf({})).toBe('r570');
    expect(scenarioToStateText({ name: 'x', gpus: [] })).not.toContain('driver_era=');
    expect(scenarioToStateText(minimal)).toContain('driver_era=r550');
  });

  it('puts every shipped scenario in an era', async () => {
    const eras = new Map<string, string>();
    for (const name of await listScenarios()) eras.set(name, fakeNvmlEraOf(await loadScenario(name)));
    expect(eras.get('t4-legacy')).toBe('r470');
    expect(eras.get('h100-r535-43-30-processes')).toBe('r535-43');
    expect(eras.get('a100-r535-98-processes')).toBe('r535-98');
    expect(eras.get('h100-sxm-8x-healthy')).toBe('r550');
    expect(eras.get('h100-r570-recovery-action')).toBe('r570');
    expect(eras.get('b200-nvlink5-counters')).toBe('r570');
  });
});

describe('scenario kernel log', () => {
  const withKmsg: FakeNvmlScenario = {
    ...minimal,
    gpus: [...minimal.gpus, { pciBusId: '00000000:2A:00.0' }],
    kmsg: [
      "NVRM: Xid (PCI:0000:2a:00): 74, pid='<unknown>', name=<unknown>, NVLink: fatal error detected on link 3(0x1, 0x0, 0x0, " +
        '0x0, 0x0, 0x0, 0x0)',
      'nvidia-nvswitch0: SXid (PCI:0000:05:00.0): 20034, Fatal, Link 62 LTSSM Fault Up',
      'NVRM: The NVIDIA GPU 0000:2a:00.0\nNVRM: (PCI ID: 10de:2330) installed in this system has\nNVRM: fallen off the bus and ' +
        'is not responding to commands.',
    ],
  };

  it('accepts kmsg lines naming its GPUs by any address form, and lines about NVSwitches', () => {
    expect(validateScenario(structuredClone(withKmsg)).kmsg).toHaveLength(3);
  });

  it('escapes record text the way /dev/kmsg does', () => {
    expect(escapeKmsgText('a\\b\nc\u00e9')).toBe('a\\x5cb\\x0ac\\xc3\\xa9');
  });

  it('writes the generated XID records, then the kmsg text, as records with increasing seq and timestamps', () => {
    const records = scenarioKmsgRecords(withKmsg, { startUs: 5_000_000n, stepUs: 10_000n });
    expect(records).toHaveLength(4);
    const parsed = records.map((r) => parseKmsgRecord(r));
    expect(parsed.map((r) => [r?.priority, r?.seq, r?.tsUsec])).toEqual([
      [4, 1, 5_000_000n],
      [4, 2, 5_010_000n],
      [3, 3, 5_020_000n],
      [4, 4, 5_030_000n],
    ]);
    expect(parsed[0]?.text).toBe('NVRM: Xid (PCI:0000:18:00): 79, pid=4242, name=python3, simulated fault from scenario minimal');
    // One record per entry, the multi-line probe message included; the reader gets the text back.
    expect(records[3]).not.toContain('\n');
    expect(parsed.slice(1).map((r) => r?.text)).toEqual(withKmsg.kmsg);
    const scanner = new KernelLogScanner();
    const kinds = parsed.map((r) => scanner.push(r?.text ?? '')).map((p: ParsedLine | null) => p?.kind);
    expect(kinds).toEqual(['xid', 'xid', 'sxid', 'bus-lost']);
  });

  it('ships kmsg text that the parser understands, line by line', async () => {
    for (const name of await listScenarios()) {
      const scenario = await loadScenario(name);
      const scanner = new KernelLogScanner();
      const unparsed = (scenario.kmsg ?? []).filter((text) => scanner.push(text) === null);
      expect({ name, unparsed }).toEqual({ name, unparsed: [] });
    }
  });
});

describe('scenarioToStateText', () => {
  it('writes merged defaults, unsupported calls, milliwatts and events as key=value lines', () => {
    const lines = scenarioToStateText(minimal).split('\n');
    expect(lines).toEqual(
      expect.arrayContaining([
        'driver_version=550.54.15',
        'device_count=1',
        'gpu.0.name=NVIDIA H100 80GB HBM3',
        'gpu.0.pci.bus_id=00000000:18:00.0',
        'gpu.0.power.usage_mw=71500',
        'gpu.0.error.nvmlDeviceGetFanSpeed=3',
        'gpu.0.error.nvmlDeviceGetRetiredPages=3',
        'event.1=0,8,79',
      ]),
    );
  });

  it('writes NVLink gaps, the NVLink generation and its field-value counters, the recovery action and libcuda', () => {
    const text = scenarioToStateText({
      name: 'x',
      driverVersion: '575.57.08',
      cudaLibraryMounted: true,
      processRecordBytes: 16,
      gpus: [
        {
          recoveryAction: 4,
          nvlink: { count: 3, generation: 5, unsupported: [1], counters: { '2': { symbolErrors: 7, recoveryFailed: 1 } } },
        },
      ],
    });
    expect(text.split('\n')).toEqual(
      expect.arrayContaining([
        'driver_era=r570',
        'libcuda=1',
        'process_record_bytes=16',
        'gpu.0.recovery_action=4',
        'gpu.0.nvlink.generation=5',
        'gpu.0.nvlink.1.supported=0',
        'gpu.0.nvlink.2.symbol_errors=7',
        'gpu.0.nvlink.2.recovery_failed=1',
      ]),
    );
    expect(text).not.toContain('gpu.0.nvlink.0.supported');
  });
});

describe('device-info state keys', () => {
  it('writes fabric, InfoROM, limits, BAR1 and field-value keys, and the memory event bits', () => {
    const text = scenarioToStateText(
      validateScenario({
        name: 'x',
        gpus: [
          {
            fabric: { state: 3, status: 0, cliqueId: 2, clusterUuid: '6b2f1c9e0d4a4f3b8e7a5c1d2e3f4a5b', healthMask: 2, healthSummary: 1 },
            vbiosVersion: '96.00.74.00.01',
            inforom: { imageVersion: 'G520.0200.00.05', ecc: '7.16', corrupted: true },
            powerLimits: { minWatts: 200, maxWatts: 700, defaultWatts: 700 },
            bar1: { totalBytes: 1024, usedBytes: 1000 },
            memoryTemperatureCelsius: 96,
            energyMillijoules: 5,
            violationTime: { thermalNs: 7 },
            pcie: { replayRollover: 3, correctableErrors: 9 },
          },
        ],
        events: [{ gpu: 0, type: 'fatalPoison' }],
      }),
    );
    for (const line of [
      'gpu.0.fabric.state=3',
      'gpu.0.fabric.cluster_uuid=6b2f1c9e0d4a4f3b8e7a5c1d2e3f4a5b',
      'gpu.0.fabric.health_summary=1',
      'gpu.0.vbios=96.00.74.00.01',
      'gpu.0.inforom.ecc=7.16',
      'gpu.0.inforom.corrupted=1',
      'gpu.0.power.min_limit_mw=200000',
      'gpu.0.power.default_limit_mw=700000',
      'gpu.0.bar1.used=1000',
      'gpu.0.memory_temp=96',
      'gpu.0.violation.thermal_ns=7',
      'gpu.0.pcie.replay_rollover=3',
      'gpu.0.pcie.correctable=9',
      'event.1=0,8192,0',
    ]) {
      expect(text.split('\n')).toContain(line);
    }
  });

  it('rejects a malformed cluster UUID', () => {
    expect(() => validateScenario({ name: 'x', gpus: [{ fabric: { state: 3, clusterUuid: 'nope' } }] }, 'x')).toThrow(
      'x.gpus[0].fabric.clusterUuid must be 32 hex digits',
    );
  });
});

describe('FakeNvmlController', () => {
  let controller: FakeNvmlController | undefined;

  afterEach(async () => {
    await controller?.dispose();
  });

  it('replaces the state file atomically on every write and applies faults', async () => {
    controller = new FakeNvmlController();
    await controller.load(minimal);
    const file = controller.stateFile;
    expect(await readFile(file, 'utf8')).toContain('gpu.0.uuid=GPU-12345678');
    const generation = await readFile(`${file}.generation`);
    await controller.inject({ kind: 'fall-off-bus', gpu: 0 });
    const text = await readFile(file, 'utf8');
    expect(text).toContain('gpu.0.lost=1');
    expect(text).toContain('event.2=0,8,79');
    // the library learns of the new state from the generation's 8 bytes, changed in place
    const next = await readFile(`${file}.generation`);
    expect(next).toHaveLength(8);
    expect(next.equals(generation)).toBe(false);
    // no temporary files are left behind
    expect(await readdir(dirname(file))).toEqual(['state.txt', 'state.txt.generation']);
    expect(controller.current.gpus[0]?.lost).toBe(true);
  });

  it('rejects faults on GPUs that do not exist', async () => {
    controller = new FakeNvmlController();
    await controller.load(minimal);
    await expect(controller.inject({ kind: 'remap-pending', gpu: 4 })).rejects.toThrow('fault.gpu 4 is out of range');
  });
});

describe('the fake library sees each new state on its next call', () => {
  const gpuNames = async (nvml: NvmlBinding): Promise<string[]> => {
    const count = await nvml.deviceGetCount();
    const names: string[] = [];
    for (let i = 0; i < count; i++) names.push(await nvml.deviceGetName(await nvml.deviceGetHandleByIndex(i)));
    return names;
  };

  it('through the generation file the controller bumps, and by stat where there is none', async () => {
    const fake = await startFakeNvml(minimal);
    const nvml = new NvmlBinding({ libraryPath: fake.libraryPath, fallbackToSystemLibrary: false, synchronous: true });
    const dir = await mkdtemp(join(tmpdir(), 'gpudiag-fake-state-'));
    try {
      await nvml.init();
      const handle = await nvml.deviceGetHandleByIndex(0);
      expect(await gpuNames(nvml)).toEqual(['NVIDIA H100 80GB HBM3']);
      // a device call on a handle held from before sees the new state (no enumeration in between)
      await fake.controller.load({ ...minimal, gpus: minimal.gpus.map((g) => ({ ...g, name: 'NVIDIA Renamed' })) });
      expect(await nvml.deviceGetName(handle)).toBe('NVIDIA Renamed');

      // a state file nobody bumps a generation for: the library stats it on every call
      const bare = join(dir, 'state.txt');
      const text = (name: string): string => scenarioToStateText({ ...minimal, gpus: minimal.gpus.map((g) => ({ ...g, name })) });
      await writeFile(bare, text('NVIDIA First'));
      await nvml.shutdown();
      fake.library.setStatePath(bare);
      await nvml.init();
      const bareHandle = await nvml.deviceGetHandleByIndex(0);
      expect(await nvml.deviceGetName(bareHandle)).toBe('NVIDIA First');
      await writeFile(`${bare}.tmp`, text('NVIDIA Second'));
      await rename(`${bare}.tmp`, bare);
      expect(await nvml.deviceGetName(bareHandle)).toBe('NVIDIA Second');
    } finally {
      await nvml.shutdown();
      await fake.dispose();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
