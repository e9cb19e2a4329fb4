import { describe, expect, it } from '@jest/globals';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { buildFakeNvml } from './build.js';

const run = promisify(execFile);

async function exportedSymbols(path: string): Promise<string[]> {
  const { stdout } = await run('nm', ['-D', '--defined-only', path]);
  return stdout
    .split('\n')
    .map((line) => line.trim().split(/\s+/)[2])
    .filter((s): s is string => s !== undefined);
}

describe('buildFakeNvml', () => {
  it('builds once per source hash even when many callers race, and reuses the cache', async () => {
    const cacheDir = await mkdtemp(join(tmpdir(), 'gpudiag-cache-'));
    try {
      const paths = await Promise.all(Array.from({ length: 5 }, () => buildFakeNvml({ cacheDir })));
      expect(new Set(paths).size).toBe(1);
      const path = paths[0] ?? '';
      expect(path).toMatch(/fake-nvml\/[0-9a-f]{16}-current\/libnvidia-ml\.so\.1$/);
      const first = await stat(path);
      expect((await stat(await buildFakeNvml({ cacheDir }))).mtimeMs).toBe(first.mtimeMs);
    } finally {
      await rm(cacheDir, { recursive: true, force: true });
    }
  });

  it('exports the versioned NVML symbols, and the legacy variant lacks the newer ones', async () => {
    const current = await exportedSymbols(await buildFakeNvml());
    expect(current).toEqual(
      expect.arrayContaining([
        'nvmlInit_v2',
        'nvmlDeviceGetCount_v2',
        'nvmlDeviceGetHandleByIndex_v2',
        'nvmlDeviceGetPciInfo_v3',
        'nvmlDeviceGetComputeRunningProcesses_v3',
        'nvmlEventSetWait_v2',
        'nvmlSystemGetCudaDriverVersion_v2',
        'nvmlDeviceGetCurrentClocksEventReasons',
        'nvmlDeviceGetCurrentClocksThrottleReasons',
        'nvmlDeviceGetMaxPcieLinkGeneration',
        'nvmlDeviceGetMaxPcieLinkWidth',
        'gpudiagFakeInitCount',
      ]),
    );
    // internal helpers stay hidden
    expect(current).not.toContain('maybe_reload');
    const legacy = await exportedSymbols(await buildFakeNvml({ variant: 'legacy' }));
    expect(legacy).not.toContain('nvmlDeviceGetCurrentClocksEventReasons');
    expect(legacy).not.toContain('nvmlDeviceGetMaxPcieLinkWidth');
    expect(legacy).toContain('nvmlDeviceGetCurrentClocksThrottleReasons');
  });
});
