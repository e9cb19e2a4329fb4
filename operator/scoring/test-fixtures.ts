/** Realistic snapshot fixtures for the scoring tests: a healthy H100 baseline with overrides. */
import { SNAPSHOT_API_VERSION, SNAPSHOT_KIND, type NodeSnapshotDocument, type XidEventReport } from '../../agent/api/snapshot-document.js';
import type { GpuNvLink, GpuSnapshot } from '../../agent/nvml/types.js';

const GIB = 1024 ** 3;
const H100_NVLINKS = 18;

/** The fixed "now" the tests score at. */
export const NOW = new Date('2025-06-01T12:00:00.000Z');

/** An ISO time `minutes` before NOW. */
export function minutesAgo(minutes: number): string {
  return new Date(NOW.getTime() - minutes * 60_000).toISOString();
}

/** `count` healthy NVLinks (all active, zero errors). */
export function healthyNvLinks(count = H100_NVLINKS): GpuNvLink[] {
  return Array.from({ length: count }, (_, link) => ({ link, active: true, errors: { replay: 0, recovery: 0, crcFlit: 0, crcData: 0 } }));
}

/** A healthy, idle H100 80GB HBM3 (SXM) as the collector reports it, with top-level overrides. */
export function h100(index = 0, overrides: Partial<GpuSnapshot> = {}): GpuSnapshot {
  const bus = (0x18 + index * 0x20).toString(16).padStart(2, '0');
  return {
    index,
    lost: false,
    uuid: `GPU-6a1c3f0e-0000-4000-8000-00000000000${index}`,
    name: 'NVIDIA H100 80GB HBM3',
    serial: `165232300000${index}`,
    pciBusId: `00000000:${bus.toUpperCase()}:00.0`,
    pciBusIdKernel: `0000:${bus}:00`,
    memory: { totalBytes: 80 * GIB, usedBytes: Math.round(0.6 * GIB), freeBytes: Math.round(79.4 * GIB) },
    temperature: { gpuCelsius: 31, slowdownCelsius: 87, shutdownCelsius: 92, gpuMaxCelsius: 87, memoryMaxCelsius: 95 },
    power: { usageWatts: 71.5, enforcedLimitWatts: 700 },
    utilization: { gpuPercent: 0, memoryPercent: 0 },
    clocks: { graphicsMHz: 345, smMHz: 345, memoryMHz: 2619, maxGraphicsMHz: 1980, maxSmMHz: 1980, maxMemoryMHz: 2619 },
    clockEventReasons: { mask: 0x1, names: ['GpuIdle'] },
    ecc: {
      enabled: true,
      pendingEnabled: true,
      volatileCorrected: 0,
      volatileUncorrected: 0,
      aggregateCorrected: 0,
      aggregateUncorrected: 0,
    },
    remappedRows: { corrected: 0, uncorrected: 0, pending: false, failure: false },
    pcie: { currentGen: 5, currentWidth: 16, maxGen: 5, maxWidth: 16, replayCounter: 0 },
    nvlinks: healthyNvLinks(),
    processes: [],
    migMode: { enabled: false, pendingEnabled: false },
    persistenceMode: true,
    performanceState: 0,
    computeMode: 'default',
    unsupported: ['fanSpeedPercent', 'retiredPages'],
    errors: [],
    ...overrides,
  };
}

/** An H100 under full training load: ~95% memory reserved by the allocator, SwPowerCap + SyncBoost. */
export function h100UnderLoad(index = 0): GpuSnapshot {
  const base = h100(index);
  return {
    ...base,
    memory: { totalBytes: 80 * GIB, usedBytes: Math.round(76.2 * GIB), freeBytes: Math.round(3.8 * GIB) },
    temperature: { ...base.temperature, gpuCelsius: 68 },
    power: { usageWatts: 698.2, enforcedLimitWatts: 700 },
    utilization: { gpuPercent: 100, memoryPercent: 54 },
    clockEventReasons: { mask: 0x4 | 0x10, names: ['SwPowerCap', 'SyncBoost'] },
    processes: [{ pid: 4242, usedMemoryBytes: Math.round(75.6 * GIB) }],
  };
}

/** A GPU that fell off the bus: identity only, as the collector reports it. */
export function lostGpu(index = 0): GpuSnapshot {
  const { uuid, name, serial, pciBusId, pciBusIdKernel } = h100(index);
  return {
    index,
    lost: true,
    ...(uuid === undefined ? {} : { uuid }),
    ...(name === undefined ? {} : { name }),
    ...(serial === undefined ? {} : { serial }),
    ...(pciBusId === undefined ? {} : { pciBusId }),
    ...(pciBusIdKernel === undefined ? {} : { pciBusIdKernel }),
    unsupported: [],
    errors: [],
  };
}

/** One deduplicated XID event report for GPU `gpu` (mapped by UUID unless overridden). */
export function xidEvent(xid: number, overrides: Partial<XidEventReport> = {}, gpu: GpuSnapshot = h100(0)): XidEventReport {
  return {
    xid,
    name: 'from-agent',
    severity: 'warning',
    action: 'from-agent',
    ...(gpu.pciBusIdKernel === undefined ? {} : { pciBusId: gpu.pciBusIdKernel }),
    ...(gpu.uuid === undefined ? {} : { gpuUuid: gpu.uuid }),
    pid: 4242,
    process: 'python3',
    count: 1,
    firstSeen: minutesAgo(5),
    lastSeen: minutesAgo(5),
    message: `${xid}, pid=4242, name=python3, Ch 00000008`,
    sources: ['kmsg'],
    ...overrides,
  };
}

/** An 8×H100 node snapshot (healthy and idle unless `gpus`/`events` say otherwise). */
export function nodeSnapshot(parts: Partial<NodeSnapshotDocument> & { events?: XidEventReport[] } = {}): NodeSnapshotDocument {
  const { events = [], ...rest } = parts;
  return {
    apiVersion: SNAPSHOT_API_VERSION,
    kind: SNAPSHOT_KIND,
    node: 'gpu-node-1',
    collectedAt: NOW.toISOString(),
    checks: ['health', 'xid'],
    nvml: { available: true, driverVersion: '550.90.07', nvmlVersion: '12.550.90.07', cudaDriverVersion: '12.4' },
    gpus: Array.from({ length: 8 }, (_, i) => h100(i)),
    errors: [],
    xid: { since: minutesAgo(60), events, truncated: 0 },
    agent: {
      version: '0.1.0',
      startedAt: minutesAgo(600),
      mode: 'nvml',
      xidSources: { kmsg: { running: true, path: '/dev/kmsg', records: 1200, lost: 0 }, nvmlEvents: { running: true } },
    },
    ...rest,
  };
}

/** A copy of an event without its GPU UUID (and without its bus id unless `pciBusId` is given). */
export function withoutUuid(event: XidEventReport, pciBusId?: string | 'keep'): XidEventReport {
  const copy = { ...event };
  delete copy.gpuUuid;
  if (pciBusId === undefined) delete copy.pciBusId;
  else if (pciBusId !== 'keep') copy.pciBusId = pciBusId;
  return copy;
}
