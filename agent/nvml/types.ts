/** The JSON-able shapes the NVML collector and event watcher produce. */

/**
 * The bounds below (`@maxLength`, `@maxItems`, `@pattern`) become the snapshot schema the
 * operator validates every answer against: one misbehaving agent cannot inflate the operator's
 * memory, a status object or the number of metric series. NVML's own buffer sizes set most of
 * them (nvml.h: NVML_DEVICE_NAME_V2_BUFFER_SIZE 96, NVML_DEVICE_UUID_V2_BUFFER_SIZE 96,
 * NVML_DEVICE_SERIAL_BUFFER_SIZE 30, NVML_SYSTEM_DRIVER_VERSION_BUFFER_SIZE 80,
 * NVML_NVLINK_MAX_LINKS 18).
 */

/** A call that failed with something other than NOT_SUPPORTED. */
export interface NvmlFieldError {
  /**
   * Snapshot field the call would have filled, e.g. `power.usageWatts`.
   * @maxLength 64
   */
  field: string;
  /** NVML return code (TIMEOUT 10 is also used when our own call deadline expires). */
  code: number;
  /**
   * Readable error text.
   * @maxLength 512
   */
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
  /** Memory (HBM) temperature, NVML_FI_DEV_MEMORY_TEMP; boards without a memory sensor lack it. */
  memoryCelsius?: number;
}

/** Power draw and enforced limit in watts. */
export interface GpuPower {
  usageWatts?: number;
  enforcedLimitWatts?: number;
  /** The range a power limit may be set in (nvmlDeviceGetPowerManagementLimitConstraints). */
  minLimitWatts?: number;
  maxLimitWatts?: number;
  /** The limit the board boots with (nvmlDeviceGetPowerManagementDefaultLimit). */
  defaultLimitWatts?: number;
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
  /** @maxItems 32 */
  names: ClockEventReasonName[];
}

/** @maxLength 64 */
export type ClockEventReasonName = string;

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
  /** Times the replay counter rolled over: a TLP failed every replay and the link retrained (NVML_FI_DEV_PCIE_REPLAY_ROLLOVER_COUNTER). */
  replayRolloverCounter?: number;
  /** Correctable PCIe errors since driver load (NVML_FI_DEV_PCIE_COUNT_CORRECTABLE_ERRORS, R535+). */
  correctableErrors?: number;
  /**
   * When the oldest of `replayCounter`, `replayRolloverCounter` and `correctableErrors` was read
   * (ISO 8601). Each takes 0.15-0.3 ms on a real driver (H200, R580), so they are re-read at most
   * every 5 s and repeated in between.
   * @maxLength 40
   * @pattern ^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$
   */
  countersReadAt?: string;
}

/**
 * NVLink error counters of one link: the DL counters (replay .. eccData) before NVLink5; on
 * NVLink5 (Blackwell), where those are NOT_SUPPORTED, the field-value counters (symbolErrors ..).
 */
export interface NvLinkErrorCounters {
  replay?: number;
  recovery?: number;
  crcFlit?: number;
  crcData?: number;
  eccData?: number;
  /** NVML_FI_DEV_NVLINK_COUNT_SYMBOL_ERRORS. */
  symbolErrors?: number;
  /** NVML_FI_DEV_NVLINK_COUNT_EFFECTIVE_ERRORS (errors left after FEC). */
  effectiveErrors?: number;
  /** NVML_FI_DEV_NVLINK_COUNT_LINK_RECOVERY_SUCCESSFUL_EVENTS. */
  recoverySuccessful?: number;
  /** NVML_FI_DEV_NVLINK_COUNT_LINK_RECOVERY_FAILED_EVENTS. */
  recoveryFailed?: number;
}

/** One NVLink. */
export interface GpuNvLink {
  /**
   * @minimum 0
   * @maximum 63
   */
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

/** One MIG device of a GPU in MIG mode (nvmlDeviceGetMigDeviceHandleByIndex). */
export interface GpuMigDevice {
  /**
   * The MIG device's slot under its GPU.
   * @minimum 0
   * @maximum 7
   */
  index: number;
  uuid: GpuUuid;
}

/** nvmlGpuFabricState_t names. */
export type GpuFabricState = 'notSupported' | 'notStarted' | 'inProgress' | 'completed' | 'unknown';

/** NVML_GPU_FABRIC_HEALTH_SUMMARY_* names (v3 of the fabric struct). */
export type GpuFabricHealthSummary = 'notSupported' | 'healthy' | 'unhealthy' | 'limitedCapacity' | 'unknown';

/** The GPU's registration with the NVSwitch fabric manager (HGX; nvmlDeviceGetGpuFabricInfoV, or the v1 call). */
export interface GpuFabric {
  state: GpuFabricState;
  /** NVML return code of the registration (0: success); meaningful only once `state` is completed. */
  status: number;
  cliqueId: number;
  /**
   * The fabric cluster UUID, 32 hex digits.
   * @maxLength 32
   * @pattern ^[0-9a-f]{32}$
   */
  clusterUuid: string;
  /** NVML_GPU_FABRIC_HEALTH_MASK_* bits (v2+ of the struct). */
  healthMask?: number;
  /** v3 of the struct (R570+). */
  healthSummary?: GpuFabricHealthSummary;
  /** The health mask's DEGRADED_BW field reads TRUE: the fabric runs at reduced bandwidth. */
  degradedBandwidth?: boolean;
}

/** @maxLength 16 */
export type InforomVersionText = string;

/** InfoROM versions (nvmlDeviceGetInforomImageVersion / GetInforomVersion) and validity (nvmlDeviceValidateInforom). */
export interface GpuInforom {
  imageVersion?: InforomVersionText;
  oemVersion?: InforomVersionText;
  eccVersion?: InforomVersionText;
  powerVersion?: InforomVersionText;
  /** False when the driver answers CORRUPTED_INFOROM: the InfoROM checksums do not verify. */
  valid?: boolean;
}

/** BAR1 aperture use in bytes (nvmlDeviceGetBAR1MemoryInfo). */
export interface GpuBar1Memory {
  totalBytes: number;
  usedBytes: number;
  freeBytes: number;
}

/** Time clocks were held down by a policy since driver load, ns (NVML_FI_DEV_PERF_POLICY_POWER / _THERMAL). */
export interface GpuViolationTime {
  powerNs?: number;
  thermalNs?: number;
  /**
   * When `thermalNs` was read (ISO 8601): it takes ~0.6 ms on a real driver (H200, R580), so it is
   * re-read at most every 5 s and repeated in between.
   * @maxLength 40
   * @pattern ^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$
   */
  thermalReadAt?: string;
}

/** What the driver says the GPU needs to recover (NVML_FI_DEV_GET_GPU_RECOVERY_ACTION, R565+). */
export type GpuRecoveryAction = 'none' | 'gpuReset' | 'nodeReboot' | 'drainP2p' | 'drainAndReset' | 'gpuResetBus' | 'unknown';

/** Compute mode names as NVML numbers them. */
export type GpuComputeMode = 'default' | 'exclusiveThread' | 'prohibited' | 'exclusiveProcess' | 'unknown';

/**
 * A GPU or MIG device UUID as NVML reports it (`GPU-b176d2db-6067-...`, `MIG-...`).
 * @maxLength 96
 * @pattern ^(GPU|MIG)-[A-Za-z0-9/-]+$
 */
export type GpuUuid = string;

/**
 * A PCI bus id in NVML form (`00000000:18:00.0`).
 * @maxLength 16
 * @pattern ^[0-9A-Fa-f]{4,8}:[0-9A-Fa-f]{2}:[0-9A-Fa-f]{2}\.[0-7]$
 */
export type NvmlPciBusId = string;

/**
 * A PCI bus id in kernel-log form (`0000:18:00`).
 * @maxLength 10
 * @pattern ^[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}$
 */
export type KernelPciBusId = string;

/** One GPU's observations. Absent fields are either unsupported (listed) or failed (in `errors`). */
export interface GpuSnapshot {
  /**
   * @minimum 0
   * @maximum 63
   */
  index: number;
  /** The GPU fell off the bus / returned GPU_IS_LOST; only identity already known is present. */
  lost: boolean;
  uuid?: GpuUuid;
  /** @maxLength 96 */
  name?: string;
  /** @maxLength 30 */
  serial?: string;
  /** NVML form, e.g. `00000000:18:00.0`. */
  pciBusId?: NvmlPciBusId;
  /** Kernel log form, e.g. `0000:18:00`. */
  pciBusIdKernel?: KernelPciBusId;
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
  /** @maxItems 64 */
  nvlinks?: GpuNvLink[];
  /**
   * The first MAX_PROCESSES_PER_GPU processes (collector.ts); `processesOmitted` counts the rest.
   * @maxItems 256
   */
  processes?: GpuProcess[];
  /** Processes left out of `processes` (a GPU shared by more than 256). */
  processesOmitted?: number;
  migMode?: GpuMigMode;
  /**
   * The MIG devices while MIG is on: the device plugin allocates these UUIDs, not the GPU's.
   * @maxItems 8
   */
  migDevices?: GpuMigDevice[];
  persistenceMode?: boolean;
  /** 0 = P0 (maximum performance) .. 15; absent when unknown. */
  performanceState?: number;
  fanSpeedPercent?: number;
  computeMode?: GpuComputeMode;
  /** The driver's current recovery action for this GPU (R570+ drivers; unsupported before). */
  recoveryAction?: GpuRecoveryAction;
  /** NVSwitch fabric state (HGX systems; absent or notSupported elsewhere). */
  fabric?: GpuFabric;
  /**
   * VBIOS version (nvmlDeviceGetVbiosVersion).
   * @maxLength 32
   */
  vbiosVersion?: string;
  inforom?: GpuInforom;
  bar1?: GpuBar1Memory;
  /** Energy since the driver was last reloaded, mJ (NVML_FI_DEV_TOTAL_ENERGY_CONSUMPTION). */
  energyMillijoules?: number;
  /**
   * When `energyMillijoules` was read (ISO 8601). A read takes ~3 ms on a real driver (H200, R580:
   * half of a GPU's collection), so the counter is re-read at most every 5 s and repeated in
   * between: derive power from two readings and these times, not `collectedAt`.
   * @maxLength 40
   * @pattern ^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$
   */
  energyReadAt?: string;
  violationTime?: GpuViolationTime;
  /**
   * Fields this GPU does not have (NVML_ERROR_NOT_SUPPORTED).
   * @maxItems 128
   */
  unsupported: SnapshotFieldName[];
  /**
   * Calls that failed for another reason.
   * @maxItems 128
   */
  errors: NvmlFieldError[];
}

/** @maxLength 64 */
export type SnapshotFieldName = string;

/** @maxLength 80 */
export type DriverVersionText = string;

/** NVML usable: versions as reported. */
export interface NvmlAvailable {
  available: true;
  driverVersion?: DriverVersionText;
  nvmlVersion?: DriverVersionText;
  /** e.g. `12.4`. */
  cudaDriverVersion?: DriverVersionText;
}

/** No-GPU mode: no library, init failed, or no GPUs. */
export interface NvmlUnavailable {
  available: false;
  /** @maxLength 1024 */
  reason: string;
  /** NVML return code when init failed. */
  code?: number;
  driverVersion?: DriverVersionText;
  nvmlVersion?: DriverVersionText;
  cudaDriverVersion?: DriverVersionText;
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

/** The memory event types of R560+ drivers (nvmlEventTypeSingleBitEccErrorStorm .. FatalPoisonError). */
export type NvmlMemoryEventKind = 'singleBitEccStorm' | 'dramRetirement' | 'dramRetirementFailure' | 'nonFatalPoison' | 'fatalPoison';

/** Kind of an NVML event the watcher reports. */
export type NvmlEventKind = 'xid' | 'doubleBitEcc' | 'gpuUnavailable' | 'gpuRecoveryAction' | NvmlMemoryEventKind | 'other';

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
