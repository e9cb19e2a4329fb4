/**
 * The one FFI boundary to NVML (libnvidia-ml.so.1) through koffi. Every device call runs on
 * the libuv thread pool (`fn.async`) under a deadline and an optional AbortSignal, so a hung
 * driver never blocks the event loop. Init is single-flight; shutdown waits for in-flight calls.
 */
import type * as Koffi from 'koffi';
import { koffi } from '../../lib/koffi.js';

/** NVML return codes (nvmlReturn_t) the agent branches on. */
export const NvmlReturn = {
  SUCCESS: 0,
  UNINITIALIZED: 1,
  INVALID_ARGUMENT: 2,
  NOT_SUPPORTED: 3,
  NO_PERMISSION: 4,
  NOT_FOUND: 6,
  INSUFFICIENT_SIZE: 7,
  DRIVER_NOT_LOADED: 9,
  TIMEOUT: 10,
  LIBRARY_NOT_FOUND: 12,
  FUNCTION_NOT_FOUND: 13,
  CORRUPTED_INFOROM: 14,
  GPU_IS_LOST: 15,
  ARGUMENT_VERSION_MISMATCH: 25,
  UNKNOWN: 999,
} as const;

const RETURN_CODE_NAMES: Record<number, string> = {
  0: 'SUCCESS',
  1: 'UNINITIALIZED',
  2: 'INVALID_ARGUMENT',
  3: 'NOT_SUPPORTED',
  4: 'NO_PERMISSION',
  5: 'ALREADY_INITIALIZED',
  6: 'NOT_FOUND',
  7: 'INSUFFICIENT_SIZE',
  8: 'INSUFFICIENT_POWER',
  9: 'DRIVER_NOT_LOADED',
  10: 'TIMEOUT',
  11: 'IRQ_ISSUE',
  12: 'LIBRARY_NOT_FOUND',
  13: 'FUNCTION_NOT_FOUND',
  14: 'CORRUPTED_INFOROM',
  15: 'GPU_IS_LOST',
  16: 'RESET_REQUIRED',
  17: 'OPERATING_SYSTEM',
  18: 'LIB_RM_VERSION_MISMATCH',
  19: 'IN_USE',
  20: 'MEMORY',
  21: 'NO_DATA',
  22: 'VGPU_ECC_NOT_SUPPORTED',
  23: 'INSUFFICIENT_RESOURCES',
  24: 'FREQ_NOT_SUPPORTED',
  25: 'ARGUMENT_VERSION_MISMATCH',
  26: 'DEPRECATED',
  27: 'NOT_READY',
  28: 'GPU_NOT_FOUND',
  29: 'INVALID_STATE',
  30: 'RESET_TYPE_NOT_SUPPORTED',
  999: 'UNKNOWN',
};

/** The symbolic name of an NVML return code, e.g. 15 → `GPU_IS_LOST`. */
export function nvmlReturnName(code: number): string {
  return RETURN_CODE_NAMES[code] ?? `NVML_${code}`;
}

/** An NVML call returned something other than SUCCESS. */
export class NvmlError extends Error {
  override name = 'NvmlError';
  /** The symbolic code name, e.g. `GPU_IS_LOST`. */
  readonly codeName: string;

  constructor(
    /** nvmlReturn_t value. */
    readonly code: number,
    /** NVML function that failed. */
    readonly fn: string,
    /** Text from nvmlErrorString (or our own description). */
    readonly errorString: string,
    options?: ErrorOptions,
  ) {
    // NOT_SUPPORTED and friends are data, tens per snapshot: a stack trace (a few µs each) says
    // nothing the function name does not.
    const stackTraceLimit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
    try {
      super(`${fn} failed: ${errorString} (${nvmlReturnName(code)}=${code})`, options);
    } finally {
      Error.stackTraceLimit = stackTraceLimit;
    }
    this.codeName = nvmlReturnName(code);
  }
}

/** Our deadline for a call expired; the native call may still be running on the thread pool. */
export class NvmlTimeoutError extends NvmlError {
  override name = 'NvmlTimeoutError';

  constructor(fn: string, timeoutMs: number, detail?: string) {
    super(NvmlReturn.TIMEOUT, fn, `no answer within ${timeoutMs} ms${detail === undefined ? '' : ` (${detail})`}`);
  }
}

/** The NVML shared library could not be loaded (no driver, wrong path, not NVML). */
export class NvmlLibraryError extends Error {
  override name = 'NvmlLibraryError';

  constructor(
    message: string,
    /** Paths that were tried. */
    readonly paths: readonly string[],
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/** Options for {@link NvmlBinding}. */
export interface NvmlBindingOptions {
  /** Library to load first; `libnvidia-ml.so.1` (the loader's search path) is tried after it. */
  libraryPath?: string;
  /** Set false to try only `libraryPath`. */
  fallbackToSystemLibrary?: boolean;
  /** Deadline for one device call. */
  callTimeoutMs?: number;
  /** Deadline for nvmlInit_v2 (slow with many GPUs and persistence mode off). */
  initTimeoutMs?: number;
  /**
   * Call NVML synchronously on this thread instead of on the libuv pool: for the agent's NVML
   * threads (thread/nvml-worker.ts), which own the blocking and are watched from outside.
   */
  synchronous?: boolean;
  /** Told before and after every native call (the NVML thread's watchdog slot); `before` may throw to refuse it. */
  guard?: NvmlCallGuard;
}

/** Hooks around every native call. */
export interface NvmlCallGuard {
  /** `device` is the call's nvmlDevice_t when its first argument is one. */
  before(fn: string, device: bigint | null): void;
  after(fn: string): void;
}

/** Per-call options. */
export interface NvmlCallOptions {
  signal?: AbortSignal;
  /** Overrides the binding's call deadline. */
  timeoutMs?: number;
}

/** Opaque nvmlDevice_t (a pointer, which koffi 3 represents as a BigInt). */
export type NvmlDeviceHandle = bigint;
/** Opaque nvmlEventSet_t. */
export type NvmlEventSetHandle = bigint;

/** nvmlPciInfo_t. */
export interface NvmlPciInfo {
  busId: string;
  busIdLegacy: string;
  domain: number;
  bus: number;
  device: number;
  pciDeviceId: number;
  pciSubSystemId: number;
}

/** Memory in bytes; `reserved` only from nvmlDeviceGetMemoryInfo_v2. */
export interface NvmlMemoryInfo {
  total: number;
  free: number;
  used: number;
  reserved?: number;
}

/** nvmlDeviceGetRemappedRows outputs. */
export interface NvmlRemappedRows {
  corrected: number;
  uncorrected: number;
  pending: boolean;
  failure: boolean;
}

/** A running compute process. */
export interface NvmlProcessInfo {
  pid: number;
  usedGpuMemory?: number;
}

/** One field for nvmlDeviceGetFieldValues; `scopeId` is the link for NVLink fields. */
export interface NvmlFieldRequest {
  fieldId: number;
  scopeId?: number;
}

/** One field's answer: its own return code, and the value when that is SUCCESS. */
export interface NvmlFieldValue {
  fieldId: number;
  scopeId: number;
  code: number;
  value?: number;
}

/**
 * NVML_FI_* ids the agent asks for (nvml.h; NVIDIA's nvidia-ml-py carries the same numbers; the
 * device-info ids below checked against NVIDIA/go-nvml gen/nvml/nvml.h). The NVLink5 counters
 * take the link as scopeId; the recovery action arrived with R565.
 */
export const NvmlFieldId = {
  /** NVML_FI_DEV_NVLINK_CRC_DATA_ERROR_COUNT_L0 (L0-L5 are 39-44; scopeId unused). */
  NVLINK_CRC_DATA_ERROR_COUNT_L0: 39,
  /** NVML_FI_DEV_NVLINK_CRC_DATA_ERROR_COUNT_L6 (L6-L11 are 102-107). */
  NVLINK_CRC_DATA_ERROR_COUNT_L6: 102,
  /** NVML_FI_DEV_NVLINK_ECC_DATA_ERROR_COUNT_L0 (L0-L11 are 148-159). */
  NVLINK_ECC_DATA_ERROR_COUNT_L0: 148,
  /** NVML_FI_DEV_NVLINK_ERROR_DL_REPLAY / _RECOVERY / _CRC: the DL counters of link `scopeId` (not on Blackwell). */
  NVLINK_ERROR_DL_REPLAY: 161,
  NVLINK_ERROR_DL_RECOVERY: 162,
  NVLINK_ERROR_DL_CRC: 163,
  /** NVML_FI_DEV_NVLINK_GET_STATE: NVML_NVLINK_STATE_* of link `scopeId` (1 active, 0 inactive, 2 sleep). */
  NVLINK_GET_STATE: 165,
  NVLINK_RECOVERY_SUCCESSFUL_EVENTS: 213,
  NVLINK_RECOVERY_FAILED_EVENTS: 214,
  NVLINK_EFFECTIVE_ERRORS: 219,
  NVLINK_SYMBOL_ERRORS: 221,
  GPU_RECOVERY_ACTION: 230,
  /**
   * NVML_FI_DEV_PERF_POLICY_POWER: time clocks were held down by the power policy since driver load.
   * nvml.h gives no unit for the field; read as ns, the unit of nvmlViolationTime_t.violationTime
   * (nvmlDeviceGetViolationStatus), which counts the same policy.
   */
  PERF_POLICY_POWER: 74,
  /** NVML_FI_DEV_PERF_POLICY_THERMAL: the same for the thermal policy. */
  PERF_POLICY_THERMAL: 75,
  /** NVML_FI_DEV_MEMORY_TEMP: memory (HBM) temperature, °C. */
  MEMORY_TEMP: 82,
  /** NVML_FI_DEV_TOTAL_ENERGY_CONSUMPTION: mJ since the driver was last reloaded. */
  TOTAL_ENERGY_CONSUMPTION: 83,
  /** NVML_FI_DEV_PCIE_REPLAY_ROLLOVER_COUNTER: times the replay counter rolled over (link retrained). */
  PCIE_REPLAY_ROLLOVER_COUNTER: 95,
  /** NVML_FI_DEV_PCIE_COUNT_CORRECTABLE_ERRORS (R535+). */
  PCIE_COUNT_CORRECTABLE_ERRORS: 173,
} as const;

/** nvmlEventData_t. */
export interface NvmlEventData {
  device: NvmlDeviceHandle;
  eventType: number;
  eventData: number;
}

/**
 * nvmlGpuFabricInfo_t (v1, nvmlDeviceGetGpuFabricInfo) or nvmlGpuFabricInfo_v2/_v3_t
 * (nvmlDeviceGetGpuFabricInfoV): the GPU's registration with the NVSwitch fabric manager.
 */
export interface NvmlGpuFabricInfo {
  /** Struct version the driver answered (1: the unversioned call). */
  version: 1 | 2 | 3;
  /** nvmlGpuFabricState_t: NOT_SUPPORTED 0, NOT_STARTED 1, IN_PROGRESS 2, COMPLETED 3. */
  state: number;
  /** nvmlReturn_t of the registration; meaningful only once `state` is COMPLETED. */
  status: number;
  cliqueId: number;
  /** The 16-byte cluster UUID as 32 hex digits. */
  clusterUuid: string;
  /** v2+: NVML_GPU_FABRIC_HEALTH_MASK_* fields. */
  healthMask?: number;
  /** v3: NVML_GPU_FABRIC_HEALTH_SUMMARY_* (NOT_SUPPORTED 0, HEALTHY 1, UNHEALTHY 2, LIMITED_CAPACITY 3). */
  healthSummary?: number;
}

/** nvmlBAR1Memory_t, bytes. */
export interface NvmlBar1Memory {
  total: number;
  free: number;
  used: number;
}

/** nvmlInforomObject_t values (nvml.h: OEM 0, ECC 1, POWER 2; DEN 3 is newer and not read). */
export const InforomObject = { OEM: 0, ECC: 1, POWER: 2 } as const;
/** An InfoROM object selector. */
export type InforomObject = (typeof InforomObject)[keyof typeof InforomObject];

/** The library file NVML ships as. */
export const DEFAULT_NVML_LIBRARY = 'libnvidia-ml.so.1';
const DEFAULT_CALL_TIMEOUT_MS = 2_000;
const DEFAULT_INIT_TIMEOUT_MS = 60_000;
/** NVML_VALUE_NOT_AVAILABLE for unsigned long long results. */
const U64_NOT_AVAILABLE = 0xffff_ffff_ffff_ffffn;
/** The same sentinel for unsigned int results (also "no MIG instance"). */
const U32_NOT_AVAILABLE = 0xffff_ffff;
const MEMORY_V2_VERSION = 0x0200_0028;
/** NVML_STRUCT_VERSION(Temperature, 1): the struct's 12 bytes | 1 << 24. */
const TEMPERATURE_V1_VERSION = 0x0100_000c;
const TEMPERATURE_SENSOR_GPU = 0;
const NAME_BUFFER = 96;
const UUID_BUFFER = 96;
const SERIAL_BUFFER = 30;
const VERSION_BUFFER = 80;
/** The synchronous binding's text output slot: the longest string it reads (names and UUIDs, 96 bytes). */
const SCRATCH_TEXT_BYTES = 96;
/** Byte a process buffer is filled with before the call: how far the driver wrote tells its record size. */
export const PROCESS_BUFFER_FILL = 0xa5;
/** Record sizes drivers write: v1 16, _v2/_v3 24, _v3 of 535.43-535.86 32 (one report: 16 from _v3). */
const PROCESS_RECORD_SIZES = [16, 24, 32] as const;
/** Buffer room per record: twice the largest known size, so no driver's records overflow it. */
const PROCESS_SLOT_BYTES = 64;
const PROCESS_PID_OFFSET = 0;
const PROCESS_MEMORY_OFFSET = 8;
/** Linux's highest possible pid (PID_MAX_LIMIT, 2^22): anything above is not a pid. */
const PID_MAX_LIMIT = 4_194_304;
/** nvmlFieldValue_t: fieldId @0, scopeId @4, timestamp @8, latencyUsec @16, valueType @24, nvmlReturn @28, value @32. */
const FIELD_VALUE_SIZE = 40;
const FIELD_SCOPE_OFFSET = 4;
const FIELD_TYPE_OFFSET = 24;
const FIELD_RETURN_OFFSET = 28;
const FIELD_VALUE_OFFSET = 32;
/** Fields per nvmlDeviceGetFieldValues call. */
const FIELDS_PER_CALL = 64;
/**
 * An unsigned long long as a number, without a BigInt per value (hundreds per snapshot): one
 * rounding, as Number(bigint) gives. All ones is "not available".
 */
function readU64(buffer: Buffer, offset: number): number | undefined {
  const low = buffer.readUInt32LE(offset);
  const high = buffer.readUInt32LE(offset + 4);
  if (low === 0xffff_ffff && high === 0xffff_ffff) return undefined;
  return high * 2 ** 32 + low;
}

/** nvmlValueType_t → how to read the value union. */
const FIELD_VALUE_READERS: Record<number, (buffer: Buffer, offset: number) => number | undefined> = {
  0: (b, o) => b.readDoubleLE(o),
  1: (b, o) => normalizeU32(b.readUInt32LE(o)),
  2: (b, o) => readU64(b, o),
  3: (b, o) => readU64(b, o),
  4: (b, o) => b.readInt32LE(o + 4) * 2 ** 32 + b.readUInt32LE(o),
  5: (b, o) => b.readInt32LE(o),
  6: (b, o) => b.readUInt16LE(o),
};
/** One nvmlFieldValue_t answer at `base`: its code, and its value when the code is SUCCESS. */
function decodeFieldValue(buffer: Buffer, base: number, request: NvmlFieldRequest): NvmlFieldValue {
  const code = buffer.readInt32LE(base + FIELD_RETURN_OFFSET);
  const answer: NvmlFieldValue = { fieldId: request.fieldId, scopeId: request.scopeId ?? 0, code };
  if (code !== NvmlReturn.SUCCESS) return answer;
  const value = FIELD_VALUE_READERS[buffer.readUInt32LE(base + FIELD_TYPE_OFFSET)]?.(buffer, base + FIELD_VALUE_OFFSET);
  if (value !== undefined) answer.value = value;
  return answer;
}

/** Processes can appear between the sizing call and the fetch: retry a few times. */
const PROCESS_FETCH_ATTEMPTS = 3;
const PROCESS_HEADROOM = 8;
/** NVML_DEVICE_VBIOS_VERSION_BUFFER_SIZE and NVML_DEVICE_INFOROM_VERSION_BUFFER_SIZE (nvml.h). */
const VBIOS_BUFFER = 32;
const INFOROM_BUFFER = 16;
/**
 * nvmlGpuFabricInfo layouts (nvml.h, x86-64): v1 (28 bytes) clusterUuid[16] @0, status @16,
 * cliqueId @20, state (unsigned char) @24; v2 (36) adds `version` @0, shifting the rest by 4,
 * and healthMask @32; v3 (40) adds healthSummary (unsigned char) @36.
 * NVML_STRUCT_VERSION(GpuFabricInfo, n) = sizeof | n << 24: v2 0x02000024, v3 0x03000028.
 */
const FABRIC_V1_BYTES = 28;
const FABRIC_V3_BYTES = 40;
const FABRIC_INFO_V2_VERSION = 0x0200_0024;
const FABRIC_INFO_V3_VERSION = 0x0300_0028;
const FABRIC_V_VERSIONS: readonly number[] = [FABRIC_INFO_V3_VERSION, FABRIC_INFO_V2_VERSION];
const FABRIC_UUID_BYTES = 16;
/** nvmlBAR1Memory_t: bar1Total @0, bar1Free @8, bar1Used @16 (u64). */
const BAR1_BYTES = 24;

/** Converts an unsigned long long from koffi (Number ≤ 2^53, else BigInt); all-ones → undefined. Larger values lose precision. */
export function normalizeU64(value: unknown): number | undefined {
  if (typeof value === 'bigint') return value === U64_NOT_AVAILABLE ? undefined : Number(value);
  if (typeof value === 'number') return value;
  return undefined;
}

/** Process records decoded at the record size that explains what the driver wrote. */
export interface DecodedProcessRecords {
  /** Bytes per record (0 for no records). */
  stride: number;
  processes: NvmlProcessInfo[];
}

/**
 * Decodes `count` process records from a buffer that was filled with {@link PROCESS_BUFFER_FILL}
 * before the call. The stride is the smallest known record size that explains how far the driver
 * wrote (its last record ends within it, and starts after the one before) and gives a plausible
 * pid for every record; undefined when none does, rather than report wrong pids.
 */
export function decodeProcessRecords(buffer: Buffer, count: number): DecodedProcessRecords | undefined {
  if (count === 0) return { stride: 0, processes: [] };
  let written = buffer.length;
  while (written > 0 && buffer[written - 1] === PROCESS_BUFFER_FILL) written--;
  for (const stride of PROCESS_RECORD_SIZES) {
    if (count * stride > buffer.length || written > count * stride || written <= (count - 1) * stride) continue;
    const pids = Array.from({ length: count }, (_, i) => buffer.readUInt32LE(i * stride + PROCESS_PID_OFFSET));
    if (!pids.every((pid) => pid >= 1 && pid <= PID_MAX_LIMIT)) continue;
    const processes = pids.map((pid, i) => {
      const used = normalizeU64(buffer.readBigUInt64LE(i * stride + PROCESS_MEMORY_OFFSET));
      return used === undefined ? { pid } : { pid, usedGpuMemory: used };
    });
    return { stride, processes };
  }
  return undefined;
}

/** Converts an unsigned int result; the all-ones sentinel → undefined. */
export function normalizeU32(value: unknown): number | undefined {
  return typeof value === 'number' && value !== U32_NOT_AVAILABLE ? value : undefined;
}

// ---------------------------------------------------------------- koffi types (process-global)

interface NvmlTypes {
  pciInfo: Koffi.TypeObject;
  memory: Koffi.TypeObject;
  memoryV2: Koffi.TypeObject;
  utilization: Koffi.TypeObject;
  eventData: Koffi.TypeObject;
  temperatureV1: Koffi.TypeObject;
}

const EXPECTED_SIZES: Record<keyof NvmlTypes, number> = {
  pciInfo: 68,
  memory: 24,
  memoryV2: 40,
  utilization: 8,
  eventData: 32,
  temperatureV1: 12,
};
const TYPES_KEY = Symbol.for('gpudiag.nvml.koffi-types');

/**
 * koffi keeps named types in the native module, shared by every module registry in the
 * process (jest gives each test file a fresh registry and globalThis), so reuse a type that
 * already exists instead of declaring it again ("Duplicate type name").
 */
function namedType(name: string, declare: () => Koffi.TypeObject): Koffi.TypeObject {
  try {
    return koffi().type(name);
  } catch {
    return declare();
  }
}

function nvmlTypes(): NvmlTypes {
  const cache = globalThis as { [TYPES_KEY]?: NvmlTypes };
  const cached = cache[TYPES_KEY];
  if (cached !== undefined) return cached;
  namedType('nvmlDevice_t', () => koffi().pointer('nvmlDevice_t', koffi().opaque('nvmlDevice_st')));
  namedType('nvmlEventSet_t', () => koffi().pointer('nvmlEventSet_t', koffi().opaque('nvmlEventSet_st')));
  const types: NvmlTypes = {
    pciInfo: namedType('nvmlPciInfo_t', () =>
      koffi().struct('nvmlPciInfo_t', {
        busIdLegacy: koffi().array('char', 16, 'String'),
        domain: 'uint',
        bus: 'uint',
        device: 'uint',
        pciDeviceId: 'uint',
        pciSubSystemId: 'uint',
        busId: koffi().array('char', 32, 'String'),
      }),
    ),
    memory: namedType('nvmlMemory_t', () => koffi().struct('nvmlMemory_t', { total: 'uint64', free: 'uint64', used: 'uint64' })),
    memoryV2: namedType('nvmlMemory_v2_t', () =>
      koffi().struct('nvmlMemory_v2_t', { version: 'uint', total: 'uint64', reserved: 'uint64', free: 'uint64', used: 'uint64' }),
    ),
    utilization: namedType('nvmlUtilization_t', () => koffi().struct('nvmlUtilization_t', { gpu: 'uint', memory: 'uint' })),
    temperatureV1: namedType('nvmlTemperature_v1_t', () =>
      koffi().struct('nvmlTemperature_v1_t', { version: 'uint', sensorType: 'int', temperature: 'int' }),
    ),
    eventData: namedType('nvmlEventData_t', () =>
      koffi().struct('nvmlEventData_t', {
        device: 'nvmlDevice_t',
        eventType: 'uint64',
        eventData: 'uint64',
        gpuInstanceId: 'uint',
        computeInstanceId: 'uint',
      }),
    ),
  };
  for (const [key, expected] of Object.entries(EXPECTED_SIZES)) {
    const actual = koffi().sizeof(types[key as keyof NvmlTypes]);
    if (actual !== expected) throw new Error(`NVML struct ${key} is ${actual} bytes, expected ${expected}: ABI mismatch`);
  }
  cache[TYPES_KEY] = types;
  return types;
}

// ---------------------------------------------------------------- prototypes

const REQUIRED_PROTOTYPES = {
  nvmlInit_v2: 'int nvmlInit_v2(void)',
  nvmlShutdown: 'int nvmlShutdown(void)',
  nvmlErrorString: 'const char *nvmlErrorString(int result)',
} as const;

const OPTIONAL_PROTOTYPES = {
  nvmlSystemGetDriverVersion: 'int nvmlSystemGetDriverVersion(char *version, unsigned int length)',
  nvmlSystemGetNVMLVersion: 'int nvmlSystemGetNVMLVersion(char *version, unsigned int length)',
  nvmlSystemGetCudaDriverVersion: 'int nvmlSystemGetCudaDriverVersion(_Out_ int *version)',
  nvmlSystemGetCudaDriverVersion_v2: 'int nvmlSystemGetCudaDriverVersion_v2(_Out_ int *version)',
  nvmlDeviceGetCount_v2: 'int nvmlDeviceGetCount_v2(_Out_ unsigned int *count)',
  nvmlDeviceGetHandleByIndex_v2: 'int nvmlDeviceGetHandleByIndex_v2(unsigned int index, _Out_ nvmlDevice_t *device)',
  nvmlDeviceGetName: 'int nvmlDeviceGetName(nvmlDevice_t device, char *name, unsigned int length)',
  nvmlDeviceGetUUID: 'int nvmlDeviceGetUUID(nvmlDevice_t device, char *uuid, unsigned int length)',
  nvmlDeviceGetSerial: 'int nvmlDeviceGetSerial(nvmlDevice_t device, char *serial, unsigned int length)',
  nvmlDeviceGetPciInfo_v3: 'int nvmlDeviceGetPciInfo_v3(nvmlDevice_t device, _Out_ nvmlPciInfo_t *pci)',
  nvmlDeviceGetMemoryInfo: 'int nvmlDeviceGetMemoryInfo(nvmlDevice_t device, _Out_ nvmlMemory_t *memory)',
  nvmlDeviceGetMemoryInfo_v2: 'int nvmlDeviceGetMemoryInfo_v2(nvmlDevice_t device, _Inout_ nvmlMemory_v2_t *memory)',
  nvmlDeviceGetTemperature: 'int nvmlDeviceGetTemperature(nvmlDevice_t device, int sensor, _Out_ unsigned int *temp)',
  nvmlDeviceGetTemperatureV: 'int nvmlDeviceGetTemperatureV(nvmlDevice_t device, _Inout_ nvmlTemperature_v1_t *temperature)',
  nvmlDeviceGetTemperatureThreshold: 'int nvmlDeviceGetTemperatureThreshold(nvmlDevice_t device, int type, _Out_ unsigned int *temp)',
  nvmlDeviceGetPowerUsage: 'int nvmlDeviceGetPowerUsage(nvmlDevice_t device, _Out_ unsigned int *milliwatts)',
  nvmlDeviceGetEnforcedPowerLimit: 'int nvmlDeviceGetEnforcedPowerLimit(nvmlDevice_t device, _Out_ unsigned int *milliwatts)',
  nvmlDeviceGetUtilizationRates: 'int nvmlDeviceGetUtilizationRates(nvmlDevice_t device, _Out_ nvmlUtilization_t *utilization)',
  nvmlDeviceGetClockInfo: 'int nvmlDeviceGetClockInfo(nvmlDevice_t device, int type, _Out_ unsigned int *mhz)',
  nvmlDeviceGetMaxClockInfo: 'int nvmlDeviceGetMaxClockInfo(nvmlDevice_t device, int type, _Out_ unsigned int *mhz)',
  nvmlDeviceGetCurrentClocksEventReasons:
    'int nvmlDeviceGetCurrentClocksEventReasons(nvmlDevice_t device, _Out_ unsigned long long *reasons)',
  nvmlDeviceGetCurrentClocksThrottleReasons:
    'int nvmlDeviceGetCurrentClocksThrottleReasons(nvmlDevice_t device, _Out_ unsigned long long *reasons)',
  nvmlDeviceGetEccMode: 'int nvmlDeviceGetEccMode(nvmlDevice_t device, _Out_ int *current, _Out_ int *pending)',
  nvmlDeviceGetTotalEccErrors:
    'int nvmlDeviceGetTotalEccErrors(nvmlDevice_t device, int errorType, int counterType, _Out_ unsigned long long *count)',
  nvmlDeviceGetMemoryErrorCounter:
    'int nvmlDeviceGetMemoryErrorCounter(nvmlDevice_t device, int errorType, int counterType, int location, _Out_ unsigned long ' +
    'long *count)',
  nvmlDeviceGetRetiredPages: 'int nvmlDeviceGetRetiredPages(nvmlDevice_t device, int cause, _Inout_ unsigned int *count, void *addresses)',
  nvmlDeviceGetRetiredPagesPendingStatus: 'int nvmlDeviceGetRetiredPagesPendingStatus(nvmlDevice_t device, _Out_ int *pending)',
  nvmlDeviceGetRemappedRows:
    'int nvmlDeviceGetRemappedRows(nvmlDevice_t device, _Out_ unsigned int *corr, _Out_ unsigned int *unc, _Out_ unsigned int ' +
    '*pending, _Out_ unsigned int *failure)',
  nvmlDeviceGetNvLinkState: 'int nvmlDeviceGetNvLinkState(nvmlDevice_t device, unsigned int link, _Out_ int *active)',
  nvmlDeviceGetNvLinkErrorCounter:
    'int nvmlDeviceGetNvLinkErrorCounter(nvmlDevice_t device, unsigned int link, int counter, _Out_ unsigned long long *value)',
  nvmlDeviceGetCurrPcieLinkGeneration: 'int nvmlDeviceGetCurrPcieLinkGeneration(nvmlDevice_t device, _Out_ unsigned int *gen)',
  nvmlDeviceGetCurrPcieLinkWidth: 'int nvmlDeviceGetCurrPcieLinkWidth(nvmlDevice_t device, _Out_ unsigned int *width)',
  nvmlDeviceGetMaxPcieLinkGeneration: 'int nvmlDeviceGetMaxPcieLinkGeneration(nvmlDevice_t device, _Out_ unsigned int *gen)',
  nvmlDeviceGetMaxPcieLinkWidth: 'int nvmlDeviceGetMaxPcieLinkWidth(nvmlDevice_t device, _Out_ unsigned int *width)',
  nvmlDeviceGetPcieReplayCounter: 'int nvmlDeviceGetPcieReplayCounter(nvmlDevice_t device, _Out_ unsigned int *value)',
  nvmlDeviceGetPcieThroughput: 'int nvmlDeviceGetPcieThroughput(nvmlDevice_t device, int counter, _Out_ unsigned int *kbps)',
  nvmlDeviceGetComputeRunningProcesses_v3:
    'int nvmlDeviceGetComputeRunningProcesses_v3(nvmlDevice_t device, _Inout_ unsigned int *count, void *infos)',
  nvmlDeviceGetComputeRunningProcesses_v2:
    'int nvmlDeviceGetComputeRunningProcesses_v2(nvmlDevice_t device, _Inout_ unsigned int *count, void *infos)',
  nvmlDeviceGetComputeRunningProcesses:
    'int nvmlDeviceGetComputeRunningProcesses(nvmlDevice_t device, _Inout_ unsigned int *count, void *infos)',
  nvmlDeviceGetFieldValues: 'int nvmlDeviceGetFieldValues(nvmlDevice_t device, int count, _Inout_ void *values)',
  nvmlDeviceGetMigMode: 'int nvmlDeviceGetMigMode(nvmlDevice_t device, _Out_ unsigned int *current, _Out_ unsigned int *pending)',
  nvmlDeviceGetMaxMigDeviceCount: 'int nvmlDeviceGetMaxMigDeviceCount(nvmlDevice_t device, _Out_ unsigned int *count)',
  nvmlDeviceGetMigDeviceHandleByIndex:
    'int nvmlDeviceGetMigDeviceHandleByIndex(nvmlDevice_t device, unsigned int index, _Out_ nvmlDevice_t *migDevice)',
  nvmlDeviceGetPerformanceState: 'int nvmlDeviceGetPerformanceState(nvmlDevice_t device, _Out_ int *pstate)',
  nvmlDeviceGetFanSpeed: 'int nvmlDeviceGetFanSpeed(nvmlDevice_t device, _Out_ unsigned int *speed)',
  nvmlDeviceGetPersistenceMode: 'int nvmlDeviceGetPersistenceMode(nvmlDevice_t device, _Out_ int *mode)',
  nvmlDeviceGetComputeMode: 'int nvmlDeviceGetComputeMode(nvmlDevice_t device, _Out_ int *mode)',
  nvmlEventSetCreate: 'int nvmlEventSetCreate(_Out_ nvmlEventSet_t *set)',
  nvmlDeviceGetSupportedEventTypes: 'int nvmlDeviceGetSupportedEventTypes(nvmlDevice_t device, _Out_ unsigned long long *types)',
  nvmlDeviceRegisterEvents: 'int nvmlDeviceRegisterEvents(nvmlDevice_t device, unsigned long long types, nvmlEventSet_t set)',
  nvmlEventSetWait_v2: 'int nvmlEventSetWait_v2(nvmlEventSet_t set, _Out_ nvmlEventData_t *data, unsigned int timeoutMs)',
  nvmlEventSetFree: 'int nvmlEventSetFree(nvmlEventSet_t set)',
  // Inventory and limits (nvml.h, API 13; the fabric calls exist from R525 / R550 on).
  nvmlDeviceGetGpuFabricInfo: 'int nvmlDeviceGetGpuFabricInfo(nvmlDevice_t device, _Inout_ void *info)',
  nvmlDeviceGetGpuFabricInfoV: 'int nvmlDeviceGetGpuFabricInfoV(nvmlDevice_t device, _Inout_ void *info)',
  nvmlDeviceGetVbiosVersion: 'int nvmlDeviceGetVbiosVersion(nvmlDevice_t device, char *version, unsigned int length)',
  nvmlDeviceGetInforomImageVersion: 'int nvmlDeviceGetInforomImageVersion(nvmlDevice_t device, char *version, unsigned int length)',
  nvmlDeviceGetInforomVersion: 'int nvmlDeviceGetInforomVersion(nvmlDevice_t device, int object, char *version, unsigned int length)',
  nvmlDeviceValidateInforom: 'int nvmlDeviceValidateInforom(nvmlDevice_t device)',
  nvmlDeviceGetPowerManagementLimitConstraints:
    'int nvmlDeviceGetPowerManagementLimitConstraints(nvmlDevice_t device, _Out_ unsigned int *minLimit, _Out_ unsigned int *maxLimit)',
  nvmlDeviceGetPowerManagementDefaultLimit:
    'int nvmlDeviceGetPowerManagementDefaultLimit(nvmlDevice_t device, _Out_ unsigned int *defaultLimit)',
  nvmlDeviceGetBAR1MemoryInfo: 'int nvmlDeviceGetBAR1MemoryInfo(nvmlDevice_t device, _Inout_ void *bar1Memory)',
} as const;

type RequiredFn = keyof typeof REQUIRED_PROTOTYPES;
type OptionalFn = keyof typeof OPTIONAL_PROTOTYPES;

/** `_v3` is absent before R510 and in 535.98: fall back to `_v2`, then the unversioned call, as go-nvml does. */
const PROCESS_FUNCTIONS: readonly OptionalFn[] = [
  'nvmlDeviceGetComputeRunningProcesses_v3',
  'nvmlDeviceGetComputeRunningProcesses_v2',
  'nvmlDeviceGetComputeRunningProcesses',
];
/** No return code accepted besides SUCCESS. */
const NO_CODES: readonly number[] = [];
/** What nvmlDeviceGetNvLinkState answers for a link index the GPU does not have. */
const NVLINK_ABSENT_CODES: readonly number[] = [NvmlReturn.INVALID_ARGUMENT, NvmlReturn.NOT_SUPPORTED];
/** NVML's own CUDA version call first; `_v2` needs libcuda.so.1 (facts-nvml.md, "Real drivers differ"). */
const CUDA_VERSION_FUNCTIONS: readonly OptionalFn[] = ['nvmlSystemGetCudaDriverVersion', 'nvmlSystemGetCudaDriverVersion_v2'];

/** Every NVML function the binding may call (the NVML threads name calls by index in it). */
export const NVML_FUNCTION_NAMES: readonly string[] = Object.freeze([
  ...Object.keys(REQUIRED_PROTOTYPES),
  ...Object.keys(OPTIONAL_PROTOTYPES),
]);
/** An NVML function the binding knows. */
export type NvmlFunctionName = RequiredFn | OptionalFn;

/** A declared native function (koffi does not export this type by name). */
type KoffiFunction = ReturnType<Koffi.LibraryHandle['func']>;

interface LoadedLibrary {
  path: string;
  required: Record<RequiredFn, KoffiFunction>;
  optional: Partial<Record<OptionalFn, KoffiFunction>>;
}

function loadLibrary(paths: readonly string[]): LoadedLibrary {
  nvmlTypes();
  const failures: string[] = [];
  for (const path of paths) {
    let lib: Koffi.LibraryHandle;
    try {
      lib = koffi().load(path);
    } catch (err) {
      failures.push(`${path}: ${err instanceof Error ? err.message : String(err)}`);
      continue;
    }
    try {
      const required = Object.fromEntries(Object.entries(REQUIRED_PROTOTYPES).map(([name, proto]) => [name, lib.func(proto)])) as Record<
        RequiredFn,
        KoffiFunction
      >;
      const optional: Partial<Record<OptionalFn, KoffiFunction>> = {};
      for (const [name, proto] of Object.entries(OPTIONAL_PROTOTYPES) as Array<[OptionalFn, string]>) {
        // older drivers lack newer symbols: probe each one and treat absence as FUNCTION_NOT_FOUND
        try {
          optional[name] = lib.func(proto);
        } catch {
          delete optional[name];
        }
      }
      return { path, required, optional };
    } catch (err) {
      failures.push(`${path}: not an NVML library (${err instanceof Error ? err.message : String(err)})`);
    }
  }
  throw new NvmlLibraryError(`Failed to load shared library NVML: ${failures.join('; ')}`, paths);
}

/** Settles with the native result of an async koffi call. */
function nativeAsync(fn: KoffiFunction, args: readonly unknown[]): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    fn.async(...args, (err: unknown, rc: unknown) => {
      if (err !== null && err !== undefined) reject(err instanceof Error ? err : new Error(String(err)));
      else resolve(typeof rc === 'number' ? rc : NvmlReturn.UNKNOWN);
    });
  });
}

function decodeCString(buffer: Buffer): string {
  const end = buffer.indexOf(0);
  return buffer.toString('utf8', 0, end < 0 ? buffer.length : end);
}

/** Decodes an nvmlGpuFabricInfo struct of `version` (layouts at FABRIC_V1_BYTES). */
function decodeFabricInfo(buffer: Buffer, version: 1 | 2 | 3): NvmlGpuFabricInfo {
  const base = version === 1 ? 0 : 4;
  const info: NvmlGpuFabricInfo = {
    version,
    clusterUuid: buffer.toString('hex', base, base + FABRIC_UUID_BYTES),
    status: buffer.readInt32LE(base + 16),
    cliqueId: buffer.readUInt32LE(base + 20),
    state: buffer.readUInt8(base + 24),
  };
  if (version >= 2) info.healthMask = buffer.readUInt32LE(32);
  if (version === 3) info.healthSummary = buffer.readUInt8(36);
  return info;
}

/** A handle on NVML for one process: load, init once, call, shut down. */
export class NvmlBinding {
  private readonly paths: readonly string[];
  private readonly callTimeoutMs: number;
  private readonly initTimeoutMs: number;
  private readonly synchronous: boolean;
  private readonly guard: NvmlCallGuard | undefined;
  private library: LoadedLibrary | undefined;
  private initPromise: Promise<void> | undefined;
  private shutdownPromise: Promise<void> | undefined;
  private ready = false;
  private closing = false;
  /** nvmlInit_v2 successes not yet balanced by nvmlShutdown (an abandoned init may still succeed). */
  private nativeInits = 0;
  private readonly inflight = new Set<Promise<number>>();
  private readonly errorStrings = new Map<number, string>();
  /**
   * One output slot each for a synchronous binding's scalar reads: output() reads it right after
   * the call returns, before any other call can run, so hundreds of reads share it.
   */
  private readonly scratchU32 = new Uint32Array(1);
  private readonly scratchU64 = new BigUint64Array(1);
  private readonly scratchText = Buffer.alloc(SCRATCH_TEXT_BYTES);
  private readonly scratchFields = Buffer.alloc(FIELDS_PER_CALL * FIELD_VALUE_SIZE);

  constructor(options: NvmlBindingOptions = {}) {
    const candidates = [options.libraryPath, options.fallbackToSystemLibrary === false ? undefined : DEFAULT_NVML_LIBRARY];
    this.paths = [...new Set(candidates.filter((p): p is string => p !== undefined && p !== ''))];
    this.callTimeoutMs = options.callTimeoutMs ?? DEFAULT_CALL_TIMEOUT_MS;
    this.initTimeoutMs = options.initTimeoutMs ?? DEFAULT_INIT_TIMEOUT_MS;
    this.synchronous = options.synchronous === true;
    this.guard = options.guard;
  }

  /** True once nvmlInit_v2 succeeded and until shutdown starts. */
  get initialized(): boolean {
    return this.ready && !this.closing;
  }

  /** Path of the loaded library (after a successful load). */
  get libraryPath(): string | undefined {
    return this.library?.path;
  }

  /** Number of native calls still running (including ones whose deadline expired). */
  get inflightCalls(): number {
    return this.inflight.size;
  }

  /** Whether the loaded library exports `fn` (false before load). */
  hasFunction(fn: NvmlFunctionName): boolean {
    const lib = this.library;
    if (lib === undefined) return false;
    return fn in REQUIRED_PROTOTYPES || lib.optional[fn as OptionalFn] !== undefined;
  }

  /**
   * Loads the library and runs nvmlInit_v2 once; concurrent callers share that call. Rejects
   * with {@link NvmlLibraryError} or {@link NvmlError}; a later call retries after a failure.
   */
  init(options: { signal?: AbortSignal } = {}): Promise<void> {
    if (this.ready && !this.closing) return Promise.resolve();
    if (this.closing)
      return withSignal(
        this.shutdown().then(() => this.init(options)),
        options.signal,
      );
    this.initPromise ??= this.runInit().then(
      () => undefined,
      (err: unknown) => {
        this.initPromise = undefined;
        throw err;
      },
    );
    return withSignal(this.initPromise, options.signal);
  }

  private async runInit(): Promise<void> {
    if (this.shutdownPromise !== undefined) await this.shutdownPromise;
    this.library ??= loadLibrary(this.paths);
    const native = this.track(this.native('nvmlInit_v2', this.library.required.nvmlInit_v2, []));
    // count successes even if we stopped waiting, so shutdown can balance them
    native.then(
      (rc) => {
        if (rc === NvmlReturn.SUCCESS) this.nativeInits++;
      },
      () => undefined,
    );
    const rc = await withDeadline(native, 'nvmlInit_v2', this.initTimeoutMs, undefined);
    if (rc !== NvmlReturn.SUCCESS) throw new NvmlError(rc, 'nvmlInit_v2', this.errorString(rc));
    this.ready = true;
  }

  /** Waits for in-flight calls, then balances every successful nvmlInit_v2 with nvmlShutdown. */
  shutdown(): Promise<void> {
    this.shutdownPromise ??= this.runShutdown().finally(() => {
      this.shutdownPromise = undefined;
    });
    return this.shutdownPromise;
  }

  private async runShutdown(): Promise<void> {
    this.closing = true;
    try {
      if (this.initPromise !== undefined) await Promise.allSettled([this.initPromise]);
      while (this.inflight.size > 0) await Promise.allSettled([...this.inflight]);
      const lib = this.library;
      while (lib !== undefined && this.nativeInits > 0) {
        this.nativeInits--;
        const rc = await this.native('nvmlShutdown', lib.required.nvmlShutdown, []);
        if (rc !== NvmlReturn.SUCCESS && rc !== NvmlReturn.UNINITIALIZED) {
          throw new NvmlError(rc, 'nvmlShutdown', this.errorString(rc));
        }
      }
    } finally {
      this.ready = false;
      this.initPromise = undefined;
      this.closing = false;
    }
  }

  /** nvmlErrorString for a return code (cached; a pure lookup, safe to call synchronously). */
  errorString(code: number): string {
    const cached = this.errorStrings.get(code);
    if (cached !== undefined) return cached;
    const lib = this.library;
    const text = lib === undefined ? nvmlReturnName(code) : String(lib.required.nvmlErrorString(code) ?? nvmlReturnName(code));
    this.errorStrings.set(code, text);
    return text;
  }

  /** One native call: on the libuv pool, or right here when synchronous; the guard sees it either way. */
  private native(fn: string, native: KoffiFunction, args: readonly unknown[]): Promise<number> {
    const device = typeof args[0] === 'bigint' ? args[0] : null;
    this.guard?.before(fn, device);
    if (!this.synchronous) {
      const pending = nativeAsync(native, args);
      const guard = this.guard;
      if (guard === undefined) return pending;
      return pending.finally(() => guard.after(fn));
    }
    try {
      const rc: unknown = native(...args);
      const code = typeof rc === 'number' ? rc : NvmlReturn.UNKNOWN;
      // The event wait is the one call made in a loop: answering it a macrotask later lets the
      // thread take its messages (a 'close') between waits.
      if (fn === 'nvmlEventSetWait_v2') return new Promise((resolve) => setImmediate(() => resolve(code)));
      return Promise.resolve(code);
    } catch (err) {
      return Promise.reject(err instanceof Error ? err : new Error(String(err)));
    } finally {
      this.guard?.after(fn);
    }
  }

  private track(native: Promise<number>): Promise<number> {
    this.inflight.add(native);
    const forget = (): void => {
      this.inflight.delete(native);
    };
    native.then(forget, forget);
    return native;
  }

  /**
   * Runs one NVML function; the promise rejects with NvmlError unless the code is SUCCESS or in
   * `accept`. A synchronous binding answers with a settled promise: no await of its own per call.
   */
  private call(fn: OptionalFn, args: readonly unknown[], options: NvmlCallOptions, accept: readonly number[] = NO_CODES): Promise<number> {
    try {
      const native = this.nativeFor(fn, options);
      if (!this.synchronous) return this.callAsync(fn, native, args, options, accept);
      // A synchronous call has returned before anyone could wait for it (nothing to track); its
      // deadline is kept by the NVML thread's watchdog.
      const rc = this.nativeSync(fn, native, args);
      return typeof rc === 'number' ? Promise.resolve(this.accepted(fn, rc, accept)) : rc.then((code) => this.accepted(fn, code, accept));
    } catch (err) {
      return Promise.reject(err instanceof Error ? err : new Error(String(err)));
    }
  }

  private async callAsync(
    fn: OptionalFn,
    native: KoffiFunction,
    args: readonly unknown[],
    options: NvmlCallOptions,
    accept: readonly number[],
  ): Promise<number> {
    const rc = await withDeadline(this.track(this.native(fn, native, args)), fn, options.timeoutMs ?? this.callTimeoutMs, options.signal);
    return this.accepted(fn, rc, accept);
  }

  /** The native function to call, or why none can be called now. */
  private nativeFor(fn: OptionalFn, options: NvmlCallOptions): KoffiFunction {
    options.signal?.throwIfAborted();
    const lib = this.library;
    if (lib === undefined || !this.ready || this.closing) {
      throw new NvmlError(NvmlReturn.UNINITIALIZED, fn, this.closing ? 'NVML is shutting down' : 'NVML is not initialized');
    }
    const native = lib.optional[fn];
    if (native === undefined) throw new NvmlError(NvmlReturn.FUNCTION_NOT_FOUND, fn, 'symbol not exported by this driver');
    return native;
  }

  private accepted(fn: string, rc: number, accept: readonly number[]): number {
    if (rc !== NvmlReturn.SUCCESS && !accept.includes(rc)) throw new NvmlError(rc, fn, this.errorString(rc));
    return rc;
  }

  /** A synchronous call as {@link native} makes it, without a promise per call (hundreds per snapshot). */
  private nativeSync(fn: string, native: KoffiFunction, args: readonly unknown[]): number | Promise<number> {
    const device = typeof args[0] === 'bigint' ? args[0] : null;
    this.guard?.before(fn, device);
    let rc: unknown;
    try {
      rc = native(...args);
    } finally {
      this.guard?.after(fn);
    }
    const code = typeof rc === 'number' ? rc : NvmlReturn.UNKNOWN;
    // The event wait is the one call made in a loop: answering it a macrotask later lets the
    // thread take its messages (a 'close') between waits.
    if (fn === 'nvmlEventSetWait_v2') return new Promise((resolve) => setImmediate(() => resolve(code)));
    return code;
  }

  /**
   * Runs `attempt` with each function in turn until one does not fail with a `fallbackOn` code
   * (FUNCTION_NOT_FOUND covers a symbol the driver does not export); the last failure is thrown.
   */
  private async firstOf<T>(fns: readonly OptionalFn[], fallbackOn: readonly number[], attempt: (fn: OptionalFn) => Promise<T>): Promise<T> {
    let last: unknown = new NvmlError(NvmlReturn.FUNCTION_NOT_FOUND, fns.join(' / '), 'no such function to call');
    for (const fn of fns) {
      try {
        return await attempt(fn);
      } catch (err) {
        if (!(err instanceof NvmlError) || !fallbackOn.includes(err.code) || err instanceof NvmlTimeoutError) throw err;
        last = err;
      }
    }
    throw last;
  }

  /**
   * Runs `fn` and answers `value()` of what it wrote. A synchronous binding settles the promise
   * with the value itself (one promise per read instead of two: a snapshot makes hundreds).
   */
  private output<T>(fn: OptionalFn, args: readonly unknown[], options: NvmlCallOptions, value: () => T): Promise<T> {
    if (!this.synchronous) return this.call(fn, args, options).then(value);
    try {
      const rc = this.nativeSync(fn, this.nativeFor(fn, options), args);
      if (typeof rc !== 'number') {
        return rc.then((code) => {
          this.accepted(fn, code, NO_CODES);
          return value();
        });
      }
      this.accepted(fn, rc, NO_CODES);
      return Promise.resolve(value());
    } catch (err) {
      return Promise.reject(err instanceof Error ? err : new Error(String(err)));
    }
  }

  private getString(fn: OptionalFn, device: NvmlDeviceHandle | undefined, size: number, options: NvmlCallOptions): Promise<string> {
    let buffer: Buffer;
    if (this.synchronous && size <= this.scratchText.length) {
      buffer = this.scratchText.subarray(0, size);
      buffer.fill(0);
    } else buffer = Buffer.alloc(size);
    return this.output(fn, device === undefined ? [buffer, size] : [device, buffer, size], options, () => decodeCString(buffer));
  }

  /** One `unsigned int *` output (also `int *` ones, whose values are never negative). */
  private getUint(fn: OptionalFn, args: readonly unknown[], options: NvmlCallOptions): Promise<number> {
    const out = this.synchronous ? this.scratchU32 : new Uint32Array(1);
    return this.output(fn, [...args, out], options, () => out[0] ?? 0);
  }

  private getU64(fn: OptionalFn, args: readonly unknown[], options: NvmlCallOptions): Promise<number | undefined> {
    const out = this.synchronous ? this.scratchU64 : new BigUint64Array(1);
    return this.output(fn, [...args, out], options, () => normalizeU64(out[0]));
  }

  /** nvmlSystemGetDriverVersion, e.g. `550.54.15`. */
  systemGetDriverVersion(options: NvmlCallOptions = {}): Promise<string> {
    return this.getString('nvmlSystemGetDriverVersion', undefined, VERSION_BUFFER, options);
  }

  /** nvmlSystemGetNVMLVersion, e.g. `12.550.54.15`. */
  systemGetNvmlVersion(options: NvmlCallOptions = {}): Promise<string> {
    return this.getString('nvmlSystemGetNVMLVersion', undefined, VERSION_BUFFER, options);
  }

  /**
   * The CUDA version the driver supports as a number, e.g. 12040. The unversioned call is NVML's
   * own answer (what nvidia-smi prints); `_v2` asks libcuda.so.1, which a container with only the
   * `utility` capability lacks (LIBRARY_NOT_FOUND), so it is only the fallback.
   */
  systemGetCudaDriverVersion(options: NvmlCallOptions = {}): Promise<number> {
    return this.firstOf(CUDA_VERSION_FUNCTIONS, [NvmlReturn.FUNCTION_NOT_FOUND, NvmlReturn.NOT_SUPPORTED], (fn) =>
      this.getUint(fn, [], options),
    );
  }

  /** nvmlDeviceGetCount_v2. */
  deviceGetCount(options: NvmlCallOptions = {}): Promise<number> {
    return this.getUint('nvmlDeviceGetCount_v2', [], options);
  }

  /** nvmlDeviceGetHandleByIndex_v2. */
  async deviceGetHandleByIndex(index: number, options: NvmlCallOptions = {}): Promise<NvmlDeviceHandle> {
    const out: unknown[] = [null];
    await this.call('nvmlDeviceGetHandleByIndex_v2', [index, out], options);
    const handle = out[0];
    if (typeof handle !== 'bigint' || handle === 0n) {
      throw new NvmlError(NvmlReturn.UNKNOWN, 'nvmlDeviceGetHandleByIndex_v2', 'returned a null handle');
    }
    return handle;
  }

  /** nvmlDeviceGetName. */
  deviceGetName(device: NvmlDeviceHandle, options: NvmlCallOptions = {}): Promise<string> {
    return this.getString('nvmlDeviceGetName', device, NAME_BUFFER, options);
  }

  /** nvmlDeviceGetUUID, e.g. `GPU-…`. */
  deviceGetUuid(device: NvmlDeviceHandle, options: NvmlCallOptions = {}): Promise<string> {
    return this.getString('nvmlDeviceGetUUID', device, UUID_BUFFER, options);
  }

  /** nvmlDeviceGetSerial. */
  deviceGetSerial(device: NvmlDeviceHandle, options: NvmlCallOptions = {}): Promise<string> {
    return this.getString('nvmlDeviceGetSerial', device, SERIAL_BUFFER, options);
  }

  /** nvmlDeviceGetPciInfo_v3. */
  async deviceGetPciInfo(device: NvmlDeviceHandle, options: NvmlCallOptions = {}): Promise<NvmlPciInfo> {
    const out: Partial<NvmlPciInfo> = {};
    await this.call('nvmlDeviceGetPciInfo_v3', [device, out], options);
    return {
      busId: out.busId ?? '',
      busIdLegacy: out.busIdLegacy ?? '',
      domain: out.domain ?? 0,
      bus: out.bus ?? 0,
      device: out.device ?? 0,
      pciDeviceId: out.pciDeviceId ?? 0,
      pciSubSystemId: out.pciSubSystemId ?? 0,
    };
  }

  /** nvmlDeviceGetMemoryInfo_v2, falling back to the v1 call on drivers without it. */
  async deviceGetMemoryInfo(device: NvmlDeviceHandle, options: NvmlCallOptions = {}): Promise<NvmlMemoryInfo> {
    if (this.hasFunction('nvmlDeviceGetMemoryInfo_v2')) {
      const v2: Record<string, unknown> = { version: MEMORY_V2_VERSION, total: 0, reserved: 0, free: 0, used: 0 };
      const fallbackCodes = [NvmlReturn.NOT_SUPPORTED, NvmlReturn.FUNCTION_NOT_FOUND, NvmlReturn.ARGUMENT_VERSION_MISMATCH];
      const rc = await this.call('nvmlDeviceGetMemoryInfo_v2', [device, v2], options, fallbackCodes);
      if (rc === NvmlReturn.SUCCESS) {
        return {
          total: normalizeU64(v2['total']) ?? 0,
          free: normalizeU64(v2['free']) ?? 0,
          used: normalizeU64(v2['used']) ?? 0,
          reserved: normalizeU64(v2['reserved']) ?? 0,
        };
      }
    }
    const v1: Record<string, unknown> = {};
    await this.call('nvmlDeviceGetMemoryInfo', [device, v1], options);
    return { total: normalizeU64(v1['total']) ?? 0, free: normalizeU64(v1['free']) ?? 0, used: normalizeU64(v1['used']) ?? 0 };
  }

  /**
   * The GPU die temperature (°C) through nvmlDeviceGetTemperatureV (CUDA 12.8+), or the deprecated
   * nvmlDeviceGetTemperature where the driver lacks it or refuses the struct version.
   */
  async deviceGetTemperature(device: NvmlDeviceHandle, options: NvmlCallOptions = {}): Promise<number> {
    if (this.hasFunction('nvmlDeviceGetTemperatureV')) {
      const out: Record<string, unknown> = { version: TEMPERATURE_V1_VERSION, sensorType: TEMPERATURE_SENSOR_GPU, temperature: 0 };
      const fallbackCodes = [NvmlReturn.NOT_SUPPORTED, NvmlReturn.FUNCTION_NOT_FOUND, NvmlReturn.ARGUMENT_VERSION_MISMATCH];
      const rc = await this.call('nvmlDeviceGetTemperatureV', [device, out], options, fallbackCodes);
      if (rc === NvmlReturn.SUCCESS) return typeof out['temperature'] === 'number' ? out['temperature'] : 0;
    }
    return this.getUint('nvmlDeviceGetTemperature', [device, TEMPERATURE_SENSOR_GPU], options);
  }

  /** nvmlDeviceGetTemperatureThreshold (°C). */
  deviceGetTemperatureThreshold(device: NvmlDeviceHandle, type: TemperatureThreshold, options: NvmlCallOptions = {}): Promise<number> {
    return this.getUint('nvmlDeviceGetTemperatureThreshold', [device, type], options);
  }

  /** nvmlDeviceGetPowerUsage (milliwatts). */
  deviceGetPowerUsage(device: NvmlDeviceHandle, options: NvmlCallOptions = {}): Promise<number> {
    return this.getUint('nvmlDeviceGetPowerUsage', [device], options);
  }

  /** nvmlDeviceGetEnforcedPowerLimit (milliwatts). */
  deviceGetEnforcedPowerLimit(device: NvmlDeviceHandle, options: NvmlCallOptions = {}): Promise<number> {
    return this.getUint('nvmlDeviceGetEnforcedPowerLimit', [device], options);
  }

  /** nvmlDeviceGetUtilizationRates (percent). */
  async deviceGetUtilizationRates(device: NvmlDeviceHandle, options: NvmlCallOptions = {}): Promise<{ gpu: number; memory: number }> {
    const out: { gpu?: number; memory?: number } = {};
    await this.call('nvmlDeviceGetUtilizationRates', [device, out], options);
    return { gpu: out.gpu ?? 0, memory: out.memory ?? 0 };
  }

  /** nvmlDeviceGetClockInfo (MHz). */
  deviceGetClockInfo(device: NvmlDeviceHandle, type: ClockType, options: NvmlCallOptions = {}): Promise<number> {
    return this.getUint('nvmlDeviceGetClockInfo', [device, type], options);
  }

  /** nvmlDeviceGetMaxClockInfo (MHz). */
  deviceGetMaxClockInfo(device: NvmlDeviceHandle, type: ClockType, options: NvmlCallOptions = {}): Promise<number> {
    return this.getUint('nvmlDeviceGetMaxClockInfo', [device, type], options);
  }

  /** Clock event reasons bitmask (ClocksEventReasons, or the older ClocksThrottleReasons symbol). */
  async deviceGetCurrentClocksEventReasons(device: NvmlDeviceHandle, options: NvmlCallOptions = {}): Promise<number> {
    const fn = this.hasFunction('nvmlDeviceGetCurrentClocksEventReasons')
      ? 'nvmlDeviceGetCurrentClocksEventReasons'
      : 'nvmlDeviceGetCurrentClocksThrottleReasons';
    return (await this.getU64(fn, [device], options)) ?? 0;
  }

  /** nvmlDeviceGetEccMode. */
  async deviceGetEccMode(device: NvmlDeviceHandle, options: NvmlCallOptions = {}): Promise<{ current: boolean; pending: boolean }> {
    const current = new Int32Array(1);
    const pending = new Int32Array(1);
    await this.call('nvmlDeviceGetEccMode', [device, current, pending], options);
    return { current: current[0] === 1, pending: pending[0] === 1 };
  }

  /** nvmlDeviceGetTotalEccErrors; undefined when NVML reports the value as not available. */
  deviceGetTotalEccErrors(
    device: NvmlDeviceHandle,
    errorType: EccErrorType,
    counter: EccCounterType,
    options: NvmlCallOptions = {},
  ): Promise<number | undefined> {
    return this.getU64('nvmlDeviceGetTotalEccErrors', [device, errorType, counter], options);
  }

  /** nvmlDeviceGetMemoryErrorCounter for one memory location. */
  deviceGetMemoryErrorCounter(
    device: NvmlDeviceHandle,
    errorType: EccErrorType,
    counter: EccCounterType,
    location: number,
    options: NvmlCallOptions = {},
  ): Promise<number | undefined> {
    return this.getU64('nvmlDeviceGetMemoryErrorCounter', [device, errorType, counter, location], options);
  }

  /** Number of pages retired for `cause` (the sizing half of the two-call protocol). */
  async deviceGetRetiredPageCount(device: NvmlDeviceHandle, cause: RetiredPageCause, options: NvmlCallOptions = {}): Promise<number> {
    const count = new Uint32Array(1);
    await this.call('nvmlDeviceGetRetiredPages', [device, cause, count, null], options, [NvmlReturn.INSUFFICIENT_SIZE]);
    return count[0] ?? 0;
  }

  /** nvmlDeviceGetRetiredPagesPendingStatus. */
  async deviceGetRetiredPagesPendingStatus(device: NvmlDeviceHandle, options: NvmlCallOptions = {}): Promise<boolean> {
    return (await this.getUint('nvmlDeviceGetRetiredPagesPendingStatus', [device], options)) === 1;
  }

  /** nvmlDeviceGetRemappedRows. */
  async deviceGetRemappedRows(device: NvmlDeviceHandle, options: NvmlCallOptions = {}): Promise<NvmlRemappedRows> {
    const [corr, unc, pending, failure] = [[0], [0], [0], [0]];
    await this.call('nvmlDeviceGetRemappedRows', [device, corr, unc, pending, failure], options);
    return { corrected: corr[0] ?? 0, uncorrected: unc[0] ?? 0, pending: pending[0] === 1, failure: failure[0] === 1 };
  }

  /** nvmlDeviceGetNvLinkState. */
  async deviceGetNvLinkState(device: NvmlDeviceHandle, link: number, options: NvmlCallOptions = {}): Promise<boolean> {
    return (await this.getUint('nvmlDeviceGetNvLinkState', [device, link], options)) === 1;
  }

  /**
   * nvmlDeviceGetNvLinkState for a link that may not exist: undefined for INVALID_ARGUMENT (an
   * index past the GPU's links) and NOT_SUPPORTED (a gap), without an exception per absent link.
   */
  async deviceProbeNvLinkState(device: NvmlDeviceHandle, link: number, options: NvmlCallOptions = {}): Promise<boolean | undefined> {
    const out = new Int32Array(1);
    const rc = await this.call('nvmlDeviceGetNvLinkState', [device, link, out], options, NVLINK_ABSENT_CODES);
    return rc === NvmlReturn.SUCCESS ? out[0] === 1 : undefined;
  }

  /** nvmlDeviceGetNvLinkErrorCounter. */
  deviceGetNvLinkErrorCounter(
    device: NvmlDeviceHandle,
    link: number,
    counter: NvLinkErrorCounter,
    options: NvmlCallOptions = {},
  ): Promise<number | undefined> {
    return this.getU64('nvmlDeviceGetNvLinkErrorCounter', [device, link, counter], options);
  }

  /** nvmlDeviceGetCurrPcieLinkGeneration. */
  deviceGetCurrPcieLinkGeneration(device: NvmlDeviceHandle, options: NvmlCallOptions = {}): Promise<number> {
    return this.getUint('nvmlDeviceGetCurrPcieLinkGeneration', [device], options);
  }

  /** nvmlDeviceGetCurrPcieLinkWidth. */
  deviceGetCurrPcieLinkWidth(device: NvmlDeviceHandle, options: NvmlCallOptions = {}): Promise<number> {
    return this.getUint('nvmlDeviceGetCurrPcieLinkWidth', [device], options);
  }

  /** nvmlDeviceGetMaxPcieLinkGeneration (FUNCTION_NOT_FOUND on drivers without it). */
  deviceGetMaxPcieLinkGeneration(device: NvmlDeviceHandle, options: NvmlCallOptions = {}): Promise<number> {
    return this.getUint('nvmlDeviceGetMaxPcieLinkGeneration', [device], options);
  }

  /** nvmlDeviceGetMaxPcieLinkWidth (FUNCTION_NOT_FOUND on drivers without it). */
  deviceGetMaxPcieLinkWidth(device: NvmlDeviceHandle, options: NvmlCallOptions = {}): Promise<number> {
    return this.getUint('nvmlDeviceGetMaxPcieLinkWidth', [device], options);
  }

  /** nvmlDeviceGetPcieReplayCounter. */
  deviceGetPcieReplayCounter(device: NvmlDeviceHandle, options: NvmlCallOptions = {}): Promise<number> {
    return this.getUint('nvmlDeviceGetPcieReplayCounter', [device], options);
  }

  /** nvmlDeviceGetPcieThroughput (KB/s over the last 20 ms). */
  deviceGetPcieThroughput(device: NvmlDeviceHandle, counter: PcieCounter, options: NvmlCallOptions = {}): Promise<number> {
    return this.getUint('nvmlDeviceGetPcieThroughput', [device, counter], options);
  }

  /**
   * Compute processes through `_v3`, `_v2` or the unversioned call (the first the driver has),
   * size-then-fetch, with the record size read from the buffer: drivers write 16, 24 or 32 bytes
   * per record whatever the header says.
   */
  deviceGetComputeRunningProcesses(device: NvmlDeviceHandle, options: NvmlCallOptions = {}): Promise<NvmlProcessInfo[]> {
    return this.firstOf(PROCESS_FUNCTIONS, [NvmlReturn.FUNCTION_NOT_FOUND], (fn) => this.runningProcesses(fn, device, options));
  }

  private async runningProcesses(fn: OptionalFn, device: NvmlDeviceHandle, options: NvmlCallOptions): Promise<NvmlProcessInfo[]> {
    const count = [0];
    const first = await this.call(fn, [device, count, null], options, [NvmlReturn.INSUFFICIENT_SIZE]);
    if (first === NvmlReturn.SUCCESS) return [];
    for (let attempt = 0; attempt < PROCESS_FETCH_ATTEMPTS; attempt++) {
      const capacity = (count[0] ?? 0) + PROCESS_HEADROOM;
      const buffer = Buffer.alloc(capacity * PROCESS_SLOT_BYTES, PROCESS_BUFFER_FILL);
      count[0] = capacity;
      const rc = await this.call(fn, [device, count, buffer], options, [NvmlReturn.INSUFFICIENT_SIZE]);
      if (rc !== NvmlReturn.SUCCESS) continue;
      const records = Math.min(count[0] ?? 0, capacity);
      const decoded = decodeProcessRecords(buffer, records);
      if (decoded === undefined)
        throw new NvmlError(NvmlReturn.UNKNOWN, fn, `no known record size (16, 24, 32 bytes) fits the ${records} process records written`);
      return decoded.processes;
    }
    throw new NvmlError(NvmlReturn.INSUFFICIENT_SIZE, fn, 'process list kept growing');
  }

  /** nvmlDeviceGetFieldValues: one answer per request, each with its own return code (NOT_SUPPORTED: the GPU or driver lacks the field). */
  async deviceGetFieldValues(
    device: NvmlDeviceHandle,
    requests: readonly NvmlFieldRequest[],
    options: NvmlCallOptions = {},
  ): Promise<NvmlFieldValue[]> {
    const answers: NvmlFieldValue[] = [];
    for (let start = 0; start < requests.length; start += FIELDS_PER_CALL) {
      const count = Math.min(FIELDS_PER_CALL, requests.length - start);
      // A synchronous binding decodes the answers right after the call (in output's value()),
      // before any other call can reuse its scratch buffer (a snapshot makes several batches per GPU).
      const buffer = this.synchronous ? this.scratchFields.fill(0, 0, count * FIELD_VALUE_SIZE) : Buffer.alloc(count * FIELD_VALUE_SIZE);
      for (let i = 0; i < count; i++) {
        const r = requests[start + i] as NvmlFieldRequest;
        buffer.writeUInt32LE(r.fieldId, i * FIELD_VALUE_SIZE);
        buffer.writeUInt32LE(r.scopeId ?? 0, i * FIELD_VALUE_SIZE + FIELD_SCOPE_OFFSET);
      }
      await this.output('nvmlDeviceGetFieldValues', [device, count, buffer], options, () => {
        for (let i = 0; i < count; i++)
          answers.push(decodeFieldValue(buffer, i * FIELD_VALUE_SIZE, requests[start + i] as NvmlFieldRequest));
      });
    }
    return answers;
  }

  /** nvmlDeviceGetMigMode. */
  async deviceGetMigMode(device: NvmlDeviceHandle, options: NvmlCallOptions = {}): Promise<{ current: boolean; pending: boolean }> {
    const current = new Uint32Array(1);
    const pending = new Uint32Array(1);
    await this.call('nvmlDeviceGetMigMode', [device, current, pending], options);
    return { current: current[0] === 1, pending: pending[0] === 1 };
  }

  /** nvmlDeviceGetMaxMigDeviceCount: MIG device slots of a GPU (0 when MIG is off). */
  deviceGetMaxMigDeviceCount(device: NvmlDeviceHandle, options: NvmlCallOptions = {}): Promise<number> {
    return this.getUint('nvmlDeviceGetMaxMigDeviceCount', [device], options);
  }

  /** nvmlDeviceGetMigDeviceHandleByIndex: the MIG device in slot `index` (NvmlError NOT_FOUND for an empty slot). */
  async deviceGetMigDeviceHandleByIndex(device: NvmlDeviceHandle, index: number, options: NvmlCallOptions = {}): Promise<NvmlDeviceHandle> {
    const out: unknown[] = [null];
    await this.call('nvmlDeviceGetMigDeviceHandleByIndex', [device, index, out], options);
    const handle = out[0];
    if (typeof handle !== 'bigint' || handle === 0n)
      throw new NvmlError(NvmlReturn.UNKNOWN, 'nvmlDeviceGetMigDeviceHandleByIndex', 'returned a null handle');
    return handle;
  }

  /** nvmlDeviceGetPerformanceState (0..15; 32 = unknown). */
  deviceGetPerformanceState(device: NvmlDeviceHandle, options: NvmlCallOptions = {}): Promise<number> {
    return this.getUint('nvmlDeviceGetPerformanceState', [device], options);
  }

  /** nvmlDeviceGetFanSpeed (percent). */
  deviceGetFanSpeed(device: NvmlDeviceHandle, options: NvmlCallOptions = {}): Promise<number> {
    return this.getUint('nvmlDeviceGetFanSpeed', [device], options);
  }

  /** nvmlDeviceGetPersistenceMode. */
  async deviceGetPersistenceMode(device: NvmlDeviceHandle, options: NvmlCallOptions = {}): Promise<boolean> {
    return (await this.getUint('nvmlDeviceGetPersistenceMode', [device], options)) === 1;
  }

  /** nvmlDeviceGetComputeMode (0 default, 1 exclusive thread, 2 prohibited, 3 exclusive process). */
  deviceGetComputeMode(device: NvmlDeviceHandle, options: NvmlCallOptions = {}): Promise<number> {
    return this.getUint('nvmlDeviceGetComputeMode', [device], options);
  }

  /** nvmlEventSetCreate. */
  async eventSetCreate(options: NvmlCallOptions = {}): Promise<NvmlEventSetHandle> {
    const out: unknown[] = [null];
    await this.call('nvmlEventSetCreate', [out], options);
    const set = out[0];
    if (typeof set !== 'bigint') throw new NvmlError(NvmlReturn.UNKNOWN, 'nvmlEventSetCreate', 'returned a null set');
    return set;
  }

  /** nvmlDeviceGetSupportedEventTypes (bitmask). */
  async deviceGetSupportedEventTypes(device: NvmlDeviceHandle, options: NvmlCallOptions = {}): Promise<number> {
    return (await this.getU64('nvmlDeviceGetSupportedEventTypes', [device], options)) ?? 0;
  }

  /** nvmlDeviceRegisterEvents. */
  async deviceRegisterEvents(
    device: NvmlDeviceHandle,
    types: number,
    set: NvmlEventSetHandle,
    options: NvmlCallOptions = {},
  ): Promise<void> {
    await this.call('nvmlDeviceRegisterEvents', [device, types, set], options);
  }

  /** nvmlEventSetWait_v2; resolves null on TIMEOUT (no event within `waitMs`). */
  async eventSetWait(set: NvmlEventSetHandle, waitMs: number, options: NvmlCallOptions = {}): Promise<NvmlEventData | null> {
    const out: Record<string, unknown> = {};
    const timeoutMs = (options.timeoutMs ?? this.callTimeoutMs) + waitMs;
    const rc = await this.call('nvmlEventSetWait_v2', [set, out, waitMs], { ...options, timeoutMs }, [NvmlReturn.TIMEOUT]);
    if (rc === NvmlReturn.TIMEOUT) return null;
    const device = out['device'];
    return {
      device: typeof device === 'bigint' ? device : 0n,
      eventType: normalizeU64(out['eventType']) ?? 0,
      eventData: normalizeU64(out['eventData']) ?? 0,
    };
  }

  /** nvmlEventSetFree. */
  async eventSetFree(set: NvmlEventSetHandle, options: NvmlCallOptions = {}): Promise<void> {
    await this.call('nvmlEventSetFree', [set], options);
  }

  /**
   * The GPU's NVSwitch fabric registration: nvmlDeviceGetGpuFabricInfoV with the v3 struct, then
   * v2 where the driver refuses v3 (ARGUMENT_VERSION_MISMATCH), then the v1 call where V is absent
   * (before R550) or refuses both; FUNCTION_NOT_FOUND where neither exists (before R525).
   */
  async deviceGetGpuFabricInfo(device: NvmlDeviceHandle, options: NvmlCallOptions = {}): Promise<NvmlGpuFabricInfo> {
    const versions = this.fabricStructVersions ?? (this.hasFunction('nvmlDeviceGetGpuFabricInfoV') ? FABRIC_V_VERSIONS : []);
    for (const version of versions) {
      const buffer = Buffer.alloc(FABRIC_V3_BYTES);
      buffer.writeUInt32LE(version, 0);
      const rc = await this.call('nvmlDeviceGetGpuFabricInfoV', [device, buffer], options, [NvmlReturn.ARGUMENT_VERSION_MISMATCH]);
      if (rc === NvmlReturn.SUCCESS) {
        this.fabricStructVersions = [version];
        return decodeFabricInfo(buffer, version === FABRIC_INFO_V3_VERSION ? 3 : 2);
      }
    }
    const buffer = Buffer.alloc(FABRIC_V1_BYTES);
    await this.call('nvmlDeviceGetGpuFabricInfo', [device, buffer], options);
    // the driver refused every versioned struct: later snapshots go to the v1 call at once
    this.fabricStructVersions = [];
    return decodeFabricInfo(buffer, 1);
  }

  /** The fabric struct version this driver accepted (one per driver: no refused call per snapshot). */
  private fabricStructVersions: readonly number[] | undefined;

  /** nvmlDeviceGetVbiosVersion, e.g. `96.00.74.00.01`. */
  deviceGetVbiosVersion(device: NvmlDeviceHandle, options: NvmlCallOptions = {}): Promise<string> {
    return this.getString('nvmlDeviceGetVbiosVersion', device, VBIOS_BUFFER, options);
  }

  /** nvmlDeviceGetInforomImageVersion, e.g. `G520.0200.00.05`. */
  deviceGetInforomImageVersion(device: NvmlDeviceHandle, options: NvmlCallOptions = {}): Promise<string> {
    return this.getString('nvmlDeviceGetInforomImageVersion', device, INFOROM_BUFFER, options);
  }

  /** nvmlDeviceGetInforomVersion of one InfoROM object, e.g. ECC `7.16`. */
  async deviceGetInforomVersion(device: NvmlDeviceHandle, object: InforomObject, options: NvmlCallOptions = {}): Promise<string> {
    const buffer = Buffer.alloc(INFOROM_BUFFER);
    await this.call('nvmlDeviceGetInforomVersion', [device, object, buffer, INFOROM_BUFFER], options);
    return decodeCString(buffer);
  }

  /** nvmlDeviceValidateInforom: false when the driver answers CORRUPTED_INFOROM (the checksums do not verify). */
  async deviceValidateInforom(device: NvmlDeviceHandle, options: NvmlCallOptions = {}): Promise<boolean> {
    const rc = await this.call('nvmlDeviceValidateInforom', [device], options, [NvmlReturn.CORRUPTED_INFOROM]);
    return rc === NvmlReturn.SUCCESS;
  }

  /** nvmlDeviceGetPowerManagementLimitConstraints (milliwatts). */
  async deviceGetPowerManagementLimitConstraints(
    device: NvmlDeviceHandle,
    options: NvmlCallOptions = {},
  ): Promise<{ min: number; max: number }> {
    const min = [0];
    const max = [0];
    await this.call('nvmlDeviceGetPowerManagementLimitConstraints', [device, min, max], options);
    return { min: min[0] ?? 0, max: max[0] ?? 0 };
  }

  /** nvmlDeviceGetPowerManagementDefaultLimit (milliwatts). */
  deviceGetPowerManagementDefaultLimit(device: NvmlDeviceHandle, options: NvmlCallOptions = {}): Promise<number> {
    return this.getUint('nvmlDeviceGetPowerManagementDefaultLimit', [device], options);
  }

  /** nvmlDeviceGetBAR1MemoryInfo (bytes). */
  async deviceGetBar1MemoryInfo(device: NvmlDeviceHandle, options: NvmlCallOptions = {}): Promise<NvmlBar1Memory> {
    const buffer = Buffer.alloc(BAR1_BYTES);
    await this.call('nvmlDeviceGetBAR1MemoryInfo', [device, buffer], options);
    const read = (offset: number): number => normalizeU64(buffer.readBigUInt64LE(offset)) ?? 0;
    return { total: read(0), free: read(8), used: read(16) };
  }
}

/** nvmlTemperatureThresholds_t values. */
export const TemperatureThreshold = { SHUTDOWN: 0, SLOWDOWN: 1, MEM_MAX: 2, GPU_MAX: 3 } as const;
/** A temperature threshold selector. */
export type TemperatureThreshold = (typeof TemperatureThreshold)[keyof typeof TemperatureThreshold];
/** nvmlClockType_t values. */
export const ClockType = { GRAPHICS: 0, SM: 1, MEM: 2, VIDEO: 3 } as const;
/** A clock domain selector. */
export type ClockType = (typeof ClockType)[keyof typeof ClockType];
/** nvmlMemoryErrorType_t values. */
export const EccErrorType = { CORRECTED: 0, UNCORRECTED: 1 } as const;
/** An ECC error type selector. */
export type EccErrorType = (typeof EccErrorType)[keyof typeof EccErrorType];
/** nvmlEccCounterType_t values. */
export const EccCounterType = { VOLATILE: 0, AGGREGATE: 1 } as const;
/** An ECC counter selector. */
export type EccCounterType = (typeof EccCounterType)[keyof typeof EccCounterType];
/** nvmlPageRetirementCause_t values. */
export const RetiredPageCause = { MULTIPLE_SBE: 0, DBE: 1 } as const;
/** A page retirement cause selector. */
export type RetiredPageCause = (typeof RetiredPageCause)[keyof typeof RetiredPageCause];
/** nvmlNvLinkErrorCounter_t values. */
export const NvLinkErrorCounter = { REPLAY: 0, RECOVERY: 1, CRC_FLIT: 2, CRC_DATA: 3, ECC_DATA: 4 } as const;
/** An NVLink error counter selector. */
export type NvLinkErrorCounter = (typeof NvLinkErrorCounter)[keyof typeof NvLinkErrorCounter];
/** nvmlPcieUtilCounter_t values. */
export const PcieCounter = { TX: 0, RX: 1 } as const;
/** A PCIe throughput direction. */
export type PcieCounter = (typeof PcieCounter)[keyof typeof PcieCounter];

/** Races `promise` against a deadline and an AbortSignal; the promise itself keeps running. */
function withDeadline<T>(promise: Promise<T>, fn: string, timeoutMs: number, signal: AbortSignal | undefined): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => {
      cleanup();
      reject(signal?.reason instanceof Error ? signal.reason : new Error(`${fn} aborted`, { cause: signal?.reason }));
    };
    const timer = setTimeout(() => {
      cleanup();
      reject(new NvmlTimeoutError(fn, timeoutMs));
    }, timeoutMs);
    const cleanup = (): void => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
    };
    if (signal?.aborted === true) {
      onAbort();
      return;
    }
    signal?.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        cleanup();
        resolve(value);
      },
      (err: unknown) => {
        cleanup();
        reject(err instanceof Error ? new Error(`${fn} failed in koffi`, { cause: err }) : new Error(`${fn} failed: ${String(err)}`));
      },
    );
  });
}

/** Lets one caller stop waiting on a shared promise without cancelling it for the others. */
function withSignal<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (signal === undefined) return promise;
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason instanceof Error ? signal.reason : new Error('aborted', { cause: signal.reason }));
    if (signal.aborted) {
      onAbort();
      return;
    }
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (err: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(err);
      },
    );
  });
}
