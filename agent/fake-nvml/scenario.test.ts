import { afterEach, describe, expect, it } from '@jest/globals';
import { readFile, readdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import {
  FakeNvmlController,
  ScenarioValidationError,
  listScenarios,
  loadScenario,
  scenarioToStateText,
  validateScenario,
  type FakeNvmlScenario,
} from './scenario.js';

const minimal: FakeNvmlScenario = {
  name: 'minimal',
  driverVersion: '550.54.15',
  gpuDefaults: { name: 'NVIDIA H100 80GB HBM3', unsupported: ['nvmlDeviceGetFanSpeed'] },
  gpus: [{ uuid: 'GPU-12345678-1234-1234-1234-123456789abc', pciBusId: '00000000:18:00.0', unsupported: ['nvmlDeviceGetRetiredPages'], powerUsageWatts: 71.5 }],
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
    ['bad memory', { name: 'x', gpus: [{ memory: { totalBytes: -1, usedBytes: 0 } }] }, 'x.gpus[0].memory.totalBytes must be a non-negative integer'],
    ['unknown field', { name: 'x', gpus: [{ temprature: 3 }] }, 'x.gpus[0].temprature is not a known field'],
    ['bad bus id', { name: 'x', gpus: [{ pciBusId: '18:00.0' }] }, 'x.gpus[0].pciBusId must be a bus id like 00000000:18:00.0'],
    ['unknown call', { name: 'x', gpus: [{ unsupported: ['nvmlDeviceGetNope'] }] }, 'x.gpus[0].unsupported[0] must be a known device-level NVML function name'],
    ['event gpu out of range', { name: 'x', gpus: [{}], events: [{ gpu: 1, type: 'xid', data: 79 }] }, 'x.events[0].gpu must be below the GPU count 1'],
    ['xid without number', { name: 'x', gpus: [{}], events: [{ gpu: 0, type: 'xid' }] }, 'x.events[0].data must be the XID number'],
  ])('rejects %s with a field-named error', (_label, value, message) => {
    expect(() => validateScenario(value, 'x')).toThrow(ScenarioValidationError);
    expect(() => validateScenario(value, 'x')).toThrow(message);
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
    await controller.inject({ kind: 'fall-off-bus', gpu: 0 });
    const text = await readFile(file, 'utf8');
    expect(text).toContain('gpu.0.lost=1');
    expect(text).toContain('event.2=0,8,79');
    // no temporary files are left behind
    expect(await readdir(dirname(file))).toEqual(['state.txt']);
    expect(controller.current.gpus[0]?.lost).toBe(true);
  });

  it('rejects faults on GPUs that do not exist', async () => {
    controller = new FakeNvmlController();
    await controller.load(minimal);
    await expect(controller.inject({ kind: 'remap-pending', gpu: 4 })).rejects.toThrow('fault.gpu 4 is out of range');
  });
});
