import { describe, expect, it } from '@jest/globals';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { buildAllFakeNvmlEras, buildFakeNvml } from './build.js';
import { FAKE_NVML_ERAS, type FakeNvmlEra } from './eras.js';
import { FakeNvmlLibrary } from './fake-library.js';

const run = promisify(execFile);

async function exportedSymbols(path: string): Promise<string[]> {
  const { stdout } = await run('nm', ['-D', '--defined-only', path]);
  return stdout
    .split('\n')
    .map((line) => line.trim().split(/\s+/)[2])
    .filter((s): s is string => s !== undefined);
}

/** Symbols whose presence differs between eras. */
const ERA_SYMBOLS = [
  'nvmlDeviceGetComputeRunningProcesses',
  'nvmlDeviceGetComputeRunningProcesses_v2',
  'nvmlDeviceGetComputeRunningProcesses_v3',
  'nvmlDeviceGetCurrentClocksEventReasons',
  'nvmlDeviceGetCurrentClocksThrottleReasons',
  'nvmlDeviceGetMemoryInfo_v2',
  'nvmlDeviceGetTemperature',
  'nvmlDeviceGetTemperatureV',
  'nvmlSystemGetCudaDriverVersion',
  'nvmlSystemGetCudaDriverVersion_v2',
  'nvmlDeviceGetFieldValues',
] as const;

type EraSymbol = (typeof ERA_SYMBOLS)[number];
const ABSENT: Record<FakeNvmlEra, readonly EraSymbol[]> = {
  r470: [
    'nvmlDeviceGetComputeRunningProcesses_v3',
    'nvmlDeviceGetCurrentClocksEventReasons',
    'nvmlDeviceGetMemoryInfo_v2',
    'nvmlDeviceGetTemperatureV',
  ],
  'r535-43': ['nvmlDeviceGetTemperatureV'],
  'r535-98': ['nvmlDeviceGetComputeRunningProcesses_v3', 'nvmlDeviceGetTemperatureV'],
  r550: ['nvmlDeviceGetTemperatureV'],
  r570: [],
};

describe('buildFakeNvml', () => {
  it('builds once per source hash and era even when many callers race, and reuses the cache', async () => {
    const cacheDir = await mkdtemp(join(tmpdir(), 'gpudiag-cache-'));
    try {
      const paths = await Promise.all(Array.from({ length: 5 }, () => buildFakeNvml({ cacheDir, era: 'r550' })));
      expect(new Set(paths).size).toBe(1);
      const path = paths[0] ?? '';
      expect(path).toMatch(/fake-nvml\/[0-9a-f]{16}-r550\/libnvidia-ml\.so\.1$/);
      const first = await stat(path);
      expect((await stat(await buildFakeNvml({ cacheDir, era: 'r550' }))).mtimeMs).toBe(first.mtimeMs);
      expect(await buildFakeNvml({ cacheDir })).toMatch(/-r570\/libnvidia-ml\.so\.1$/);
    } finally {
      await rm(cacheDir, { recursive: true, force: true });
    }
  });

  it('exports the versioned NVML symbols and keeps its helpers hidden', async () => {
    const current = await exportedSymbols(await buildFakeNvml());
    expect(current).toEqual(
      expect.arrayContaining([
        'nvmlInit_v2',
        'nvmlDeviceGetCount_v2',
        'nvmlDeviceGetHandleByIndex_v2',
        'nvmlDeviceGetPciInfo_v3',
        'nvmlEventSetWait_v2',
        'nvmlDeviceGetMaxPcieLinkGeneration',
        'nvmlDeviceGetMaxPcieLinkWidth',
        'gpudiagFakeInitCount',
        'gpudiagFakeCallCount',
      ]),
    );
    expect(current).not.toContain('maybe_reload');
  });

  it.each(FAKE_NVML_ERAS.map((e) => [e.era, e.summary] as const))('%s really lacks what that driver lacks (%s)', async (era) => {
    const path = (await buildAllFakeNvmlEras()).get(era) ?? '';
    const symbols = await exportedSymbols(path);
    for (const symbol of ERA_SYMBOLS)
      expect({ symbol, exported: symbols.includes(symbol) }).toEqual({ symbol, exported: !ABSENT[era].includes(symbol) });
    expect(FakeNvmlLibrary.open(path).era()).toBe(era);
  });
});
