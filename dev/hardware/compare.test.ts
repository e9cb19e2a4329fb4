import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { NodeSnapshotDocument } from '../../agent/api/snapshot-document.js';
import { validateSnapshotDocument } from '../../agent/api/validate-snapshot.js';
import type { GpuSnapshot, NvmlAvailable } from '../../agent/nvml/types.js';
import { compareSnapshot, formatComparison, type ComparisonReport, type FieldComparison } from './compare.js';
import { parseNvidiaSmiLog, type NvidiaSmiLog } from './nvidia-smi-log.js';
import { parseNvLinkStatus } from './nvlink-status.js';

const FIXTURES = path.resolve(process.cwd(), 'test/fixtures/nvidia-smi');
const MiB = 1024 * 1024;

function fixture(name: string): NvidiaSmiLog {
  const r = parseNvidiaSmiLog(readFileSync(path.join(FIXTURES, name), 'utf8'));
  if (!r.ok) throw new Error(r.error);
  return r.log;
}

const A100 = fixture('a100-sxm4-80gb-mig-535.54.03.xml');
const H200 = fixture('h200-580.159.04.xml');
const H200_AFTER = fixture('h200-580.159.04-after.xml');
const BLACKWELL = fixture('rtx-pro-6000-blackwell-590.44.01.xml');

/** What our agent would report for the recorded A100 (MIG on: no utilization, no remapped rows). */
function a100Snapshot(): GpuSnapshot {
  return {
    index: 0,
    lost: false,
    uuid: 'GPU-513536b6-7d19-9063-b049-1e69664bb298',
    name: 'NVIDIA A100-SXM4-80GB',
    serial: '1650522003820',
    pciBusId: '00000000:01:00.0',
    pciBusIdKernel: '0000:01:00',
    // NVML v2 in bytes; nvidia-smi prints whole MiB
    memory: { totalBytes: 81920 * MiB, reservedBytes: 869 * MiB + 123_456, usedBytes: 50 * MiB + 524_288, freeBytes: 80999 * MiB + 1_000 },
    temperature: { gpuCelsius: 28, memoryCelsius: 44, slowdownCelsius: 89, shutdownCelsius: 92, gpuMaxCelsius: 85, memoryMaxCelsius: 95 },
    power: { usageWatts: 66.2, enforcedLimitWatts: 500, minLimitWatts: 100, maxLimitWatts: 500, defaultLimitWatts: 500 },
    clocks: { graphicsMHz: 1275, smMHz: 1275, memoryMHz: 1593, maxGraphicsMHz: 1410, maxSmMHz: 1410, maxMemoryMHz: 1593 },
    clockEventReasons: { mask: 0, names: [] },
    ecc: {
      enabled: true,
      pendingEnabled: true,
      volatileCorrected: 0,
      volatileUncorrected: 0,
      aggregateCorrected: 0,
      aggregateUncorrected: 0,
    },
    pcie: { currentGen: 4, currentWidth: 16, maxGen: 4, maxWidth: 16, replayCounter: 0, replayRolloverCounter: 0 },
    processes: [],
    migMode: { enabled: true, pendingEnabled: true },
    vbiosVersion: '92.00.36.00.02',
    inforom: { imageVersion: 'G506.0212.00.01', oemVersion: '2.0', eccVersion: '6.16', valid: true },
    bar1: { totalBytes: 131072 * MiB, usedBytes: 1 * MiB, freeBytes: 131071 * MiB },
    persistenceMode: false,
    performanceState: 0,
    computeMode: 'default',
    unsupported: ['utilization', 'retiredPages', 'remappedRows', 'fanSpeedPercent', 'nvlinks', 'inforom.powerVersion'],
    errors: [],
  };
}

/** What our agent would report for the recorded Blackwell workstation board (ECC off, fan, one process). */
function blackwellSnapshot(): GpuSnapshot {
  return {
    index: 0,
    lost: false,
    uuid: 'GPU-12345678-aaaa-bbbb-cccc-0123456789ab',
    name: 'NVIDIA RTX PRO 6000 Blackwell Max-Q Workstation Edition',
    serial: '0123456789012',
    pciBusId: '00000000:61:00.0',
    pciBusIdKernel: '0000:61:00',
    memory: { totalBytes: 97887 * MiB, reservedBytes: 637 * MiB, usedBytes: 65720 * MiB, freeBytes: 31531 * MiB },
    // nvidia-smi prints TLimit-relative thresholds only; these are the absolute ones they imply
    temperature: { gpuCelsius: 24, slowdownCelsius: 94, shutdownCelsius: 97, gpuMaxCelsius: 92 },
    power: { usageWatts: 4.1, enforcedLimitWatts: 300, minLimitWatts: 250, maxLimitWatts: 325, defaultLimitWatts: 300 },
    utilization: { gpuPercent: 0, memoryPercent: 0 },
    clocks: { graphicsMHz: 180, smMHz: 180, memoryMHz: 405, maxGraphicsMHz: 3090, maxSmMHz: 3090, maxMemoryMHz: 14001 },
    clockEventReasons: { mask: 0, names: [] },
    ecc: { enabled: false, pendingEnabled: false },
    remappedRows: { corrected: 0, uncorrected: 0, pending: false, failure: false },
    pcie: { currentGen: 1, currentWidth: 16, maxGen: 4, maxWidth: 16, replayCounter: 0, replayRolloverCounter: 0 },
    processes: [{ pid: 116860, usedMemoryBytes: 65710 * MiB }],
    vbiosVersion: '98.02.6A.00.03',
    inforom: { imageVersion: 'G153.0520.00.02', oemVersion: '2.1', eccVersion: '7.16', valid: true },
    bar1: { totalBytes: 131072 * MiB, usedBytes: 65721 * MiB, freeBytes: 65351 * MiB },
    recoveryAction: 'none',
    persistenceMode: true,
    performanceState: 8,
    fanSpeedPercent: 30,
    computeMode: 'default',
    unsupported: ['temperature.memoryCelsius', 'temperature.memoryMaxCelsius', 'retiredPages', 'migMode', 'nvlinks'],
    errors: [],
  };
}

const NVML_535: NvmlAvailable = { available: true, driverVersion: '535.54.03', cudaDriverVersion: '12.2' };

function compare(gpu: GpuSnapshot, readings: NvidiaSmiLog[] = [A100], nvml: NvmlAvailable = NVML_535): ComparisonReport {
  return compareSnapshot({ snapshot: { nvml, gpus: [gpu] }, readings });
}

function row(report: ComparisonReport, field: string, gpu = 0): FieldComparison {
  const found = report.gpus[gpu]?.fields.find((f) => f.field === field) ?? report.system.find((f) => f.field === field);
  if (found === undefined) throw new Error(`no row ${field}`);
  return found;
}

/** A reading with one GPU's fields changed (a second nvidia-smi run a moment later). */
function reading(log: NvidiaSmiLog, change: (gpu: NvidiaSmiLog['gpus'][number]) => void): NvidiaSmiLog {
  const copy = structuredClone(log);
  const gpu = copy.gpus[0];
  if (gpu !== undefined) change(gpu);
  return copy;
}

describe('compareSnapshot on recorded nvidia-smi outputs', () => {
  it('passes a snapshot that matches the recorded A100 (MIG mode), with the unsupported fields NA', () => {
    const report = compare(a100Snapshot());
    const problems = report.gpus[0]?.fields.filter((f) => f.status !== 'OK' && f.status !== 'NA');
    expect(problems).toEqual([]);
    expect(report.passed).toBe(true);
    expect(row(report, 'temperature.gpu')).toMatchObject({ ours: '28 C', nvidiaSmi: '27 C', status: 'OK', note: '±3 C' });
    expect(row(report, 'memory.total')).toMatchObject({ ours: '81920 MiB', nvidiaSmi: '81920 MiB', status: 'OK' });
    expect(row(report, 'power.usage')).toMatchObject({ ours: '66.2 W', nvidiaSmi: '67.03 W', status: 'OK' });
    expect(row(report, 'pciBusId').status).toBe('OK');
    expect(row(report, 'migMode.current')).toMatchObject({ ours: 'Enabled', nvidiaSmi: 'Enabled', status: 'OK' });
    for (const f of ['utilization', 'remappedRows.pending', 'retiredPages.singleBitEcc', 'fanSpeed'])
      expect(row(report, f).status).toBe('NA');
    expect(report.notes).toContain('nvidia-smi says 4 GPUs are attached but lists 1');
  });

  it('passes a snapshot that matches the recorded Blackwell board (v13 power readings, a running process)', () => {
    const report = compareSnapshot({
      snapshot: { nvml: { available: true, driverVersion: '590.44.01', cudaDriverVersion: '13.1' }, gpus: [blackwellSnapshot()] },
      readings: [BLACKWELL],
    });
    expect(report.gpus[0]?.fields.filter((f) => f.status !== 'OK' && f.status !== 'NA')).toEqual([]);
    expect(row(report, 'power.usage')).toMatchObject({ ours: '4.1 W', nvidiaSmi: '3.97 … 3.99 W', status: 'OK' });
    expect(row(report, 'processes')).toMatchObject({ ours: '116860', nvidiaSmi: '116860', status: 'OK' });
    expect(row(report, 'processes[116860].usedMemory').status).toBe('OK');
    expect(row(report, 'ecc.volatileCorrected').status).toBe('NA');
    expect(row(report, 'utilization').status).toBe('OK');
  });

  it('reports a deliberate mismatch as DIFF and fails', () => {
    const gpu = a100Snapshot();
    gpu.temperature = { ...gpu.temperature, gpuCelsius: 35 };
    gpu.power = { usageWatts: 80, enforcedLimitWatts: 400 };
    gpu.memory = { totalBytes: 80_000_000_000, usedBytes: 50 * MiB, freeBytes: 80999 * MiB, reservedBytes: 869 * MiB };
    gpu.uuid = 'GPU-00000000-0000-0000-0000-000000000000';
    gpu.ecc = { ...gpu.ecc, volatileUncorrected: 1 };
    const report = compare(gpu);
    expect(report.passed).toBe(false);
    expect(row(report, 'temperature.gpu')).toMatchObject({ ours: '35 C', nvidiaSmi: '27 C', status: 'DIFF' });
    expect(row(report, 'power.usage')).toMatchObject({ ours: '80 W', status: 'DIFF' });
    expect(row(report, 'power.enforcedLimit')).toMatchObject({ ours: '400 W', nvidiaSmi: '500 W', status: 'DIFF' });
    expect(row(report, 'memory.total')).toMatchObject({ ours: '76293.95 MiB', nvidiaSmi: '81920 MiB', status: 'DIFF' });
    expect(row(report, 'uuid').status).toBe('DIFF');
    expect(row(report, 'ecc.volatileUncorrected')).toMatchObject({ ours: '1', nvidiaSmi: '0', status: 'DIFF' });
    expect(report.counts.DIFF).toBe(6);
  });

  it('reports a field nvidia-smi shows and we lack as MISSING, with our reason', () => {
    const gpu = a100Snapshot();
    delete gpu.serial;
    delete gpu.temperature;
    delete gpu.clocks;
    gpu.errors = [{ field: 'serial', code: 999, error: 'nvmlDeviceGetSerial: Unknown Error' }];
    gpu.unsupported = [...gpu.unsupported, 'temperature'];
    const report = compare(gpu);
    expect(report.passed).toBe(false);
    expect(row(report, 'serial')).toMatchObject({
      ours: '',
      nvidiaSmi: '1650522003820',
      status: 'MISSING',
      note: 'ours: NVML error 999 (nvmlDeviceGetSerial: Unknown Error)',
    });
    expect(row(report, 'temperature.gpu')).toMatchObject({ status: 'MISSING', note: 'ours: NOT_SUPPORTED' });
    expect(row(report, 'clocks.graphics')).toMatchObject({ status: 'MISSING', note: 'absent from our snapshot' });
    expect(report.counts.MISSING).toBe(1 + 6 + 6); // serial, six temperature rows, six clock rows
  });

  it('reports a value ours has where nvidia-smi prints N/A as EXTRA, which does not fail', () => {
    const gpu = a100Snapshot();
    gpu.remappedRows = { corrected: 0, uncorrected: 0, pending: false, failure: false };
    gpu.unsupported = gpu.unsupported.filter((f) => f !== 'remappedRows');
    const report = compare(gpu);
    expect(row(report, 'remappedRows.pending')).toMatchObject({
      ours: 'Disabled',
      nvidiaSmi: '',
      status: 'EXTRA',
      note: 'nvidia-smi prints N/A',
    });
    expect(report.passed).toBe(true);
  });

  it('accepts moving values anywhere in the range two readings span, and discrete ones matching either reading', () => {
    const after = reading(A100, (g) => {
      g.temperature.gpuC = 40;
      g.clocks.graphicsMHz = 1410;
      g.performanceState = 2;
      g.clockEventReasons = ['SwPowerCap'];
    });
    const gpu = a100Snapshot();
    gpu.temperature = { ...gpu.temperature, gpuCelsius: 35 };
    gpu.clocks = { ...gpu.clocks, graphicsMHz: 1350 };
    gpu.performanceState = 2;
    gpu.clockEventReasons = { mask: 0x4, names: ['SwPowerCap'] };
    const report = compare(gpu, [A100, after]);
    expect(row(report, 'temperature.gpu')).toMatchObject({ nvidiaSmi: '27 … 40 C', status: 'OK' });
    expect(row(report, 'clocks.graphics')).toMatchObject({ nvidiaSmi: '1275 … 1410 MHz', status: 'OK' });
    expect(row(report, 'performanceState')).toMatchObject({ ours: 'P2', nvidiaSmi: 'P0 | P2', status: 'OK' });
    expect(row(report, 'clockEventReasons')).toMatchObject({ ours: 'SwPowerCap', nvidiaSmi: 'none | SwPowerCap', status: 'OK' });
    // static fields use the first reading only
    expect(row(report, 'temperature.slowdown').nvidiaSmi).toBe('89 C');
    gpu.temperature = { ...gpu.temperature, gpuCelsius: 44 };
    expect(row(compare(gpu, [A100, after]), 'temperature.gpu').status).toBe('DIFF');
  });

  it('compares NVML v1 memory (used includes reserved) with nvidia-smi used + reserved', () => {
    const gpu = a100Snapshot();
    gpu.memory = { totalBytes: 81920 * MiB, usedBytes: (50 + 869) * MiB, freeBytes: 80999 * MiB };
    const report = compare(gpu);
    expect(row(report, 'memory.used')).toMatchObject({ ours: '919 MiB', nvidiaSmi: '919 MiB', status: 'OK' });
    expect(row(report, 'memory.used').note).toMatch(/NVML v1/);
    expect(row(report, 'memory.reserved').status).toBe('MISSING');
  });

  it('lists compute processes only and reports a process nvidia-smi does not see', () => {
    const gpu = blackwellSnapshot();
    gpu.processes = [
      { pid: 116860, usedMemoryBytes: 65710 * MiB },
      { pid: 4242, usedMemoryBytes: 512 * MiB },
    ];
    const graphicsToo = reading(BLACKWELL, (g) => g.processes?.push({ pid: 999, type: 'G', name: 'Xorg', usedMemoryMiB: 4 }));
    const report = compareSnapshot({
      snapshot: { nvml: { available: true, driverVersion: '590.44.01', cudaDriverVersion: '13.1' }, gpus: [gpu] },
      readings: [graphicsToo],
    });
    expect(row(report, 'processes')).toMatchObject({ ours: '116860, 4242', nvidiaSmi: '116860', status: 'DIFF' });
  });

  it('matches GPUs by PCI bus id, and reports GPUs only one side lists', () => {
    const ours = a100Snapshot();
    const other: GpuSnapshot = { index: 1, lost: false, pciBusId: '00000000:81:00.0', unsupported: [], errors: [] };
    const report = compareSnapshot({ snapshot: { nvml: NVML_535, gpus: [other, ours] }, readings: [A100] });
    expect(report.gpus.map((g) => [g.index, g.fields[0]?.field, g.fields[0]?.status])).toEqual([
      [1, 'gpu', 'EXTRA'],
      [0, 'name', 'OK'],
    ]);
    expect(row(report, 'gpus')).toMatchObject({ ours: '2', nvidiaSmi: '1', status: 'DIFF' });
    const none = compareSnapshot({ snapshot: { nvml: NVML_535, gpus: [] }, readings: [A100] });
    expect(none.gpus[0]?.fields[0]).toMatchObject({ field: 'gpu', nvidiaSmi: '00000000:01:00.0', status: 'MISSING' });
  });

  it('compares the driver and CUDA versions', () => {
    const report = compare(a100Snapshot(), [A100], { available: true, driverVersion: '535.54.03', cudaDriverVersion: '12.1' });
    expect(row(report, 'driverVersion').status).toBe('OK');
    expect(row(report, 'cudaDriverVersion')).toMatchObject({ ours: '12.1', nvidiaSmi: '12.2', status: 'DIFF' });
    // nvmlSystemGetCudaDriverVersion_v2 loads libcuda.so.1, absent where only the NVML utility capability is mounted
    const errors = [{ field: 'cudaDriverVersion', code: 12, error: 'nvmlSystemGetCudaDriverVersion_v2: Library Not Found' }];
    const noCuda = compareSnapshot({
      snapshot: { nvml: { available: true, driverVersion: '535.54.03' }, gpus: [a100Snapshot()], errors },
      readings: [A100],
    });
    expect(row(noCuda, 'cudaDriverVersion')).toMatchObject({
      ours: '',
      status: 'MISSING',
      note: 'ours: NVML error 12 (nvmlSystemGetCudaDriverVersion_v2: Library Not Found)',
    });
  });

  it('compares active NVLinks with `nvidia-smi nvlink --status` (recorded H100 PCIe pair)', () => {
    const status = parseNvLinkStatus(readFileSync(path.join(FIXTURES, 'h100-pcie-nvlink-status-555.42.02.txt'), 'utf8'));
    const gpu = a100Snapshot();
    const uuid = 'GPU-6968dfc2-d444-d92c-c36b-6abe53445cb9';
    gpu.uuid = uuid;
    const active = new Set([0, 1, 2, 3, 6, 7, 8, 9, 12, 13, 14, 15]);
    gpu.nvlinks = Array.from({ length: 18 }, (_, link) => ({ link, active: active.has(link), errors: {} }));
    const smi = reading(A100, (g) => (g.uuid = uuid));
    const ok = compareSnapshot({ snapshot: { nvml: NVML_535, gpus: [gpu] }, readings: [smi], nvlinkStatus: status });
    expect(row(ok, 'nvlinks.active')).toMatchObject({ ours: '0-3,6-9,12-15', nvidiaSmi: '0-3,6-9,12-15', status: 'OK' });
    expect(row(ok, 'nvlinks.count')).toMatchObject({ ours: '18', nvidiaSmi: '18', status: 'OK' });
    // a collector that stops probing at the first gap reports fewer links
    gpu.nvlinks = gpu.nvlinks.slice(0, 4);
    const short = compareSnapshot({ snapshot: { nvml: NVML_535, gpus: [gpu] }, readings: [smi], nvlinkStatus: status });
    expect(row(short, 'nvlinks.active')).toMatchObject({ ours: '0-3', status: 'DIFF' });
    expect(row(short, 'nvlinks.count')).toMatchObject({ ours: '4', nvidiaSmi: '18', status: 'DIFF' });
    expect(compare(a100Snapshot()).notes).toContain('NVLink not compared: no `nvidia-smi nvlink --status` output');
  });

  it('marks a GPU our snapshot reports lost', () => {
    const report = compare({ index: 0, lost: true, pciBusId: '00000000:01:00.0', unsupported: [], errors: [] });
    expect(report.gpus[0]?.fields).toEqual([
      { field: 'gpu', ours: 'lost', nvidiaSmi: 'NVIDIA A100-SXM4-80GB', status: 'DIFF', note: 'our snapshot marks this GPU lost' },
    ]);
  });
});

describe('compareSnapshot on a real H200 (recorded by `npm run validate:hardware` on a lent machine)', () => {
  // the agent's own answer on that machine, between the two nvidia-smi readings: nothing here is hand-written
  const snapshot = JSON.parse(readFileSync(path.join(FIXTURES, 'h200-580.159.04-agent-snapshot.json'), 'utf8')) as NodeSnapshotDocument;
  const report = compareSnapshot({ snapshot, readings: [H200, H200_AFTER] });

  it('agrees with nvidia-smi on every field both report', () => {
    expect(validateSnapshotDocument(snapshot)).toMatchObject({ ok: true });
    expect(report.passed).toBe(true);
    expect(report.counts).toMatchObject({ DIFF: 0, MISSING: 0 });
    expect(row(report, 'cudaDriverVersion')).toMatchObject({ ours: '13.0', status: 'OK' });
    expect(row(report, 'memory.reserved')).toMatchObject({ ours: '615.06 MiB', nvidiaSmi: '616 MiB', status: 'OK' });
    expect(row(report, 'vbiosVersion')).toMatchObject({ ours: '96.00.A5.00.1A', status: 'OK' });
    expect(row(report, 'bar1.total')).toMatchObject({ ours: '262144 MiB', status: 'OK' });
    expect(row(report, 'power.minLimit')).toMatchObject({ ours: '200 W', nvidiaSmi: '200 W', status: 'OK' });
    expect(row(report, 'recoveryAction')).toMatchObject({ ours: 'none', nvidiaSmi: 'None', status: 'OK' });
  });

  it("checks NVML's absolute thresholds against the TLimit-relative ones nvidia-smi prints on R580", () => {
    // TLimit = 40 °C + 47 °C headroom = 87 °C; slowdown at −2 → 89, shutdown at −8 → 95, GPU max at 0 → 87
    expect(row(report, 'temperature.slowdown')).toMatchObject({ ours: '89 C', nvidiaSmi: '89 C', status: 'OK' });
    expect(row(report, 'temperature.shutdown')).toMatchObject({ ours: '95 C', nvidiaSmi: '95 C', status: 'OK' });
    expect(row(report, 'temperature.gpuMax')).toMatchObject({ ours: '87 C', nvidiaSmi: '87 C', status: 'OK' });
    expect(row(report, 'temperature.shutdown').note).toMatch(/TLimit-relative/);
    // the memory threshold has no absolute or derivable counterpart in nvidia-smi's output
    expect(row(report, 'temperature.memoryMax')).toMatchObject({ ours: '95 C', status: 'EXTRA' });
    expect(report.counts.EXTRA).toBe(1);
  });

  it('turns a wrong threshold into a DIFF even when nvidia-smi prints it relative to TLimit', () => {
    const gpu = structuredClone(snapshot.gpus[0]);
    if (gpu?.temperature === undefined) throw new Error('the recorded snapshot has no temperature');
    gpu.temperature.shutdownCelsius = 92;
    const wrong = compareSnapshot({ snapshot: { ...snapshot, gpus: [gpu] }, readings: [H200, H200_AFTER] });
    expect(row(wrong, 'temperature.shutdown')).toMatchObject({ ours: '92 C', nvidiaSmi: '95 C', status: 'DIFF' });
  });
});

describe('formatComparison', () => {
  it('prints one aligned block per GPU and the counts', () => {
    const gpu = a100Snapshot();
    gpu.temperature = { ...gpu.temperature, gpuCelsius: 35 };
    const text = formatComparison(compare(gpu));
    const lines = text.split('\n');
    expect(lines[0]).toBe('System');
    expect(text).toContain('GPU 0  NVIDIA A100-SXM4-80GB  GPU-513536b6-7d19-9063-b049-1e69664bb298  00000000:01:00.0');
    const header = lines.find((l) => l.startsWith('field') && l.includes('nvidia-smi') && lines.indexOf(l) > 3) ?? '';
    const temp = lines.find((l) => l.startsWith('temperature.gpu ')) ?? '';
    expect(temp.indexOf('35 C')).toBe(header.indexOf('ours'));
    expect(temp).toMatch(/DIFF {2}\(±3 C\)$/);
    expect(lines.at(-1)).toMatch(/^OK \d+, DIFF 1, MISSING 0, EXTRA 0, NA \d+ → FAIL$/);
  });
});
