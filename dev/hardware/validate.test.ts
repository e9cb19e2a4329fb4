/**
 * The validator end to end without a GPU: a real agent process on the fake NVML library (real
 * ABI) and a stand-in `nvidia-smi` that prints a document rendered from what the agent reported.
 * Proves the orchestration (agent start, fetch, schema check, two readings, report, exit codes,
 * cleanup); the comparison itself is proven against recorded real outputs in compare.test.ts.
 */
import { execFile } from 'node:child_process';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { NodeSnapshotDocument } from '../../agent/api/snapshot-document.js';
import { startFakeNvml, type FakeNvmlEnvironment } from '../../agent/fake-nvml/harness.js';
import type { GpuComputeMode, GpuSnapshot } from '../../agent/nvml/types.js';
import { dnsSafeNodeName, parseValidateArgs } from './validate.js';

const VALIDATOR = path.resolve(process.cwd(), 'dist/dev/hardware/validate.js');
const MiB = 1024 * 1024;

describe('parseValidateArgs', () => {
  const now = new Date('2026-01-05T10:00:00.000Z');

  it('defaults: nvidia-smi on PATH, no XID injection, a timestamped output folder, a DNS-safe node name', () => {
    const r = parseValidateArgs(['--kmsg-path', ''], {}, now);
    expect(r).toMatchObject({
      ok: true,
      config: { nvidiaSmi: 'nvidia-smi', kmsgPath: '', injectXid: false, xidGpu: 0, deadlineMs: 180_000, nvcc: 'nvcc' },
    });
    if (r.ok && 'config' in r) {
      expect(r.config.outDir).toBe(path.resolve('.gpudiag/hardware-validation/2026-01-05T10-00-00-000Z'));
      expect(r.config.nodeName).toBe(dnsSafeNodeName(os.hostname()));
    }
  });

  it('takes $OUT as the output folder unless --out is given', () => {
    expect(parseValidateArgs([], { OUT: '/tmp/out' }, now)).toMatchObject({ config: { outDir: '/tmp/out' } });
    expect(parseValidateArgs(['--out', '/tmp/x'], { OUT: '/tmp/out' }, now)).toMatchObject({ config: { outDir: '/tmp/x' } });
  });

  it.each([
    [['--deadline-s', '5'], /--deadline-s must be an integer between 30 and 1800/],
    [['--node-name', 'Not_A_Name'], /DNS-1123/],
    [['--xid-gpu', '-1'], /--xid-gpu/],
    [['--bogus'], /Unknown option/],
  ])('refuses %j', (argv, error) => {
    const r = parseValidateArgs(argv, {}, now);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error).toMatch(error);
  });

  it('answers help', () => {
    expect(parseValidateArgs(['--help'], {}, now)).toEqual({ ok: true, help: true });
  });

  it.each([
    ['GPU-Node_01.example.com', 'gpu-node-01.example.com'],
    ['-a-', 'a'],
    ['___', 'hardware-validation'],
  ])('dnsSafeNodeName(%j) = %j', (host, name) => {
    expect(dnsSafeNodeName(host)).toBe(name);
  });
});

const COMPUTE_MODE_TEXT: Record<GpuComputeMode, string> = {
  default: 'Default',
  exclusiveThread: 'Exclusive_Thread',
  prohibited: 'Prohibited',
  exclusiveProcess: 'Exclusive_Process',
  unknown: 'Unknown',
};
const REASONS = [
  ['gpu_idle', 'GpuIdle'],
  ['applications_clocks_setting', 'ApplicationsClocksSetting'],
  ['sw_power_cap', 'SwPowerCap'],
  ['hw_slowdown', 'HwSlowdown'],
  ['hw_thermal_slowdown', 'HwThermalSlowdown'],
  ['hw_power_brake_slowdown', 'HwPowerBrakeSlowdown'],
  ['sync_boost', 'SyncBoost'],
  ['sw_thermal_slowdown', 'SwThermalSlowdown'],
  ['display_clocks_setting', 'DisplayClockSetting'],
] as const;

/** nvidia-smi's DTD v12 rendering of what our snapshot says (absent → N/A), for the stand-in nvidia-smi. */
function renderGpu(g: GpuSnapshot): string {
  const na = (v: number | string | undefined, unit = ''): string => (v === undefined ? 'N/A' : unit === '' ? String(v) : `${v} ${unit}`);
  const yes = (b: boolean | undefined, on = 'Yes', off = 'No'): string => (b === undefined ? 'N/A' : b ? on : off);
  const en = (b: boolean | undefined): string => yes(b, 'Enabled', 'Disabled');
  const mib = (bytes: number | undefined): string => na(bytes === undefined ? undefined : Math.floor(bytes / MiB), 'MiB');
  const w = (watts: number | undefined): string => na(watts?.toFixed(2), 'W');
  const el = (name: string, body: string): string => `<${name}>${body}</${name}>`;
  const names = g.clockEventReasons?.names ?? [];
  const processes = (g.processes ?? [])
    .map((p) =>
      el(
        'process_info',
        el('pid', String(p.pid)) + el('type', 'C') + el('process_name', 'cuda-app') + el('used_memory', mib(p.usedMemoryBytes)),
      ),
    )
    .join('');
  return el(
    'gpu',
    [
      el('product_name', na(g.name)),
      el('persistence_mode', en(g.persistenceMode)),
      el('mig_mode', el('current_mig', en(g.migMode?.enabled)) + el('pending_mig', en(g.migMode?.pendingEnabled))),
      el('serial', na(g.serial)),
      el('uuid', na(g.uuid)),
      el(
        'pci',
        [
          el('pci_bus_id', na(g.pciBusId)),
          el(
            'pci_gpu_link_info',
            el('pcie_gen', el('max_link_gen', na(g.pcie?.maxGen)) + el('current_link_gen', na(g.pcie?.currentGen))) +
              el(
                'link_widths',
                el('max_link_width', g.pcie?.maxWidth === undefined ? 'N/A' : `${g.pcie.maxWidth}x`) +
                  el('current_link_width', g.pcie?.currentWidth === undefined ? 'N/A' : `${g.pcie.currentWidth}x`),
              ),
          ),
          el('replay_counter', na(g.pcie?.replayCounter)),
        ].join(''),
      ),
      el('fan_speed', na(g.fanSpeedPercent, '%')),
      el('performance_state', g.performanceState === undefined ? 'Unknown' : `P${g.performanceState}`),
      g.clockEventReasons === undefined
        ? ''
        : el(
            'clocks_event_reasons',
            REASONS.map(([s, n]) => el(`clocks_event_reason_${s}`, names.includes(n) ? 'Active' : 'Not Active')).join(''),
          ),
      el(
        'fb_memory_usage',
        el('total', mib(g.memory?.totalBytes)) +
          el('reserved', mib(g.memory?.reservedBytes)) +
          el('used', mib(g.memory?.usedBytes)) +
          el('free', mib(g.memory?.freeBytes)),
      ),
      el('compute_mode', g.computeMode === undefined ? 'N/A' : COMPUTE_MODE_TEXT[g.computeMode]),
      el('utilization', el('gpu_util', na(g.utilization?.gpuPercent, '%')) + el('memory_util', na(g.utilization?.memoryPercent, '%'))),
      el('ecc_mode', el('current_ecc', en(g.ecc?.enabled)) + el('pending_ecc', en(g.ecc?.pendingEnabled))),
      el(
        'ecc_errors',
        el('volatile', el('dram_correctable', na(g.ecc?.volatileCorrected)) + el('dram_uncorrectable', na(g.ecc?.volatileUncorrected))) +
          el(
            'aggregate',
            el('dram_correctable', na(g.ecc?.aggregateCorrected)) + el('dram_uncorrectable', na(g.ecc?.aggregateUncorrected)),
          ),
      ),
      el(
        'retired_pages',
        el('multiple_single_bit_retirement', el('retired_count', na(g.retiredPages?.singleBitEcc))) +
          el('double_bit_retirement', el('retired_count', na(g.retiredPages?.doubleBitEcc))) +
          el('pending_retirement', yes(g.retiredPages?.pending)),
      ),
      g.remappedRows === undefined
        ? el('remapped_rows', 'N/A')
        : el(
            'remapped_rows',
            el('remapped_row_corr', String(g.remappedRows.corrected)) +
              el('remapped_row_unc', String(g.remappedRows.uncorrected)) +
              el('remapped_row_pending', yes(g.remappedRows.pending)) +
              el('remapped_row_failure', yes(g.remappedRows.failure)),
          ),
      el(
        'temperature',
        el('gpu_temp', na(g.temperature?.gpuCelsius, 'C')) +
          el('gpu_temp_max_threshold', na(g.temperature?.shutdownCelsius, 'C')) +
          el('gpu_temp_slow_threshold', na(g.temperature?.slowdownCelsius, 'C')) +
          el('gpu_temp_max_gpu_threshold', na(g.temperature?.gpuMaxCelsius, 'C')) +
          el('gpu_temp_max_mem_threshold', na(g.temperature?.memoryMaxCelsius, 'C')),
      ),
      el('gpu_power_readings', el('power_draw', w(g.power?.usageWatts)) + el('current_power_limit', w(g.power?.enforcedLimitWatts))),
      el(
        'clocks',
        el('graphics_clock', na(g.clocks?.graphicsMHz, 'MHz')) +
          el('sm_clock', na(g.clocks?.smMHz, 'MHz')) +
          el('mem_clock', na(g.clocks?.memoryMHz, 'MHz')),
      ),
      el(
        'max_clocks',
        el('graphics_clock', na(g.clocks?.maxGraphicsMHz, 'MHz')) +
          el('sm_clock', na(g.clocks?.maxSmMHz, 'MHz')) +
          el('mem_clock', na(g.clocks?.maxMemoryMHz, 'MHz')),
      ),
      g.processes === undefined ? el('processes', 'N/A') : el('processes', processes),
    ].join('\n'),
  );
}

function renderLog(doc: NodeSnapshotDocument): string {
  const head = `<?xml version="1.0" ?>\n<!DOCTYPE nvidia_smi_log SYSTEM "nvsmi_device_v12.dtd">\n<nvidia_smi_log>`;
  const system =
    `<driver_version>${doc.nvml.driverVersion ?? 'N/A'}</driver_version>` +
    `<cuda_version>${doc.nvml.cudaDriverVersion ?? 'N/A'}</cuda_version>`;
  return `${head}${system}<attached_gpus>${doc.gpus.length}</attached_gpus>\n${doc.gpus.map(renderGpu).join('\n')}\n</nvidia_smi_log>\n`;
}

function renderNvLinks(doc: NodeSnapshotDocument): string {
  return doc.gpus
    .map((g) =>
      [
        `GPU ${g.index}: ${g.name ?? '?'} (UUID: ${g.uuid ?? '?'})`,
        ...(g.nvlinks ?? []).map((l) => `\t Link ${l.link}: ${l.active ? '26.562 GB/s' : '<inactive>'}`),
      ].join('\n'),
    )
    .join('\n');
}

interface ValidatorRun {
  code: number;
  stdout: string;
  stderr: string;
  report: {
    passed: boolean;
    error?: string;
    comparison?: { counts: Record<string, number>; gpus: { fields: { field: string; status: string }[] }[] };
    events: { field: string; status: string }[];
  };
}

describe('validate:hardware against the fake NVML library and a stand-in nvidia-smi', () => {
  let fake: FakeNvmlEnvironment;
  let dir: string;

  beforeAll(async () => {
    fake = await startFakeNvml('h100-sxm-8x-healthy');
    dir = await mkdtemp(path.join(os.tmpdir(), 'gpudiag-validate-'));
    const script =
      `#!/bin/sh\n# stand-in nvidia-smi for dev/hardware/validate.test.ts\ncase "$1" in\n  -q) cat "${dir}/smi.xml" ;;\n` +
      `  nvlink) cat "${dir}/nvlink.txt" ;;\n  *) exit 64 ;;\nesac\n`;
    await writeFile(path.join(dir, 'nvidia-smi'), script);
    await chmod(path.join(dir, 'nvidia-smi'), 0o755);
  });

  afterAll(async () => {
    await fake.dispose();
    await rm(dir, { recursive: true, force: true });
  });

  function validate(out: string, extra: readonly string[] = []): Promise<ValidatorRun> {
    const args = [
      VALIDATOR,
      '--nvidia-smi',
      path.join(dir, 'nvidia-smi'),
      '--nvml-library',
      fake.libraryPath,
      '--kmsg-path',
      '',
      '--out',
      out,
      '--deadline-s',
      '60',
      ...extra,
    ];
    return new Promise((resolve, reject) => {
      execFile(process.execPath, args, { env: { ...process.env, ...fake.controller.env() }, timeout: 120_000 }, (err, stdout, stderr) => {
        const code = err === null ? 0 : typeof err.code === 'number' ? err.code : -1;
        readFile(path.join(out, 'report.json'), 'utf8').then(
          (text) => resolve({ code, stdout, stderr, report: JSON.parse(text) as ValidatorRun['report'] }),
          (readErr: unknown) => reject(new Error(`no report (exit ${code}): ${stderr}`, { cause: readErr })),
        );
      });
    });
  }

  it('passes when nvidia-smi agrees, fails with DIFF when it does not, and stops the agent each time', async () => {
    // a first run against an empty document records what the agent reports
    await writeFile(path.join(dir, 'smi.xml'), '<nvidia_smi_log><driver_version>0</driver_version></nvidia_smi_log>');
    await writeFile(path.join(dir, 'nvlink.txt'), '');
    const first = await validate(path.join(dir, 'run1'));
    expect(first.code).toBe(1);
    expect(first.report.passed).toBe(false);
    const doc = JSON.parse(await readFile(path.join(dir, 'run1', 'snapshot.json'), 'utf8')) as NodeSnapshotDocument;
    expect(doc.gpus).toHaveLength(8);

    await writeFile(path.join(dir, 'smi.xml'), renderLog(doc));
    await writeFile(path.join(dir, 'nvlink.txt'), renderNvLinks(doc));
    const agree = await validate(path.join(dir, 'run2'));
    const problems = agree.report.comparison?.gpus.flatMap((g) => g.fields.filter((f) => f.status === 'DIFF' || f.status === 'MISSING'));
    expect(problems).toEqual([]);
    expect(agree.report.events).toEqual([expect.objectContaining({ field: 'xidSources.nvmlEvents.running', status: 'OK' })]);
    expect(agree.code).toBe(0);
    expect(agree.stdout).toContain('GPU 7  NVIDIA H100 80GB HBM3');
    expect(agree.stdout).toMatch(/→ PASS\n/);
    const files = (await readFile(path.join(dir, 'run2', 'report.json'), 'utf8')).includes('"nvidia-smi-after.xml"');
    expect(files).toBe(true);

    const hotter = structuredClone(doc);
    const gpu0 = hotter.gpus[0];
    if (gpu0?.temperature?.gpuCelsius !== undefined) gpu0.temperature.gpuCelsius += 10;
    await writeFile(path.join(dir, 'smi.xml'), renderLog(hotter));
    const differ = await validate(path.join(dir, 'run3'));
    expect(differ.code).toBe(1);
    expect(differ.report.comparison?.gpus[0]?.fields.find((f) => f.field === 'temperature.gpu')?.status).toBe('DIFF');
    expect(differ.stdout).toMatch(/→ FAIL\n/);
  });

  it('exits 2 with the reason in the report when nvidia-smi cannot run', async () => {
    const out = path.join(dir, 'run-missing');
    const r = await validate(out, ['--nvidia-smi', path.join(dir, 'no-such-nvidia-smi')]);
    expect(r.code).toBe(2);
    expect(r.report.error).toMatch(/no-such-nvidia-smi -q -x did not run/);
    expect(r.stdout).toContain('NOT RUN');
  });
});
