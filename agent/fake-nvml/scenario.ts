/**
 * Fake NVML scenarios: JSON documents describing GPUs, converted to the `key=value` state
 * text that fake_nvml.c reads, plus a controller that loads them and injects run-time faults.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, open, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { normalizePciBusId } from '../xid/parser.js';
import { fakeNvmlSourceDir } from './source-dir.js';
import { describeFakeNvmlEras, fakeNvmlEraFor, NEWEST_FAKE_NVML_ERA, type FakeNvmlEra } from './eras.js';

/** Environment variable through which the fake library finds its state file. */
export const FAKE_NVML_STATE_ENV = 'GPUDIAG_FAKE_NVML_STATE';
/** The file next to the state whose 8 bytes change with each new state (see fake_nvml.c). */
const GENERATION_SUFFIX = '.generation';
const GENERATION_BYTES = 8;

/** NVML return codes a scenario may inject. */
export const FAKE_NVML_CODES = { notSupported: 3, gpuIsLost: 15, unknown: 999 } as const;

/** Event type bits (nvmlEventType*), as the fake delivers them. */
export const FAKE_EVENT_TYPE_BITS = {
  singleBitEcc: 0x1,
  doubleBitEcc: 0x2,
  pstate: 0x4,
  xid: 0x8,
  gpuUnavailable: 0x4000,
  gpuRecoveryAction: 0x8000,
  /** The memory event types of R560+ (nvml.h nvmlEventType*): the library knows them on R570 builds only. */
  singleBitEccStorm: 0x200,
  dramRetirement: 0x400,
  dramRetirementFailure: 0x800,
  nonFatalPoison: 0x1000,
  fatalPoison: 0x2000,
} as const;

/** Name of an event type the fake can deliver. */
export type FakeEventType = keyof typeof FAKE_EVENT_TYPE_BITS;

const MILLIWATTS_PER_WATT = 1000;
const XID_GPU_FELL_OFF_BUS = 79;
/** The kernel's bound on one record's text (LOG_LINE_MAX is 1024 less the prefix). */
export const MAX_KMSG_TEXT_CHARS = 992;
const HW_THERMAL_SLOWDOWN_BIT = 0x40;
const EVENT_TYPE_NAMES = Object.keys(FAKE_EVENT_TYPE_BITS) as FakeEventType[];

/** Device-level NVML functions that a scenario can mark unsupported, fail or delay. */
export const FAKE_NVML_DEVICE_CALLS = [
  'nvmlDeviceGetHandleByIndex_v2',
  'nvmlDeviceGetName',
  'nvmlDeviceGetUUID',
  'nvmlDeviceGetSerial',
  'nvmlDeviceGetPciInfo_v3',
  'nvmlDeviceGetMemoryInfo',
  'nvmlDeviceGetMemoryInfo_v2',
  'nvmlDeviceGetTemperature',
  'nvmlDeviceGetTemperatureV',
  'nvmlDeviceGetTemperatureThreshold',
  'nvmlDeviceGetPowerUsage',
  'nvmlDeviceGetEnforcedPowerLimit',
  'nvmlDeviceGetUtilizationRates',
  'nvmlDeviceGetClockInfo',
  'nvmlDeviceGetMaxClockInfo',
  'nvmlDeviceGetCurrentClocksEventReasons',
  'nvmlDeviceGetCurrentClocksThrottleReasons',
  'nvmlDeviceGetEccMode',
  'nvmlDeviceGetTotalEccErrors',
  'nvmlDeviceGetMemoryErrorCounter',
  'nvmlDeviceGetRetiredPages',
  'nvmlDeviceGetRetiredPagesPendingStatus',
  'nvmlDeviceGetRemappedRows',
  'nvmlDeviceGetNvLinkState',
  'nvmlDeviceGetNvLinkErrorCounter',
  'nvmlDeviceGetCurrPcieLinkGeneration',
  'nvmlDeviceGetCurrPcieLinkWidth',
  'nvmlDeviceGetMaxPcieLinkGeneration',
  'nvmlDeviceGetMaxPcieLinkWidth',
  'nvmlDeviceGetPcieReplayCounter',
  'nvmlDeviceGetPcieThroughput',
  'nvmlDeviceGetComputeRunningProcesses',
  'nvmlDeviceGetComputeRunningProcesses_v2',
  'nvmlDeviceGetComputeRunningProcesses_v3',
  'nvmlDeviceGetFieldValues',
  'nvmlDeviceGetMigMode',
  'nvmlDeviceGetPerformanceState',
  'nvmlDeviceGetFanSpeed',
  'nvmlDeviceGetPersistenceMode',
  'nvmlDeviceGetComputeMode',
  'nvmlDeviceGetSupportedEventTypes',
  'nvmlDeviceRegisterEvents',
  'nvmlDeviceGetGpuFabricInfo',
  'nvmlDeviceGetGpuFabricInfoV',
  'nvmlDeviceGetVbiosVersion',
  'nvmlDeviceGetInforomImageVersion',
  'nvmlDeviceGetInforomVersion',
  'nvmlDeviceValidateInforom',
  'nvmlDeviceGetPowerManagementLimitConstraints',
  'nvmlDeviceGetPowerManagementDefaultLimit',
  'nvmlDeviceGetBAR1MemoryInfo',
] as const;

/** System-level NVML functions that a scenario can fail or delay. */
export const FAKE_NVML_SYSTEM_CALLS = [
  'nvmlInit_v2',
  'nvmlSystemGetDriverVersion',
  'nvmlSystemGetNVMLVersion',
  'nvmlSystemGetCudaDriverVersion',
  'nvmlSystemGetCudaDriverVersion_v2',
  'nvmlDeviceGetCount_v2',
  'nvmlEventSetCreate',
  'nvmlEventSetWait_v2',
] as const;

/** One NVLink's error counters: DL counters before NVLink5, field-value counters on NVLink5. */
export interface FakeNvLinkCounters {
  replay?: number;
  recovery?: number;
  crcFlit?: number;
  crcData?: number;
  eccData?: number;
  symbolErrors?: number;
  effectiveErrors?: number;
  recoverySuccessful?: number;
  recoveryFailed?: number;
}

/** A GPU's NVLinks. */
export interface FakeNvLinkSpec {
  /** Link indices 0..count-1 exist; higher ones are INVALID_ARGUMENT. */
  count: number;
  /** NVLink generation; 5 (Blackwell) has no DL counters (NOT_SUPPORTED) but NVLink5 field values (R570+). */
  generation?: number;
  /** Links inside the range that answer NOT_SUPPORTED (gaps, as real boards have). */
  unsupported?: number[];
  inactive?: number[];
  counters?: Record<string, FakeNvLinkCounters>;
}

/** Everything a scenario can say about one GPU; absent fields make their call NOT_SUPPORTED. */
export interface FakeGpuSpec {
  name?: string;
  uuid?: string;
  serial?: string;
  pciBusId?: string;
  pciDeviceId?: number;
  pciSubsystemId?: number;
  memory?: { totalBytes: number; usedBytes: number; reservedBytes?: number };
  temperatureCelsius?: number;
  thresholds?: { shutdown?: number; slowdown?: number; memMax?: number; gpuMax?: number };
  powerUsageWatts?: number;
  powerLimitWatts?: number;
  utilization?: { gpu: number; memory: number };
  clocks?: { graphics?: number; sm?: number; mem?: number; video?: number };
  maxClocks?: { graphics?: number; sm?: number; mem?: number; video?: number };
  clockEventReasons?: number;
  ecc?: {
    current: boolean;
    pending?: boolean;
    volatile?: { corrected?: number; uncorrected?: number };
    aggregate?: { corrected?: number; uncorrected?: number };
  };
  retiredPages?: { singleBitEcc: number; doubleBitEcc: number; pending: boolean };
  remappedRows?: { corrected: number; uncorrected: number; pending: boolean; failure: boolean };
  nvlink?: FakeNvLinkSpec;
  pcie?: {
    gen?: number;
    width?: number;
    maxGen?: number;
    maxWidth?: number;
    replay?: number;
    txKBps?: number;
    rxKBps?: number;
    /** Field values NVML_FI_DEV_PCIE_REPLAY_ROLLOVER_COUNTER and PCIE_COUNT_CORRECTABLE_ERRORS. */
    replayRollover?: number;
    correctableErrors?: number;
  };
  processes?: Array<{ pid: number; usedMemoryBytes: number }>;
  migMode?: { current: boolean; pending?: boolean };
  /** MIG devices by slot (nvmlDeviceGetMigDeviceHandleByIndex), while MIG is on; `migMaxDevices` slots (default 7). */
  migDevices?: Array<{ index: number; uuid: string }>;
  migMaxDevices?: number;
  performanceState?: number;
  fanSpeedPercent?: number;
  persistenceMode?: boolean;
  computeMode?: number;
  supportedEvents?: number;
  /** Current GPU recovery action (NVML_FI_DEV_GET_GPU_RECOVERY_ACTION, R570 builds only): 0 none .. 5. */
  recoveryAction?: number;
  /** NVSwitch fabric registration (nvmlDeviceGetGpuFabricInfo / V); absent: NOT_SUPPORTED (no fabric). */
  fabric?: FakeFabricSpec;
  vbiosVersion?: string;
  /** InfoROM versions; `corrupted` makes nvmlDeviceValidateInforom answer CORRUPTED_INFOROM. */
  inforom?: { imageVersion?: string; oem?: string; ecc?: string; power?: string; corrupted?: boolean };
  /** nvmlDeviceGetPowerManagementLimitConstraints / DefaultLimit. */
  powerLimits?: { minWatts: number; maxWatts: number; defaultWatts?: number };
  bar1?: { totalBytes: number; usedBytes: number };
  /** Field values: NVML_FI_DEV_MEMORY_TEMP, TOTAL_ENERGY_CONSUMPTION, PERF_POLICY_POWER / THERMAL. */
  memoryTemperatureCelsius?: number;
  energyMillijoules?: number;
  violationTime?: { powerNs?: number; thermalNs?: number };
  /** NVML function names that return NOT_SUPPORTED (merged with the defaults' list). */
  unsupported?: string[];
  /** NVML function name (or `*` for every device call) → return code. */
  errors?: Record<string, number>;
  /** NVML function name → artificial delay in ms. */
  delays?: Record<string, number>;
  /** Every call on this GPU returns GPU_IS_LOST. */
  lost?: boolean;
}

/** nvmlGpuFabricInfo fields (state: NOT_SUPPORTED 0, NOT_STARTED 1, IN_PROGRESS 2, COMPLETED 3). */
export interface FakeFabricSpec {
  state: number;
  /** nvmlReturn_t of the registration (read once COMPLETED). */
  status?: number;
  cliqueId?: number;
  /** 32 hex digits. */
  clusterUuid?: string;
  healthMask?: number;
  /** v3 only: NOT_SUPPORTED 0, HEALTHY 1, UNHEALTHY 2, LIMITED_CAPACITY 3. */
  healthSummary?: number;
}

/** An event queued for delivery through nvmlEventSetWait_v2. */
export interface FakeEventSpec {
  gpu: number;
  type: FakeEventType;
  /** XID number for `xid`, recovery action for `gpuRecoveryAction`. */
  data?: number;
}

/** A scenario document (the JSON files under scenarios/). */
export interface FakeNvmlScenario {
  name: string;
  description?: string;
  /** Also picks the driver era (eras.ts), hence which build of the library runs the scenario. */
  driverVersion?: string;
  nvmlVersion?: string;
  /** As NVML reports it, e.g. 12040 for CUDA 12.4. */
  cudaDriverVersion?: number;
  /**
   * libcuda.so.1 is in the container (NVIDIA_DRIVER_CAPABILITIES includes compute): only then does
   * nvmlSystemGetCudaDriverVersion_v2 answer; default false, as under our chart's `utility`.
   */
  cudaLibraryMounted?: boolean;
  /** Bytes per record the `_v3` process call writes, overriding the era (16: the 550.127.08 report). */
  processRecordBytes?: 16 | 24 | 32;
  /** nvmlInit_v2 fails with this code. */
  initError?: number;
  /** Merged under every entry of `gpus`. */
  gpuDefaults?: FakeGpuSpec;
  gpus: FakeGpuSpec[];
  events?: FakeEventSpec[];
  /**
   * Kernel-log text, one entry per /dev/kmsg record (a `\n` inside an entry is a multi-line
   * record, as the driver prints its probe message): what the simulated fleet writes to the
   * node's kmsg stand-in after the records generated for `events`. GPU addresses in NVRM lines
   * must be the scenario's own GPUs.
   */
  kmsg?: string[];
  /** Errors and delays by NVML function name, for system calls and for every GPU's device calls. */
  errors?: Record<string, number>;
  delays?: Record<string, number>;
  /**
   * GPUs the simulated node's device plugin advertises (nvidia.com/gpu capacity and allocatable,
   * label nvidia.com/gpu.count), when not `gpus.length`: a GPU gone from NVML but still expected.
   * The library never reads it.
   */
  advertisedGpus?: number;
}

/** A run-time fault for {@link FakeNvmlController.inject}. */
export type FakeNvmlFault =
  | { kind: 'fall-off-bus'; gpu: number }
  | { kind: 'double-bit-ecc'; gpu: number; count?: number }
  | { kind: 'remap-pending'; gpu: number }
  | { kind: 'nvlink-down'; gpu: number; link: number }
  | { kind: 'temperature'; gpu: number; celsius: number; hwThermalSlowdown?: boolean }
  | { kind: 'xid'; gpu: number; xid: number }
  | { kind: 'event'; event: FakeEventSpec }
  | { kind: 'patch-gpu'; gpu: number; patch: FakeGpuSpec }
  | { kind: 'delay'; call: string; ms: number; gpu?: number };

/** A scenario file or object failed validation; the message names the field. */
export class ScenarioValidationError extends Error {
  override name = 'ScenarioValidationError';
}

// ---------------------------------------------------------------- validation

type Check = (value: unknown, path: string) => void;

function fail(path: string, expected: string): never {
  throw new ScenarioValidationError(`${path} must be ${expected}`);
}

const uint: Check = (v, p) => {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) fail(p, 'a non-negative integer');
};
const num: Check = (v, p) => {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) fail(p, 'a non-negative number');
};
const str: Check = (v, p) => {
  if (typeof v !== 'string' || v.length === 0) fail(p, 'a non-empty string');
};
const bool: Check = (v, p) => {
  if (typeof v !== 'boolean') fail(p, 'a boolean');
};
const pattern =
  (re: RegExp, what: string): Check =>
  (v, p) => {
    if (typeof v !== 'string' || !re.test(v)) fail(p, what);
  };
const arrayOf =
  (item: Check): Check =>
  (v, p) => {
    if (!Array.isArray(v)) fail(p, 'an array');
    v.forEach((x: unknown, i) => item(x, `${p}[${i}]`));
  };
const recordOf =
  (keys: readonly string[] | null, value: Check): Check =>
  (v, p) => {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) fail(p, 'an object');
    for (const [k, x] of Object.entries(v)) {
      if (keys !== null && !keys.includes(k)) fail(`${p}.${k}`, `one of the known NVML functions (${k} is unknown)`);
      value(x, `${p}.${k}`);
    }
  };
const object =
  (fields: Record<string, Check>, required: readonly string[] = []): Check =>
  (v, p) => {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) fail(p, 'an object');
    const record = v as Record<string, unknown>;
    for (const key of required) if (record[key] === undefined) fail(`${p}.${key}`, 'present');
    for (const [key, x] of Object.entries(record)) {
      const check = fields[key];
      if (check === undefined) throw new ScenarioValidationError(`${p}.${key} is not a known field`);
      if (x !== undefined) check(x, `${p}.${key}`);
    }
  };

const DEVICE_CALLS: readonly string[] = FAKE_NVML_DEVICE_CALLS;
const SYSTEM_CALLS: readonly string[] = FAKE_NVML_SYSTEM_CALLS;
const clockSet = object({ graphics: uint, sm: uint, mem: uint, video: uint });
const nvlinkCounters = object({
  replay: uint,
  recovery: uint,
  crcFlit: uint,
  crcData: uint,
  eccData: uint,
  symbolErrors: uint,
  effectiveErrors: uint,
  recoverySuccessful: uint,
  recoveryFailed: uint,
});

const gpuSpec: Check = object({
  name: str,
  uuid: pattern(/^(GPU|MIG)-[0-9a-fA-F-]+$/, 'a UUID like GPU-xxxxxxxx-...'),
  serial: str,
  pciBusId: pattern(/^[0-9A-Fa-f]{8}:[0-9A-Fa-f]{2}:[0-9A-Fa-f]{2}\.[0-7]$/, 'a bus id like 00000000:18:00.0'),
  pciDeviceId: uint,
  pciSubsystemId: uint,
  memory: object({ totalBytes: uint, usedBytes: uint, reservedBytes: uint }, ['totalBytes', 'usedBytes']),
  temperatureCelsius: uint,
  thresholds: object({ shutdown: uint, slowdown: uint, memMax: uint, gpuMax: uint }),
  powerUsageWatts: num,
  powerLimitWatts: num,
  utilization: object({ gpu: uint, memory: uint }, ['gpu', 'memory']),
  clocks: clockSet,
  maxClocks: clockSet,
  clockEventReasons: uint,
  ecc: object(
    {
      current: bool,
      pending: bool,
      volatile: object({ corrected: uint, uncorrected: uint }),
      aggregate: object({ corrected: uint, uncorrected: uint }),
    },
    ['current'],
  ),
  retiredPages: object({ singleBitEcc: uint, doubleBitEcc: uint, pending: bool }, ['singleBitEcc', 'doubleBitEcc', 'pending']),
  remappedRows: object({ corrected: uint, uncorrected: uint, pending: bool, failure: bool }, [
    'corrected',
    'uncorrected',
    'pending',
    'failure',
  ]),
  nvlink: object(
    { count: uint, generation: uint, unsupported: arrayOf(uint), inactive: arrayOf(uint), counters: recordOf(null, nvlinkCounters) },
    ['count'],
  ),
  pcie: object({
    gen: uint,
    width: uint,
    maxGen: uint,
    maxWidth: uint,
    replay: uint,
    txKBps: uint,
    rxKBps: uint,
    replayRollover: uint,
    correctableErrors: uint,
  }),
  processes: arrayOf(object({ pid: uint, usedMemoryBytes: uint }, ['pid', 'usedMemoryBytes'])),
  migMode: object({ current: bool, pending: bool }, ['current']),
  migDevices: arrayOf(object({ index: uint, uuid: str }, ['index', 'uuid'])),
  migMaxDevices: uint,
  performanceState: uint,
  fanSpeedPercent: uint,
  persistenceMode: bool,
  computeMode: uint,
  supportedEvents: uint,
  recoveryAction: uint,
  fabric: object(
    {
      state: uint,
      status: uint,
      cliqueId: uint,
      clusterUuid: pattern(/^[0-9a-fA-F]{32}$/, '32 hex digits'),
      healthMask: uint,
      healthSummary: uint,
    },
    ['state'],
  ),
  vbiosVersion: str,
  inforom: object({ imageVersion: str, oem: str, ecc: str, power: str, corrupted: bool }),
  powerLimits: object({ minWatts: num, maxWatts: num, defaultWatts: num }, ['minWatts', 'maxWatts']),
  bar1: object({ totalBytes: uint, usedBytes: uint }, ['totalBytes', 'usedBytes']),
  memoryTemperatureCelsius: uint,
  energyMillijoules: uint,
  violationTime: object({ powerNs: uint, thermalNs: uint }),
  unsupported: arrayOf((v, p) => {
    if (typeof v !== 'string' || !DEVICE_CALLS.includes(v)) fail(p, 'a known device-level NVML function name');
  }),
  errors: recordOf([...DEVICE_CALLS, '*'], uint),
  delays: recordOf(DEVICE_CALLS, uint),
  lost: bool,
});

const eventSpec: Check = (v, p) => {
  object({ gpu: uint, type: str, data: uint }, ['gpu', 'type'])(v, p);
  const { type, data } = v as { type: string; data?: number };
  if (!(EVENT_TYPE_NAMES as string[]).includes(type)) fail(`${p}.type`, `one of ${EVENT_TYPE_NAMES.join(', ')}`);
  if (type === 'xid' && data === undefined) fail(`${p}.data`, 'the XID number for an xid event');
};

const kmsgText: Check = (v, p) => {
  if (typeof v !== 'string' || v.trim().length === 0 || v.length > MAX_KMSG_TEXT_CHARS)
    fail(p, `a non-empty kernel-log text of at most ${MAX_KMSG_TEXT_CHARS} characters`);
};

/** GPU addresses an NVRM line names: `Xid (PCI:0000:18:00)`, `GPU 0000:18:00.0:`, `GPU at 0000:18:00.0`, `The NVIDIA GPU 0000:18:00.0`. */
const NVRM_GPU_ADDRESS_RE =
  /NVRM:\s*(?:Xid\s*\(\s*PCI:|GPU (?:at )?(?:PCI:)?|The NVIDIA GPU\s+)([0-9a-fA-F]{4,8}:[0-9a-fA-F]{2}:[0-9a-fA-F]{2})\b/g;

const scenarioSpec: Check = object(
  {
    $schema: str,
    name: str,
    description: str,
    driverVersion: str,
    nvmlVersion: str,
    cudaDriverVersion: uint,
    cudaLibraryMounted: bool,
    processRecordBytes: (v, p) => {
      if (v !== 16 && v !== 24 && v !== 32) fail(p, '16, 24 or 32');
    },
    initError: uint,
    gpuDefaults: gpuSpec,
    gpus: arrayOf(gpuSpec),
    events: arrayOf(eventSpec),
    kmsg: arrayOf(kmsgText),
    errors: recordOf([...SYSTEM_CALLS, ...DEVICE_CALLS], uint),
    delays: recordOf([...SYSTEM_CALLS, ...DEVICE_CALLS], uint),
    advertisedGpus: uint,
  },
  ['name', 'gpus'],
);

/** The driver era (library build) a scenario runs on: its driver version's, or the newest when it names none. */
export function fakeNvmlEraOf(scenario: Pick<FakeNvmlScenario, 'driverVersion'>): FakeNvmlEra {
  if (scenario.driverVersion === undefined) return NEWEST_FAKE_NVML_ERA;
  const era = fakeNvmlEraFor(scenario.driverVersion);
  if (era === undefined)
    throw new ScenarioValidationError(`driverVersion ${scenario.driverVersion} is in no modeled era (${describeFakeNvmlEras()})`);
  return era;
}

/** Validates an unknown value as a scenario; throws {@link ScenarioValidationError} naming the field. */
export function validateScenario(value: unknown, source = 'scenario'): FakeNvmlScenario {
  scenarioSpec(value, source);
  const scenario = value as FakeNvmlScenario;
  const era = fakeNvmlEraOf(scenario);
  resolveGpus(scenario).forEach((gpu, i) => {
    const nvlink = gpu.nvlink;
    if (nvlink === undefined) return;
    if ((nvlink.generation ?? 0) >= 5 && era !== 'r570')
      fail(`${source}.gpus[${i}].nvlink.generation`, `below 5 on driver era ${era} (NVLink5 needs R570+)`);
    for (const link of [...(nvlink.unsupported ?? []), ...(nvlink.inactive ?? [])]) {
      if (link >= nvlink.count) fail(`${source}.gpus[${i}].nvlink link ${link}`, `below the link count ${nvlink.count}`);
    }
  });
  scenario.events?.forEach((event, i) => {
    if (event.gpu >= scenario.gpus.length) fail(`${source}.events[${i}].gpu`, `below the GPU count ${scenario.gpus.length}`);
  });
  if (scenario.kmsg !== undefined) {
    const addresses = resolveGpus(scenario).flatMap((g) => (g.pciBusId === undefined ? [] : [normalizePciBusId(g.pciBusId) ?? '']));
    scenario.kmsg.forEach((text, i) => {
      for (const m of text.matchAll(NVRM_GPU_ADDRESS_RE)) {
        const named = normalizePciBusId(m[1] ?? '');
        if (named === null || !addresses.includes(named))
          fail(`${source}.kmsg[${i}]`, `about the scenario's GPUs (${m[1] ?? ''} is none of ${addresses.join(', ') || 'no address'})`);
      }
    });
  }
  return scenario;
}

// ---------------------------------------------------------------- merging

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function deepMerge<T>(base: T, patch: T): T {
  if (!isPlainObject(base) || !isPlainObject(patch)) return patch === undefined ? base : patch;
  const out: Record<string, unknown> = { ...base };
  for (const [key, value] of Object.entries(patch)) {
    out[key] =
      key === 'unsupported' && Array.isArray(out[key]) && Array.isArray(value)
        ? [...new Set([...(out[key] as unknown[]), ...value])]
        : deepMerge(out[key], value);
  }
  return out as T;
}

/** Each GPU's spec with the scenario's defaults applied. */
export function resolveGpus(scenario: FakeNvmlScenario): FakeGpuSpec[] {
  return scenario.gpus.map((gpu) => deepMerge(structuredClone(scenario.gpuDefaults ?? {}), gpu));
}

// ---------------------------------------------------------------- state text

const watts = (w: number | undefined): number | undefined => (w === undefined ? undefined : Math.round(w * MILLIWATTS_PER_WATT));

/** The inventory, limit, fabric and field-value keys of one GPU (fake_nvml.c's device-info block). */
function putDeviceInfo(g: (key: string, value: string | number | undefined) => void, gpu: FakeGpuSpec): void {
  const f = gpu.fabric;
  if (f !== undefined) {
    g('fabric.state', f.state);
    g('fabric.status', f.status);
    g('fabric.clique_id', f.cliqueId);
    g('fabric.cluster_uuid', f.clusterUuid);
    g('fabric.health_mask', f.healthMask);
    g('fabric.health_summary', f.healthSummary);
  }
  g('vbios', gpu.vbiosVersion);
  g('inforom.image', gpu.inforom?.imageVersion);
  g('inforom.oem', gpu.inforom?.oem);
  g('inforom.ecc', gpu.inforom?.ecc);
  g('inforom.power', gpu.inforom?.power);
  g('inforom.corrupted', gpu.inforom?.corrupted === true ? 1 : undefined);
  g('power.min_limit_mw', watts(gpu.powerLimits?.minWatts));
  g('power.max_limit_mw', watts(gpu.powerLimits?.maxWatts));
  g('power.default_limit_mw', watts(gpu.powerLimits?.defaultWatts));
  g('bar1.total', gpu.bar1?.totalBytes);
  g('bar1.used', gpu.bar1?.usedBytes);
  g('memory_temp', gpu.memoryTemperatureCelsius);
  g('energy_mj', gpu.energyMillijoules);
  g('violation.power_ns', gpu.violationTime?.powerNs);
  g('violation.thermal_ns', gpu.violationTime?.thermalNs);
  g('pcie.replay_rollover', gpu.pcie?.replayRollover);
  g('pcie.correctable', gpu.pcie?.correctableErrors);
}

function flag(v: boolean | undefined): string | undefined {
  return v === undefined ? undefined : v ? '1' : '0';
}

/** Converts a scenario to the fake library's `key=value` state text. */
export function scenarioToStateText(scenario: FakeNvmlScenario): string {
  const lines: string[] = [`# scenario ${scenario.name}`];
  const put = (key: string, value: string | number | undefined): void => {
    if (value !== undefined) lines.push(`${key}=${value}`);
  };
  put('driver_version', scenario.driverVersion);
  // only a scenario that names its driver is bound to one era's build
  put('driver_era', scenario.driverVersion === undefined ? undefined : fakeNvmlEraOf(scenario));
  put('nvml_version', scenario.nvmlVersion);
  put('cuda_version', scenario.cudaDriverVersion);
  put('libcuda', scenario.cudaLibraryMounted === true ? 1 : undefined);
  put('process_record_bytes', scenario.processRecordBytes);
  put('init_error', scenario.initError);
  put('device_count', scenario.gpus.length);
  for (const [call, code] of Object.entries(scenario.errors ?? {})) put(`error.${call}`, code);
  for (const [call, ms] of Object.entries(scenario.delays ?? {})) put(`delay_ms.${call}`, ms);

  resolveGpus(scenario).forEach((gpu, index) => {
    const g = (key: string, value: string | number | undefined): void => put(`gpu.${index}.${key}`, value);
    g('name', gpu.name);
    g('uuid', gpu.uuid);
    g('serial', gpu.serial);
    g('pci.bus_id', gpu.pciBusId);
    g('pci.device_id', gpu.pciDeviceId);
    g('pci.subsystem_id', gpu.pciSubsystemId);
    if (gpu.memory !== undefined) {
      g('memory.total', gpu.memory.totalBytes);
      g('memory.used', gpu.memory.usedBytes);
      g('memory.reserved', gpu.memory.reservedBytes);
    }
    g('temperature', gpu.temperatureCelsius);
    g('temp.shutdown', gpu.thresholds?.shutdown);
    g('temp.slowdown', gpu.thresholds?.slowdown);
    g('temp.mem_max', gpu.thresholds?.memMax);
    g('temp.gpu_max', gpu.thresholds?.gpuMax);
    g('power.usage_mw', gpu.powerUsageWatts === undefined ? undefined : Math.round(gpu.powerUsageWatts * MILLIWATTS_PER_WATT));
    g('power.limit_mw', gpu.powerLimitWatts === undefined ? undefined : Math.round(gpu.powerLimitWatts * MILLIWATTS_PER_WATT));
    g('util.gpu', gpu.utilization?.gpu);
    g('util.memory', gpu.utilization?.memory);
    for (const clock of ['graphics', 'sm', 'mem', 'video'] as const) {
      g(`clock.${clock}`, gpu.clocks?.[clock]);
      g(`max_clock.${clock}`, gpu.maxClocks?.[clock]);
    }
    g('clock_event_reasons', gpu.clockEventReasons);
    if (gpu.ecc !== undefined) {
      g('ecc.current', flag(gpu.ecc.current));
      g('ecc.pending', flag(gpu.ecc.pending ?? gpu.ecc.current));
      g('ecc.corrected.volatile', gpu.ecc.volatile?.corrected ?? 0);
      g('ecc.uncorrected.volatile', gpu.ecc.volatile?.uncorrected ?? 0);
      g('ecc.corrected.aggregate', gpu.ecc.aggregate?.corrected ?? 0);
      g('ecc.uncorrected.aggregate', gpu.ecc.aggregate?.uncorrected ?? 0);
    }
    if (gpu.retiredPages !== undefined) {
      g('retired.sbe', gpu.retiredPages.singleBitEcc);
      g('retired.dbe', gpu.retiredPages.doubleBitEcc);
      g('retired.pending', flag(gpu.retiredPages.pending));
    }
    if (gpu.remappedRows !== undefined) {
      g('remap.corrected', gpu.remappedRows.corrected);
      g('remap.uncorrected', gpu.remappedRows.uncorrected);
      g('remap.pending', flag(gpu.remappedRows.pending));
      g('remap.failure', flag(gpu.remappedRows.failure));
    }
    if (gpu.nvlink !== undefined) {
      g('nvlink.count', gpu.nvlink.count);
      g('nvlink.generation', gpu.nvlink.generation);
      for (let link = 0; link < gpu.nvlink.count; link++) {
        g(`nvlink.${link}.active`, gpu.nvlink.inactive?.includes(link) === true ? 0 : 1);
        g(`nvlink.${link}.supported`, gpu.nvlink.unsupported?.includes(link) === true ? 0 : undefined);
        const c = gpu.nvlink.counters?.[String(link)];
        g(`nvlink.${link}.replay`, c?.replay);
        g(`nvlink.${link}.recovery`, c?.recovery);
        g(`nvlink.${link}.crc_flit`, c?.crcFlit);
        g(`nvlink.${link}.crc_data`, c?.crcData);
        g(`nvlink.${link}.ecc_data`, c?.eccData);
        g(`nvlink.${link}.symbol_errors`, c?.symbolErrors);
        g(`nvlink.${link}.effective_errors`, c?.effectiveErrors);
        g(`nvlink.${link}.recovery_successful`, c?.recoverySuccessful);
        g(`nvlink.${link}.recovery_failed`, c?.recoveryFailed);
      }
    }
    g('pcie.gen', gpu.pcie?.gen);
    g('pcie.width', gpu.pcie?.width);
    g('pcie.max_gen', gpu.pcie?.maxGen);
    g('pcie.max_width', gpu.pcie?.maxWidth);
    g('pcie.replay', gpu.pcie?.replay);
    g('pcie.tx_kbps', gpu.pcie?.txKBps);
    g('pcie.rx_kbps', gpu.pcie?.rxKBps);
    if (gpu.processes !== undefined) g('processes', gpu.processes.map((p) => `${p.pid}:${p.usedMemoryBytes}`).join(','));
    if (gpu.migMode !== undefined) {
      g('mig.current', flag(gpu.migMode.current));
      g('mig.pending', flag(gpu.migMode.pending ?? gpu.migMode.current));
    }
    g('mig.max', gpu.migMaxDevices);
    for (const d of gpu.migDevices ?? []) g(`mig.${d.index}.uuid`, d.uuid);
    g('pstate', gpu.performanceState);
    g('fan', gpu.fanSpeedPercent);
    g('persistence', flag(gpu.persistenceMode));
    g('compute_mode', gpu.computeMode);
    g('supported_events', gpu.supportedEvents);
    g('recovery_action', gpu.recoveryAction);
    putDeviceInfo(g, gpu);
    g('lost', gpu.lost === true ? 1 : undefined);
    for (const call of gpu.unsupported ?? []) g(`error.${call}`, FAKE_NVML_CODES.notSupported);
    for (const [call, code] of Object.entries(gpu.errors ?? {})) g(`error.${call}`, code);
    for (const [call, ms] of Object.entries(gpu.delays ?? {})) g(`delay_ms.${call}`, ms);
  });
  (scenario.events ?? []).forEach((event, i) => {
    put(`event.${i + 1}`, `${event.gpu},${FAKE_EVENT_TYPE_BITS[event.type]},${event.data ?? 0}`);
  });
  return `${lines.join('\n')}\n`;
}

// ---------------------------------------------------------------- kernel log

/** syslog levels the stand-in records carry: NVRM messages are warnings, NVSwitch SXid lines errors. */
const KMSG_LEVEL_WARNING = 4;
const KMSG_LEVEL_ERR = 3;
const PRINTABLE_MIN = 0x20;
const PRINTABLE_MAX = 0x7e;
const BACKSLASH = 0x5c;

/** Escapes record text as /dev/kmsg does: bytes outside printable ASCII, and backslashes, become `\xNN`. */
export function escapeKmsgText(text: string): string {
  let out = '';
  for (const byte of Buffer.from(text, 'utf8')) {
    out +=
      byte < PRINTABLE_MIN || byte > PRINTABLE_MAX || byte === BACKSLASH
        ? `\\x${byte.toString(16).padStart(2, '0')}`
        : String.fromCharCode(byte);
  }
  return out;
}

/** One /dev/kmsg record line: `<prio>,<seq>,<ts_usec>,-;<escaped text>`. */
export function kmsgRecord(priority: number, seq: number, tsUsec: bigint, text: string): string {
  return `${priority},${seq},${tsUsec},-;${escapeKmsgText(text)}`;
}

/** Where the records of {@link scenarioKmsgRecords} are stamped. */
export interface KmsgStamping {
  /** CLOCK_MONOTONIC microseconds of the first record. */
  readonly startUs: bigint;
  /** Microseconds between consecutive records. */
  readonly stepUs: bigint;
}

/** The kernel form of an NVML bus id (`00000000:18:00.0` → `0000:18:00`), as the driver prints it in Xid lines. */
function kernelBus(pciBusId: string): string {
  return normalizePciBusId(pciBusId) ?? pciBusId;
}

/**
 * The kernel-log records a scenario stands for, oldest first, seq from 1: one generic NVRM Xid
 * line per `xid` event (so kmsg and NVML report the same XIDs), then the scenario's own `kmsg`
 * text. Timestamps increase by `stepUs` from `startUs`.
 */
export function scenarioKmsgRecords(scenario: FakeNvmlScenario, stamping: KmsgStamping): string[] {
  const gpus = resolveGpus(scenario);
  const texts: { level: number; text: string }[] = [];
  for (const e of scenario.events ?? []) {
    const bus = gpus[e.gpu]?.pciBusId;
    if (e.type !== 'xid' || bus === undefined || e.data === undefined) continue;
    texts.push({
      level: KMSG_LEVEL_WARNING,
      text: `NVRM: Xid (PCI:${kernelBus(bus)}): ${e.data}, pid=4242, name=python3, simulated fault from scenario ${scenario.name}`,
    });
  }
  for (const text of scenario.kmsg ?? []) texts.push({ level: /\bSXid\s*\(/.test(text) ? KMSG_LEVEL_ERR : KMSG_LEVEL_WARNING, text });
  return texts.map((t, i) => kmsgRecord(t.level, i + 1, stamping.startUs + BigInt(i) * stamping.stepUs, t.text));
}

// ---------------------------------------------------------------- scenario files

/** Directory of the shipped scenario JSON files. */
export function scenariosDir(): string {
  return join(fakeNvmlSourceDir(), 'scenarios');
}

/** A delay this long stands for a call that never returns (a wedged driver), not a slow one. */
export const BLOCKING_DELAY_MS = 60_000;

/** True when some call of the scenario blocks (see {@link BLOCKING_DELAY_MS}): only shutdown tests load such a scenario. */
export function scenarioBlocks(scenario: FakeNvmlScenario): boolean {
  const delays = [scenario.delays, scenario.gpuDefaults?.delays, ...scenario.gpus.map((g) => g.delays)];
  return delays.some((d) => Object.values(d ?? {}).some((ms) => ms >= BLOCKING_DELAY_MS));
}

/** Names of the shipped scenarios (file names without `.json`). */
export async function listScenarios(): Promise<string[]> {
  const files = await readdir(scenariosDir());
  return files
    .filter((f) => f.endsWith('.json'))
    .map((f) => f.slice(0, -'.json'.length))
    .sort();
}

/** Reads and validates a shipped scenario by name. */
export async function loadScenario(name: string): Promise<FakeNvmlScenario> {
  if (!/^[a-z0-9-]+$/.test(name)) throw new ScenarioValidationError(`scenario name "${name}" must be kebab-case`);
  const file = join(scenariosDir(), `${name}.json`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(await readFile(file, 'utf8'));
  } catch (err) {
    throw new Error(`cannot read scenario ${file}`, { cause: err });
  }
  return validateScenario(parsed, name);
}

// ---------------------------------------------------------------- controller

function applyFault(scenario: FakeNvmlScenario, fault: FakeNvmlFault): FakeNvmlScenario {
  const next = structuredClone(scenario);
  const events = (next.events ??= []);
  const patchGpu = (gpu: number, patch: FakeGpuSpec): void => {
    const current = next.gpus[gpu];
    if (current === undefined) throw new ScenarioValidationError(`fault.gpu ${gpu} is out of range (${next.gpus.length} GPUs)`);
    next.gpus[gpu] = deepMerge(current, patch);
  };
  const resolved = (gpu: number): FakeGpuSpec => resolveGpus(next)[gpu] ?? {};
  switch (fault.kind) {
    case 'fall-off-bus':
      patchGpu(fault.gpu, { lost: true });
      events.push({ gpu: fault.gpu, type: 'xid', data: XID_GPU_FELL_OFF_BUS });
      break;
    case 'double-bit-ecc': {
      const count = fault.count ?? 1;
      const ecc = resolved(fault.gpu).ecc ?? { current: true };
      patchGpu(fault.gpu, {
        ecc: {
          current: ecc.current,
          volatile: { uncorrected: (ecc.volatile?.uncorrected ?? 0) + count },
          aggregate: { uncorrected: (ecc.aggregate?.uncorrected ?? 0) + count },
        },
      });
      events.push({ gpu: fault.gpu, type: 'doubleBitEcc' });
      break;
    }
    case 'remap-pending': {
      const rows = resolved(fault.gpu).remappedRows ?? { corrected: 0, uncorrected: 0, pending: false, failure: false };
      patchGpu(fault.gpu, { remappedRows: { ...rows, uncorrected: rows.uncorrected + 1, pending: true } });
      break;
    }
    case 'nvlink-down': {
      const nvlink = resolved(fault.gpu).nvlink;
      if (nvlink === undefined) throw new ScenarioValidationError(`fault.gpu ${fault.gpu} has no NVLink`);
      patchGpu(fault.gpu, { nvlink: { count: nvlink.count, inactive: [...new Set([...(nvlink.inactive ?? []), fault.link])] } });
      break;
    }
    case 'temperature': {
      const patch: FakeGpuSpec = { temperatureCelsius: fault.celsius };
      if (fault.hwThermalSlowdown !== undefined) {
        const reasons = resolved(fault.gpu).clockEventReasons ?? 0;
        const bit = HW_THERMAL_SLOWDOWN_BIT;
        patch.clockEventReasons = fault.hwThermalSlowdown ? reasons | bit : reasons & ~bit;
      }
      patchGpu(fault.gpu, patch);
      break;
    }
    case 'xid':
      patchGpu(fault.gpu, {});
      events.push({ gpu: fault.gpu, type: 'xid', data: fault.xid });
      break;
    case 'event':
      events.push(fault.event);
      break;
    case 'patch-gpu':
      patchGpu(fault.gpu, fault.patch);
      break;
    case 'delay':
      if (fault.gpu === undefined) next.delays = { ...next.delays, [fault.call]: fault.ms };
      else patchGpu(fault.gpu, { delays: { [fault.call]: fault.ms } });
      break;
  }
  return next;
}

/** Options for {@link FakeNvmlController}. */
export interface FakeNvmlControllerOptions {
  /** State file to write; defaults to a fresh temporary directory. */
  stateFile?: string;
}

/** Drives a fake NVML library: loads scenarios and injects faults by rewriting the state file atomically. */
export class FakeNvmlController {
  private scenario: FakeNvmlScenario | undefined;
  private stateFilePath: string | undefined;
  private tempDir: string | undefined;
  private writes = 0;

  constructor(private readonly options: FakeNvmlControllerOptions = {}) {}

  /** Path of the state file (valid after the first load). */
  get stateFile(): string {
    if (this.stateFilePath === undefined) throw new Error('FakeNvmlController: load a scenario first');
    return this.stateFilePath;
  }

  /** The scenario as currently written, faults included. */
  get current(): FakeNvmlScenario {
    if (this.scenario === undefined) throw new Error('FakeNvmlController: load a scenario first');
    return structuredClone(this.scenario);
  }

  /** Environment entries that point the fake library at this controller's state file. */
  env(): Record<string, string> {
    return { [FAKE_NVML_STATE_ENV]: this.stateFile };
  }

  /** Loads a shipped scenario by name, or validates and loads a scenario object. */
  async load(scenario: string | FakeNvmlScenario): Promise<FakeNvmlScenario> {
    const resolved =
      typeof scenario === 'string' ? await loadScenario(scenario) : validateScenario(structuredClone(scenario), scenario.name);
    await this.write(resolved);
    return structuredClone(resolved);
  }

  /** Applies a run-time fault; a running process sees it on its next NVML call. */
  async inject(fault: FakeNvmlFault): Promise<void> {
    if (this.scenario === undefined) throw new Error('FakeNvmlController: load a scenario before injecting faults');
    const next = applyFault(this.scenario, fault);
    await this.write(validateScenario(next, next.name));
  }

  /** Removes the temporary state directory, if this controller created it. */
  async dispose(): Promise<void> {
    if (this.tempDir !== undefined) await rm(this.tempDir, { recursive: true, force: true });
    this.tempDir = undefined;
    this.stateFilePath = undefined;
  }

  private async write(scenario: FakeNvmlScenario): Promise<void> {
    if (this.stateFilePath === undefined) {
      if (this.options.stateFile !== undefined) this.stateFilePath = this.options.stateFile;
      else {
        this.tempDir = await mkdtemp(join(tmpdir(), 'gpudiag-fake-nvml-'));
        this.stateFilePath = join(this.tempDir, 'state.txt');
      }
    }
    // the library re-reads when the inode changes, so publish a complete file by rename
    const temp = `${this.stateFilePath}.tmp-${process.pid}-${this.writes++}`;
    await writeFile(temp, scenarioToStateText(scenario));
    await rename(temp, this.stateFilePath);
    await this.bumpGeneration(`${this.stateFilePath}${GENERATION_SUFFIX}`);
    this.scenario = scenario;
  }

  /**
   * Tells running libraries that a new state exists: they map this file and stat the state only
   * when its 8 bytes change. Written in place, never truncated (a mapped file must keep its size).
   */
  private async bumpGeneration(file: string): Promise<void> {
    // random, so that two controllers writing one state file never publish the same value
    const bytes = randomBytes(GENERATION_BYTES);
    let handle;
    try {
      handle = await open(file, 'r+');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      await writeFile(file, bytes, { flag: 'wx' });
      return;
    }
    try {
      await handle.write(bytes, 0, GENERATION_BYTES, 0);
    } finally {
      await handle.close();
    }
  }
}
