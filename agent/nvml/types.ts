/** The JSON-able shapes the NVML collector and event watcher produce. */

/** A call that failed with something other than NOT_SUPPORTED. */
export interface NvmlFieldError {
  /** Snapshot field the call would have filled, e.g. `power.usageWatts`. */
  field: string;
  /** NVML return code (TIMEOUT 10 is also used when our own call deadline expires). */
  code: number;
  /** Readable error text. */
  error: string;
}

/** Groups of fields the collector can be asked for; identity is always collected. */
export type NvmlCheck =
  | 'memory'
  | 'temperature'
  | 'power'
  | 'utilization'
  | 'clocks'
  | 'ecc'
  | 'retiredPages'
  | 'remappedRows'
  | 'pcie'
  | 'nvlink'
  | 'processes'
  | 'modes';

/** Every check, in collection order. */
export const ALL_NVML_CHECKS: readonly NvmlCheck[] = [
  'memory',
  'temperature',
  'power',
  'utilization',
  'clocks',
  'ecc',
  'retiredPages',
  'remappedRows',
  'pcie',
  'nvlink',
  'processes',
  'modes',
];

/** Memory in bytes (`reservedBytes` only from the v2 call). */
export interface GpuMemory {
  totalBytes: number;
  usedBytes: number;
  freeBytes: number;
  reservedBytes?: number;
}

/** Current temperature and the board's thresholds in °C. */
export interface GpuTemperature {
  gpuCelsius?: number;
  slowdownCelsius?: number;
  shutdownCelsius?: number;
  gpuMaxCelsius?: number;
  memoryMaxCelsius?: number;
}

/** Power draw and enforced limit in watts. */
export interface GpuPower {
  usageWatts?: number;
  enforcedLimitWatts?: number;
}

/** Percent of time busy over the last sample period. */
export interface GpuUtilization {
  gpuPercent: number;
  memoryPercent: number;
}

/** Current and maximum clocks in MHz. */
export interface GpuClocks {
  graphicsMHz?: number;
  smMHz?: number;
  memoryMHz?: number;
  maxGraphicsMHz?: number;
  maxSmMHz?: number;
  maxMemoryMHz?: number;
}

/** Why clocks are below maximum: the raw bitmask and its decoded names. */
export interface GpuClockEventReasons {
  mask: number;
  names: string[];
}

/** ECC mode and error totals (volatile: since driver load; aggregate: lifetime). */
export interface GpuEcc {
  enabled?: boolean;
  pendingEnabled?: boolean;
  volatileCorrected?: number;
  volatileUncorrected?: number;
  aggregateCorrected?: number;
  aggregateUncorrected?: number;
}

/** Pre-Ampere page retirement. */
export interface GpuRetiredPages {
  singleBitEcc?: number;
  doubleBitEcc?: number;
  pending?: boolean;
}

/** Ampere+ row remapping. */
export interface GpuRemappedRows {
  corrected: number;
  uncorrected: number;
  pending: boolean;
  failure: boolean;
}

/** PCIe link state. */
export interface GpuPcie {
  currentGen?: number;
  currentWidth?: number;
  maxGen?: number;
  maxWidth?: number;
  replayCounter?: number;
}

/** NVLink error counters of one link. */
export interface NvLinkErrorCounters {
  replay?: number;
  recovery?: number;
  crcFlit?: number;
  crcData?: number;
  eccData?: number;
}

/** One NVLink. */
export interface GpuNvLink {
  link: number;
  active: boolean;
  errors: NvLinkErrorCounters;
}

/** A process with a CUDA context on the GPU. */
export interface GpuProcess {
  pid: number;
  /** Absent when NVML cannot tell (e.g. insufficient permissions). */
  usedMemoryBytes?: number;
}

/** Current and pending MIG mode. */
export interface GpuMigMode {
  enabled: boolean;
  pendingEnabled: boolean;
}

/** Compute mode names as NVML numbers them. */
export type GpuComputeMode = 'default' | 'exclusiveThread' | 'prohibited' | 'exclusiveProcess' | 'unknown';

/** One GPU's observations. Absent fields are either unsupported (listed) or failed (in `errors`). */
export interface GpuSnapshot {
  index: number;
  /** The GPU fell off the bus / returned GPU_IS_LOST; only identity already known is present. */
  lost: boolean;
  uuid?: string;
  name?: string;
  serial?: string;
  /** NVML form, e.g. `00000000:18:00.0`. */
  pciBusId?: string;
  /** Kernel log form, e.g. `0000:18:00`. */
  pciBusIdKernel?: string;
  memory?: GpuMemory;
  temperature?: GpuTemperature;
  power?: GpuPower;
  utilization?: GpuUtilization;
  clocks?: GpuClocks;
  clockEventReasons?: GpuClockEventReasons;
  ecc?: GpuEcc;
  retiredPages?: GpuRetiredPages;
  remappedRows?: GpuRemappedRows;
  pcie?: GpuPcie;
  nvlinks?: GpuNvLink[];
  processes?: GpuProcess[];
  migMode?: GpuMigMode;
  persistenceMode?: boolean;
  /** 0 = P0 (maximum performance) .. 15; absent when unknown. */
  performanceState?: number;
  fanSpeedPercent?: number;
  computeMode?: GpuComputeMode;
  /** Fields this GPU does not have (NVML_ERROR_NOT_SUPPORTED). */
  unsupported: string[];
  /** Calls that failed for another reason. */
  errors: NvmlFieldError[];
}

/** NVML usable: versions as reported. */
export interface NvmlAvailable {
  available: true;
  driverVersion?: string;
  nvmlVersion?: string;
  /** e.g. `12.4`. */
  cudaDriverVersion?: string;
}

/** No-GPU mode: no library, init failed, or no GPUs. */
export interface NvmlUnavailable {
  available: false;
  reason: string;
  /** NVML return code when init failed. */
  code?: number;
  driverVersion?: string;
  nvmlVersion?: string;
  cudaDriverVersion?: string;
}

/** A node's NVML snapshot. */
export interface NvmlSnapshot {
  /** ISO-8601 time the collection started. */
  collectedAt: string;
  nvml: NvmlAvailable | NvmlUnavailable;
  gpus: GpuSnapshot[];
  /** System-level failures (versions, device count). */
  errors: NvmlFieldError[];
}

/** Kind of an NVML event the watcher reports. */
export type NvmlEventKind = 'xid' | 'doubleBitEcc' | 'gpuUnavailable' | 'gpuRecoveryAction' | 'other';

/** One event delivered by nvmlEventSetWait. */
export interface NvmlEvent {
  type: NvmlEventKind;
  /** Raw nvmlEventType bit. */
  eventType: number;
  /** XID number for `xid` events. */
  xid?: number;
  /** Raw event data (XID number, recovery action, ...). */
  data: number;
  gpuIndex?: number;
  gpuUuid?: string;
  pciBusId?: string;
  /** ISO-8601 time the watcher received it. */
  time: string;
}
