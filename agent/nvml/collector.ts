/**
 * Collects a JSON-able NVML snapshot of every GPU. NOT_SUPPORTED → field absent and listed
 * in `unsupported`; other failures → `errors`; GPU_IS_LOST → `lost: true`. One GPU's failure
 * never hides another GPU; no library / failed init / zero GPUs → no-GPU mode, not an exception.
 */
import {
  ClockType,
  EccCounterType,
  EccErrorType,
  NvLinkErrorCounter,
  NvmlError,
  NvmlFieldId,
  NvmlLibraryError,
  NvmlReturn,
  NvmlTimeoutError,
  RetiredPageCause,
  TemperatureThreshold,
  type NvmlBinding,
  type NvmlCallOptions,
  type NvmlDeviceHandle,
  type NvmlFieldRequest,
  type NvmlFieldValue,
} from './binding.js';
import { clip } from '../../lib/text.js';
import { cachedStatic, collectDeviceInfo, readSlowCounter, readUnlessRefused, stampPcieCounters } from './collect-device-info.js';
import { toKernelBusId } from './pci-bus-id.js';
import {
  ALL_NVML_CHECKS,
  type GpuComputeMode,
  type GpuNvLink,
  type GpuSnapshot,
  type NvLinkErrorCounters,
  type NvmlCheck,
  type NvmlFieldError,
  type NvmlSnapshot,
  type NvmlUnavailable,
} from './types.js';

/** Options for {@link collectSnapshot}. */
export interface CollectSnapshotOptions {
  /** An NVML binding; initialised on demand (single-flight). */
  nvml: NvmlBinding;
  /** Field groups to collect (identity always); default all. */
  checks?: readonly NvmlCheck[];
  signal?: AbortSignal;
  /** Injected clock for `collectedAt` and the per-GPU caches' ages. */
  now?: () => Date;
}

/** Clock event reason bits (nvmlClocksEventReason*) and their names. */
export const CLOCK_EVENT_REASONS: ReadonlyArray<readonly [number, string]> = [
  [0x1, 'GpuIdle'],
  [0x2, 'ApplicationsClocksSetting'],
  [0x4, 'SwPowerCap'],
  [0x8, 'HwSlowdown'],
  [0x10, 'SyncBoost'],
  [0x20, 'SwThermalSlowdown'],
  [0x40, 'HwThermalSlowdown'],
  [0x80, 'HwPowerBrakeSlowdown'],
  [0x100, 'DisplayClockSetting'],
];

/** Names of the bits set in a clock event reasons mask (unknown bits as hex). */
export function decodeClockEventReasons(mask: number): string[] {
  const names = CLOCK_EVENT_REASONS.filter(([bit]) => (mask & bit) !== 0).map(([, name]) => name);
  const known = CLOCK_EVENT_REASONS.reduce((acc, [bit]) => acc | bit, 0);
  const unknown = mask & ~known;
  if (unknown !== 0) names.push(`0x${unknown.toString(16)}`);
  return names;
}

/** 12040 → `12.4`, as nvidia-smi prints it. */
export function formatCudaVersion(version: number): string {
  const MAJOR = 1000;
  const MINOR = 10;
  return `${Math.floor(version / MAJOR)}.${Math.floor((version % MAJOR) / MINOR)}`;
}

const COMPUTE_MODES: readonly GpuComputeMode[] = ['default', 'exclusiveThread', 'prohibited', 'exclusiveProcess'];
const MILLIWATTS_PER_WATT = 1000;
const PSTATE_UNKNOWN = 32;
/**
 * NVLink indices probed, every one of them: headers define NVML_NVLINK_MAX_LINKS as 12, 18 or 36,
 * and a link can be NOT_SUPPORTED in the middle of the range.
 */
const NVLINK_PROBE_LINKS = 36;
/** How long a GPU's known link indices are trusted before the whole range is probed again. */
const NVLINK_LAYOUT_TTL_MS = 10 * 60_000;
/** Bound on remembered GPUs per binding (a node has at most a few dozen). */
const MAX_NVLINK_LAYOUTS = 256;
/** After this many call deadlines on one GPU, its remaining fields are skipped (the driver is hung). */
const MAX_TIMEOUTS_PER_GPU = 3;
/** Processes listed per GPU (the snapshot schema's bound); the rest are counted in processesOmitted. */
export const MAX_PROCESSES_PER_GPU = 256;
const MAX_ERROR_CHARS = 512;
const MAX_REASON_CHARS = 1024;
type NvLinkCounterEntry = readonly [keyof NvLinkErrorCounters, NvLinkErrorCounter];
const NVLINK_COUNTERS: readonly NvLinkCounterEntry[] = [
  ['replay', NvLinkErrorCounter.REPLAY],
  ['recovery', NvLinkErrorCounter.RECOVERY],
  ['crcFlit', NvLinkErrorCounter.CRC_FLIT],
  ['crcData', NvLinkErrorCounter.CRC_DATA],
  ['eccData', NvLinkErrorCounter.ECC_DATA],
];
/** Each DL counter's field name in `unsupported` and `errors`. */
const NVLINK_COUNTER_FIELDS = Object.fromEntries(NVLINK_COUNTERS.map(([name]) => [name, `nvlinks.errors.${name}`])) as Record<
  keyof NvLinkErrorCounters,
  string
>;
/** NVLink5 (Blackwell) error counters, which are field values: its DL counters are NOT_SUPPORTED. */
const NVLINK5_FIELDS: ReadonlyArray<readonly [keyof NvLinkErrorCounters, number]> = [
  ['symbolErrors', NvmlFieldId.NVLINK_SYMBOL_ERRORS],
  ['effectiveErrors', NvmlFieldId.NVLINK_EFFECTIVE_ERRORS],
  ['recoverySuccessful', NvmlFieldId.NVLINK_RECOVERY_SUCCESSFUL_EVENTS],
  ['recoveryFailed', NvmlFieldId.NVLINK_RECOVERY_FAILED_EVENTS],
];

/** Codes that mean "this GPU or driver has no such field". */
function isUnsupported(err: unknown): boolean {
  return err instanceof NvmlError && (err.code === NvmlReturn.NOT_SUPPORTED || err.code === NvmlReturn.FUNCTION_NOT_FOUND);
}

/** A field value's own code that means the GPU or driver has no such field (an id the driver does not know included). */
function isUnsupportedField(code: number): boolean {
  return code === NvmlReturn.NOT_SUPPORTED || code === NvmlReturn.INVALID_ARGUMENT || code === NvmlReturn.FUNCTION_NOT_FOUND;
}

function errorCode(err: unknown): number {
  return err instanceof NvmlError ? err.code : NvmlReturn.UNKNOWN;
}

/** Error text as the snapshot carries it (bounded like the schema's NvmlFieldError.error). */
function errorText(err: unknown): string {
  return clip(err instanceof Error ? err.message : String(err), MAX_ERROR_CHARS);
}

/** Drops undefined values so optional properties stay absent (exactOptionalPropertyTypes, clean JSON). */
function compact<T extends object>(value: T): { [K in keyof T]: Exclude<T[K], undefined> } | undefined {
  const entries = Object.entries(value).filter(([, v]) => v !== undefined);
  return entries.length === 0 ? undefined : (Object.fromEntries(entries) as { [K in keyof T]: Exclude<T[K], undefined> });
}

/** Collects one GPU's fields, turning each call's failure into data. */
class GpuReader {
  readonly unsupported = new Set<string>();
  readonly errors: NvmlFieldError[] = [];
  lost = false;
  private timeouts = 0;
  private skipped = false;

  constructor(
    readonly index: number,
    private readonly call: NvmlCallOptions,
    private readonly signal: AbortSignal | undefined,
  ) {}

  get options(): NvmlCallOptions {
    return this.call;
  }

  /** Runs one read; returns undefined when the field is unsupported or failed. */
  async read<T>(field: string, fn: () => Promise<T>): Promise<T | undefined> {
    if (this.lost || this.skipped) return undefined;
    try {
      return await fn();
    } catch (err) {
      if (this.signal?.aborted === true) throw err;
      this.record(field, err);
      return undefined;
    }
  }

  /** Classifies a failure: unsupported, lost, or an error entry. */
  record(field: string, err: unknown): void {
    if (isUnsupported(err)) {
      this.unsupported.add(field);
      return;
    }
    if (err instanceof NvmlError && err.code === NvmlReturn.GPU_IS_LOST) {
      this.lost = true;
      return;
    }
    this.errors.push({ field, code: errorCode(err), error: errorText(err) });
    if (err instanceof NvmlTimeoutError && ++this.timeouts >= MAX_TIMEOUTS_PER_GPU) {
      this.skipped = true;
      this.errors.push({
        field: 'gpu',
        code: NvmlReturn.TIMEOUT,
        error: `remaining fields skipped after ${MAX_TIMEOUTS_PER_GPU} call deadlines expired`,
      });
    }
  }

  /** The value of one answer of nvmlDeviceGetFieldValues; its own failure code is classified like a call's. */
  fieldValue(field: string, answer: NvmlFieldValue | undefined, fn: string): number | undefined {
    if (answer === undefined) return undefined;
    if (answer.code === NvmlReturn.SUCCESS) return answer.value;
    if (isUnsupportedField(answer.code)) this.unsupported.add(field);
    else this.record(field, new NvmlError(answer.code, fn, `field ${answer.fieldId} (scope ${answer.scopeId}) failed`));
    return undefined;
  }

  /** Replaces the listed fields by the group name when every one of them is unsupported. */
  collapse(group: string, fields: readonly string[]): void {
    if (fields.length > 0 && fields.every((f) => this.unsupported.has(f))) {
      for (const f of fields) this.unsupported.delete(f);
      this.unsupported.add(group);
    }
  }
}

/** Most MIG device slots read per GPU (A100 and H100 have 7). */
const MAX_MIG_DEVICES = 8;

/** The MIG devices of a GPU in MIG mode, by slot; empty slots (NOT_FOUND) are skipped. */
async function readMigDevices(nvml: NvmlBinding, h: NvmlDeviceHandle, r: GpuReader, gpu: GpuSnapshot): Promise<void> {
  const o = r.options;
  const slots = await r.read('migDevices', () => nvml.deviceGetMaxMigDeviceCount(h, o));
  if (slots === undefined) return;
  const devices: NonNullable<GpuSnapshot['migDevices']> = [];
  for (let index = 0; index < Math.min(slots, MAX_MIG_DEVICES); index++) {
    const uuid = await r.read('migDevices', async () => {
      try {
        return await nvml.deviceGetUuid(await nvml.deviceGetMigDeviceHandleByIndex(h, index, o), o);
      } catch (err) {
        if (err instanceof NvmlError && err.code === NvmlReturn.NOT_FOUND) return undefined;
        throw err;
      }
    });
    if (uuid !== undefined) devices.push({ index, uuid });
  }
  gpu.migDevices = devices;
}

async function collectGpu(
  nvml: NvmlBinding,
  index: number,
  checks: ReadonlySet<NvmlCheck>,
  signal: AbortSignal | undefined,
  now: () => Date,
): Promise<GpuSnapshot> {
  const callOptions: NvmlCallOptions = signal === undefined ? {} : { signal };
  const r = new GpuReader(index, callOptions, signal);
  const o = r.options;
  const gpu: GpuSnapshot = { index, lost: false, unsupported: [], errors: [] };

  const handle: NvmlDeviceHandle | undefined = await r.read('handle', () => nvml.deviceGetHandleByIndex(index, o));
  if (handle !== undefined) {
    const h = handle;
    // The UUID is read every time: it is what tells this GPU from one that took its index.
    const uuid = await r.read('uuid', () => nvml.deviceGetUuid(h, o));
    if (uuid !== undefined) gpu.uuid = uuid;
    const nowMs = now().getTime();
    await cachedStatic(nvml, gpu, 'identity', r, () => readIdentity(nvml, h, r), nowMs);
    await collectFields(nvml, h, r, gpu, checks, nowMs);
  }

  if (r.lost) {
    // a lost GPU answers nothing meaningful: keep identity only
    return {
      ...compact({ uuid: gpu.uuid, name: gpu.name, serial: gpu.serial, pciBusId: gpu.pciBusId, pciBusIdKernel: gpu.pciBusIdKernel }),
      index,
      lost: true,
      unsupported: [],
      errors: r.errors,
    };
  }
  gpu.unsupported = [...r.unsupported];
  gpu.errors = r.errors;
  return gpu;
}

/** Name, serial and PCI ids: fixed for a GPU (cached by UUID). */
async function readIdentity(nvml: NvmlBinding, h: NvmlDeviceHandle, r: GpuReader): Promise<Partial<GpuSnapshot>> {
  const o = r.options;
  const name = await r.read('name', () => nvml.deviceGetName(h, o));
  const serial = await r.read('serial', () => nvml.deviceGetSerial(h, o));
  const pci = await r.read('pciBusId', () => nvml.deviceGetPciInfo(h, o));
  return compact({ name, serial, pciBusId: pci?.busId, pciBusIdKernel: pci === undefined ? undefined : toKernelBusId(pci.busId) }) ?? {};
}

/** The temperature thresholds: fixed for a GPU (cached by UUID). */
async function readTemperatureThresholds(nvml: NvmlBinding, h: NvmlDeviceHandle, r: GpuReader): Promise<Partial<GpuSnapshot>> {
  const threshold = (field: string, type: TemperatureThreshold): Promise<number | undefined> =>
    r.read(`temperature.${field}`, () => nvml.deviceGetTemperatureThreshold(h, type, r.options));
  const temperature = compact({
    slowdownCelsius: await threshold('slowdownCelsius', TemperatureThreshold.SLOWDOWN),
    shutdownCelsius: await threshold('shutdownCelsius', TemperatureThreshold.SHUTDOWN),
    gpuMaxCelsius: await threshold('gpuMaxCelsius', TemperatureThreshold.GPU_MAX),
    memoryMaxCelsius: await threshold('memoryMaxCelsius', TemperatureThreshold.MEM_MAX),
  });
  return temperature === undefined ? {} : { temperature };
}

/** The maximum clocks: fixed for a GPU (cached by UUID). */
async function readMaxClocks(nvml: NvmlBinding, h: NvmlDeviceHandle, r: GpuReader): Promise<Partial<GpuSnapshot>> {
  const max = (field: string, type: ClockType): Promise<number | undefined> =>
    r.read(`clocks.${field}`, () => nvml.deviceGetMaxClockInfo(h, type, r.options));
  const clocks = compact({
    maxGraphicsMHz: await max('maxGraphicsMHz', ClockType.GRAPHICS),
    maxSmMHz: await max('maxSmMHz', ClockType.SM),
    maxMemoryMHz: await max('maxMemoryMHz', ClockType.MEM),
  });
  return clocks === undefined ? {} : { clocks };
}

/** The PCIe link the GPU and slot can reach: fixed (cached by UUID). */
async function readMaxPcieLink(nvml: NvmlBinding, h: NvmlDeviceHandle, r: GpuReader): Promise<Partial<GpuSnapshot>> {
  const pcie = compact({
    maxGen: await r.read('pcie.maxGen', () => nvml.deviceGetMaxPcieLinkGeneration(h, r.options)),
    maxWidth: await r.read('pcie.maxWidth', () => nvml.deviceGetMaxPcieLinkWidth(h, r.options)),
  });
  return pcie === undefined ? {} : { pcie };
}

async function collectFields(
  nvml: NvmlBinding,
  h: NvmlDeviceHandle,
  r: GpuReader,
  gpu: GpuSnapshot,
  checks: ReadonlySet<NvmlCheck>,
  nowMs: number,
): Promise<void> {
  const o = r.options;

  if (checks.has('memory')) {
    const memory = await r.read('memory', () => nvml.deviceGetMemoryInfo(h, o));
    if (memory !== undefined) {
      gpu.memory = { totalBytes: memory.total, usedBytes: memory.used, freeBytes: memory.free };
      if (memory.reserved !== undefined) gpu.memory.reservedBytes = memory.reserved;
    }
  }

  if (checks.has('temperature')) {
    const gpuCelsius = await r.read('temperature.gpuCelsius', () => nvml.deviceGetTemperature(h, o));
    if (gpuCelsius !== undefined) gpu.temperature = { gpuCelsius };
    await cachedStatic(nvml, gpu, 'temperature', r, () => readTemperatureThresholds(nvml, h, r), nowMs);
  }

  if (checks.has('power')) {
    const usage = await r.read('power.usageWatts', () => nvml.deviceGetPowerUsage(h, o));
    const limit = await r.read('power.enforcedLimitWatts', () => nvml.deviceGetEnforcedPowerLimit(h, o));
    const power = compact({
      usageWatts: usage === undefined ? undefined : usage / MILLIWATTS_PER_WATT,
      enforcedLimitWatts: limit === undefined ? undefined : limit / MILLIWATTS_PER_WATT,
    });
    if (power !== undefined) gpu.power = power;
    r.collapse('power', ['power.usageWatts', 'power.enforcedLimitWatts']);
  }

  if (checks.has('utilization')) {
    const util = await r.read('utilization', () => nvml.deviceGetUtilizationRates(h, o));
    if (util !== undefined) gpu.utilization = { gpuPercent: util.gpu, memoryPercent: util.memory };
  }

  if (checks.has('clocks')) {
    const clock = (field: string, type: ClockType): Promise<number | undefined> =>
      r.read(`clocks.${field}`, () => nvml.deviceGetClockInfo(h, type, o));
    const clocks = compact({
      graphicsMHz: await clock('graphicsMHz', ClockType.GRAPHICS),
      smMHz: await clock('smMHz', ClockType.SM),
      memoryMHz: await clock('memoryMHz', ClockType.MEM),
    });
    if (clocks !== undefined) gpu.clocks = clocks;
    await cachedStatic(nvml, gpu, 'clocks', r, () => readMaxClocks(nvml, h, r), nowMs);
    const mask = await r.read('clockEventReasons', () => nvml.deviceGetCurrentClocksEventReasons(h, o));
    if (mask !== undefined) gpu.clockEventReasons = { mask, names: decodeClockEventReasons(mask) };
  }

  if (checks.has('ecc')) {
    const mode = await r.read('ecc.mode', () => nvml.deviceGetEccMode(h, o));
    const total = (field: string, type: EccErrorType, counter: EccCounterType): Promise<number | undefined> =>
      r.read(`ecc.${field}`, () => nvml.deviceGetTotalEccErrors(h, type, counter, o));
    // counters exist only while ECC is enabled; reading them otherwise is NOT_SUPPORTED noise
    const counters =
      mode?.current === false
        ? {}
        : {
            volatileCorrected: await total('volatileCorrected', EccErrorType.CORRECTED, EccCounterType.VOLATILE),
            volatileUncorrected: await total('volatileUncorrected', EccErrorType.UNCORRECTED, EccCounterType.VOLATILE),
            aggregateCorrected: await total('aggregateCorrected', EccErrorType.CORRECTED, EccCounterType.AGGREGATE),
            aggregateUncorrected: await total('aggregateUncorrected', EccErrorType.UNCORRECTED, EccCounterType.AGGREGATE),
          };
    const ecc = compact({ enabled: mode?.current, pendingEnabled: mode?.pending, ...counters });
    if (ecc !== undefined) gpu.ecc = ecc;
    r.collapse('ecc', [
      'ecc.mode',
      'ecc.volatileCorrected',
      'ecc.volatileUncorrected',
      'ecc.aggregateCorrected',
      'ecc.aggregateUncorrected',
    ]);
  }

  if (checks.has('retiredPages')) {
    // page retirement is a board property (Ampere and later remap rows instead): a refusal is remembered
    const retiredRead = <T>(field: string, read: () => Promise<T>): Promise<T | undefined> =>
      readUnlessRefused(nvml, gpu.uuid, `retiredPages.${field}`, r, read, nowMs);
    const retired = compact({
      singleBitEcc: await retiredRead('singleBitEcc', () => nvml.deviceGetRetiredPageCount(h, RetiredPageCause.MULTIPLE_SBE, o)),
      doubleBitEcc: await retiredRead('doubleBitEcc', () => nvml.deviceGetRetiredPageCount(h, RetiredPageCause.DBE, o)),
      pending: await retiredRead('pending', () => nvml.deviceGetRetiredPagesPendingStatus(h, o)),
    });
    if (retired !== undefined) gpu.retiredPages = retired;
    r.collapse('retiredPages', ['retiredPages.singleBitEcc', 'retiredPages.doubleBitEcc', 'retiredPages.pending']);
  }

  if (checks.has('remappedRows')) {
    const rows = await r.read('remappedRows', () => nvml.deviceGetRemappedRows(h, o));
    if (rows !== undefined) gpu.remappedRows = rows;
  }

  if (checks.has('pcie')) {
    const current = compact({
      currentGen: await r.read('pcie.currentGen', () => nvml.deviceGetCurrPcieLinkGeneration(h, o)),
      currentWidth: await r.read('pcie.currentWidth', () => nvml.deviceGetCurrPcieLinkWidth(h, o)),
    });
    if (current !== undefined) gpu.pcie = current;
    await cachedStatic(nvml, gpu, 'pcie', r, () => readMaxPcieLink(nvml, h, r), nowMs);
    const replay = await readSlowCounter(nvml, gpu.uuid, 'pcie.replayCounter', r, () => nvml.deviceGetPcieReplayCounter(h, o), nowMs);
    if (replay !== undefined) {
      gpu.pcie = { ...gpu.pcie, replayCounter: replay.value };
      stampPcieCounters(gpu, new Date(replay.atMs).toISOString());
    }
    r.collapse('pcie', ['pcie.currentGen', 'pcie.currentWidth', 'pcie.maxGen', 'pcie.maxWidth', 'pcie.replayCounter']);
  }

  if (checks.has('nvlink')) {
    const links = await collectNvLinks(nvml, h, r, gpu.uuid);
    if (links !== undefined) gpu.nvlinks = links;
  }

  if (checks.has('processes')) {
    const processes = await r.read('processes', () => nvml.deviceGetComputeRunningProcesses(h, o));
    if (processes !== undefined) {
      gpu.processes = processes
        .slice(0, MAX_PROCESSES_PER_GPU)
        .map((p) => (p.usedGpuMemory === undefined ? { pid: p.pid } : { pid: p.pid, usedMemoryBytes: p.usedGpuMemory }));
      if (processes.length > MAX_PROCESSES_PER_GPU) gpu.processesOmitted = processes.length - MAX_PROCESSES_PER_GPU;
    }
  }

  if (checks.has('modes')) {
    const mig = await r.read('migMode', () => nvml.deviceGetMigMode(h, o));
    if (mig !== undefined) gpu.migMode = { enabled: mig.current, pendingEnabled: mig.pending };
    if (mig?.current === true) await readMigDevices(nvml, h, r, gpu);
    const persistence = await r.read('persistenceMode', () => nvml.deviceGetPersistenceMode(h, o));
    if (persistence !== undefined) gpu.persistenceMode = persistence;
    const pstate = await r.read('performanceState', () => nvml.deviceGetPerformanceState(h, o));
    if (pstate !== undefined && pstate !== PSTATE_UNKNOWN) gpu.performanceState = pstate;
    // passive (datacenter) boards have no fan: a refusal is remembered
    const fan = await readUnlessRefused(nvml, gpu.uuid, 'fanSpeedPercent', r, () => nvml.deviceGetFanSpeed(h, o), nowMs);
    if (fan !== undefined) gpu.fanSpeedPercent = fan;
    const mode = await r.read('computeMode', () => nvml.deviceGetComputeMode(h, o));
    if (mode !== undefined) gpu.computeMode = COMPUTE_MODES[mode] ?? 'unknown';
  }

  // field values (the recovery action among them) in one batch, fabric, VBIOS/InfoROM, limits, BAR1
  await collectDeviceInfo(nvml, h, r, gpu, checks, nowMs);
}

const ALL_NVLINK_INDICES: readonly number[] = Array.from({ length: NVLINK_PROBE_LINKS }, (_, i) => i);

/** The link indices a GPU answered for when the whole range was last probed. */
interface NvLinkLayout {
  readonly links: readonly number[];
  readonly probedAtMs: number;
}

/**
 * Known link indices per binding and GPU UUID. Links are hardware: once the whole range has been
 * probed, later snapshots call only the links that exist (18 calls fewer per H100, each a driver
 * ioctl on real hardware); a known link that stops answering, or the TTL, brings back the full probe.
 */
const nvlinkLayouts = new WeakMap<NvmlBinding, Map<string, NvLinkLayout>>();

function knownNvLinks(nvml: NvmlBinding, uuid: string | undefined, nowMs: number): readonly number[] | undefined {
  if (uuid === undefined) return undefined;
  const layout = nvlinkLayouts.get(nvml)?.get(uuid);
  return layout !== undefined && nowMs - layout.probedAtMs < NVLINK_LAYOUT_TTL_MS ? layout.links : undefined;
}

function rememberNvLinks(nvml: NvmlBinding, uuid: string, layout: NvLinkLayout | undefined): void {
  let layouts = nvlinkLayouts.get(nvml);
  if (layouts === undefined) nvlinkLayouts.set(nvml, (layouts = new Map()));
  if (layout === undefined) {
    layouts.delete(uuid);
    return;
  }
  if (layouts.size >= MAX_NVLINK_LAYOUTS) layouts.clear();
  layouts.set(uuid, layout);
}

/**
 * Probes every link index below NVLINK_PROBE_LINKS (or the GPU's known links): INVALID_ARGUMENT /
 * NOT_SUPPORTED mean "no such link" and the probe goes on past them (gaps exist); another failure
 * is recorded and ends it. Where the DL error counters are NOT_SUPPORTED (NVLink5), the links'
 * counters are field values.
 */
async function collectNvLinks(
  nvml: NvmlBinding,
  h: NvmlDeviceHandle,
  r: GpuReader,
  uuid: string | undefined,
): Promise<GpuNvLink[] | undefined> {
  const o = r.options;
  const nowMs = Date.now();
  const known = knownNvLinks(nvml, uuid, nowMs);
  const links: GpuNvLink[] = [];
  let complete = true;
  const batched = known === undefined ? undefined : await readKnownLinkStates(nvml, h, r, known);
  for (const [i, link] of (known ?? ALL_NVLINK_INDICES).entries()) {
    if (r.lost) break;
    let active: boolean | undefined;
    try {
      active = batched !== undefined ? batched[i] : await nvml.deviceProbeNvLinkState(h, link, o);
    } catch (err) {
      if (o.signal?.aborted === true) throw err;
      r.record(`nvlinks[${link}].active`, err);
      complete = false;
      break;
    }
    if (active === undefined) {
      // a known link that no longer answers: probe the whole range next time
      if (known !== undefined) complete = false;
      continue;
    }
    links.push({ link, active, errors: {} });
  }
  if (links.length > 0 && !r.lost) await readDlCounters(nvml, h, r, links);
  if (uuid !== undefined && !r.lost) {
    if (!complete) rememberNvLinks(nvml, uuid, undefined);
    else if (known === undefined) rememberNvLinks(nvml, uuid, { links: links.map((l) => l.link), probedAtMs: nowMs });
  }
  if (links.length === 0) {
    if (!r.lost && r.errors.every((e) => !e.field.startsWith('nvlinks['))) r.unsupported.add('nvlinks');
    return undefined;
  }
  const withoutDlCounters = links.filter((l) => Object.keys(l.errors).length === 0);
  if (withoutDlCounters.length > 0 && !r.lost) await readNvLink5Counters(nvml, h, r, withoutDlCounters);
  return links;
}

/** NVML_NVLINK_STATE_ACTIVE, the value of NVML_FI_DEV_NVLINK_GET_STATE for an active link (0 inactive, 2 sleep). */
const NVLINK_STATE_ACTIVE = 1;

/**
 * The states of a GPU's known links from one batch of NVML_FI_DEV_NVLINK_GET_STATE (scopeId =
 * link) instead of a call per link: true / false, undefined for a link that no longer answers.
 * Undefined as a whole when the driver does not answer the field for any link (then each link is
 * called, as on the first probe).
 */
async function readKnownLinkStates(
  nvml: NvmlBinding,
  h: NvmlDeviceHandle,
  r: GpuReader,
  known: readonly number[],
): Promise<Array<boolean | undefined> | undefined> {
  let answers: NvmlFieldValue[];
  try {
    answers = await nvml.deviceGetFieldValues(
      h,
      known.map((link) => ({ fieldId: NvmlFieldId.NVLINK_GET_STATE, scopeId: link })),
      r.options,
    );
  } catch (err) {
    if (r.options.signal?.aborted === true) throw err;
    if (!isUnsupported(err)) r.record('nvlinks.state', err);
    return undefined;
  }
  if (answers.every((a) => isUnsupportedField(a.code))) return undefined;
  return known.map((link, i) => {
    const answer = answers[i];
    if (answer === undefined) return undefined;
    if (answer.code !== NvmlReturn.SUCCESS) {
      if (!isUnsupportedField(answer.code)) r.fieldValue(`nvlinks[${link}].active`, answer, 'nvmlDeviceGetFieldValues');
      return undefined;
    }
    return answer.value === NVLINK_STATE_ACTIVE;
  });
}

/** Field ids of a DL error counter on one link, where nvml.h has one (CRC data and ECC data only on links 0-11). */
function dlCounterField(name: keyof NvLinkErrorCounters, link: number): NvmlFieldRequest | undefined {
  const PER_LINK_IDS = 12;
  switch (name) {
    case 'replay':
      return { fieldId: NvmlFieldId.NVLINK_ERROR_DL_REPLAY, scopeId: link };
    case 'recovery':
      return { fieldId: NvmlFieldId.NVLINK_ERROR_DL_RECOVERY, scopeId: link };
    case 'crcFlit':
      return { fieldId: NvmlFieldId.NVLINK_ERROR_DL_CRC, scopeId: link };
    case 'crcData':
      if (link < 6) return { fieldId: NvmlFieldId.NVLINK_CRC_DATA_ERROR_COUNT_L0 + link, scopeId: 0 };
      return link < PER_LINK_IDS ? { fieldId: NvmlFieldId.NVLINK_CRC_DATA_ERROR_COUNT_L6 + link - 6, scopeId: 0 } : undefined;
    case 'eccData':
      return link < PER_LINK_IDS ? { fieldId: NvmlFieldId.NVLINK_ECC_DATA_ERROR_COUNT_L0 + link, scopeId: 0 } : undefined;
    default:
      return undefined;
  }
}

/**
 * Reads the DL error counters (replay, recovery, CRC flit, CRC data, ECC data) of `links`: one
 * batch of field values for every counter nvml.h has an id for, then nvmlDeviceGetNvLinkErrorCounter
 * for the rest and for whatever the batch did not answer (an older driver without the link-scoped
 * ids). On an H100 that is 1 + 12 calls instead of 90. Where the DL counters are NOT_SUPPORTED
 * (NVLink5), the links' counters are field values of their own.
 */
async function readDlCounters(nvml: NvmlBinding, h: NvmlDeviceHandle, r: GpuReader, links: readonly GpuNvLink[]): Promise<void> {
  // Indexed loops, no tuple destructuring and no closure over the loop's variables: this runs for
  // 18 links × 5 counters per GPU, and those allocated at every step (~15% of a collection's
  // allocations; bench/README.md, "Agent, 2026-12-04 (evening)").
  const requests: NvmlFieldRequest[] = [];
  // per (link, counter): the index of its answer in the batch, -1 when nvml.h has no id for it
  const slots: number[] = [];
  for (let i = 0; i < links.length; i++) {
    const link = (links[i] as GpuNvLink).link;
    for (let c = 0; c < NVLINK_COUNTERS.length; c++) {
      const request = dlCounterField((NVLINK_COUNTERS[c] as NvLinkCounterEntry)[0], link);
      slots.push(request === undefined ? -1 : requests.push(request) - 1);
    }
  }
  let answers: NvmlFieldValue[] = [];
  try {
    answers = await nvml.deviceGetFieldValues(h, requests, r.options);
  } catch (err) {
    if (r.options.signal?.aborted === true) throw err;
    // no field values at all (a driver without them answers NOT_SUPPORTED): every counter by call
    if (!isUnsupported(err)) r.record('nvlinks.errors', err);
    if (r.lost) return;
  }
  let slot = 0;
  for (let i = 0; i < links.length; i++) {
    const l = links[i] as GpuNvLink;
    for (let c = 0; c < NVLINK_COUNTERS.length; c++) {
      const entry = NVLINK_COUNTERS[c] as NvLinkCounterEntry;
      const name = entry[0];
      const field = NVLINK_COUNTER_FIELDS[name];
      const answer = answers[slots[slot++] ?? -1];
      if (answer !== undefined && !isUnsupportedField(answer.code)) {
        const value = r.fieldValue(field, answer, 'nvmlDeviceGetFieldValues');
        if (value !== undefined) l.errors[name] = value;
        continue;
      }
      // a counter the GPU lacks on one link it lacks on all (NVLink5 has none): 90 calls fewer on a B200
      if (r.lost || r.unsupported.has(field)) continue;
      const value = await readDlCounterByCall(nvml, h, r, field, l.link, entry[1]);
      if (value !== undefined) l.errors[name] = value;
    }
  }
}

/**
 * One DL counter by nvmlDeviceGetNvLinkErrorCounter. Its own function, so the loop above captures
 * nothing in a closure (a captured loop variable costs a context object per iteration).
 */
function readDlCounterByCall(
  nvml: NvmlBinding,
  h: NvmlDeviceHandle,
  r: GpuReader,
  field: string,
  link: number,
  counter: NvLinkErrorCounter,
): Promise<number | undefined> {
  return r.read(field, () => nvml.deviceGetNvLinkErrorCounter(h, link, counter, r.options));
}

/** Fills the NVLink5 counters of `links` from one batch of field values (scopeId = link). */
async function readNvLink5Counters(nvml: NvmlBinding, h: NvmlDeviceHandle, r: GpuReader, links: readonly GpuNvLink[]): Promise<void> {
  const requests = links.flatMap((l) => NVLINK5_FIELDS.map(([, fieldId]) => ({ fieldId, scopeId: l.link })));
  const answers = await r.read('nvlinks.errors.nvlink5', () => nvml.deviceGetFieldValues(h, requests, r.options));
  if (answers === undefined) return;
  links.forEach((l, i) => {
    NVLINK5_FIELDS.forEach(([name], j) => {
      const value = r.fieldValue(`nvlinks.errors.${name}`, answers[i * NVLINK5_FIELDS.length + j], 'nvmlDeviceGetFieldValues');
      if (value !== undefined) l.errors[name] = value;
    });
  });
}

async function readSystem<T>(
  field: string,
  errors: NvmlFieldError[],
  signal: AbortSignal | undefined,
  fn: () => Promise<T>,
): Promise<T | undefined> {
  try {
    return await fn();
  } catch (err) {
    if (signal?.aborted === true) throw err;
    if (!isUnsupported(err)) errors.push({ field, code: errorCode(err), error: errorText(err) });
    return undefined;
  }
}

/** Collects every GPU's snapshot; never throws for NVML failures (only when `signal` aborts). */
export async function collectSnapshot(options: CollectSnapshotOptions): Promise<NvmlSnapshot> {
  const { nvml, signal } = options;
  const clock = options.now ?? ((): Date => new Date());
  const collectedAt = clock().toISOString();
  const checks = new Set(options.checks ?? ALL_NVML_CHECKS);
  const errors: NvmlFieldError[] = [];
  const unavailable = (reason: string, extra: Partial<NvmlUnavailable> = {}): NvmlSnapshot => ({
    collectedAt,
    nvml: { ...extra, available: false, reason: clip(reason, MAX_REASON_CHARS) },
    gpus: [],
    errors,
  });

  try {
    await nvml.init(signal === undefined ? {} : { signal });
  } catch (err) {
    if (signal?.aborted === true) throw err;
    if (err instanceof NvmlLibraryError) return unavailable(err.message);
    if (err instanceof NvmlError) return unavailable(`NVML initialisation failed: ${err.message}`, { code: err.code });
    return unavailable(`NVML initialisation failed: ${errorText(err)}`);
  }

  const o: NvmlCallOptions = signal === undefined ? {} : { signal };
  const driverVersion = await readSystem('driverVersion', errors, signal, () => nvml.systemGetDriverVersion(o));
  const nvmlVersion = await readSystem('nvmlVersion', errors, signal, () => nvml.systemGetNvmlVersion(o));
  const cuda = await readSystem('cudaDriverVersion', errors, signal, () => nvml.systemGetCudaDriverVersion(o));
  const versions =
    compact({ driverVersion, nvmlVersion, cudaDriverVersion: cuda === undefined ? undefined : formatCudaVersion(cuda) }) ?? {};

  let count: number;
  try {
    count = await nvml.deviceGetCount(o);
  } catch (err) {
    if (signal?.aborted === true) throw err;
    return unavailable(`cannot count GPUs: ${errorText(err)}`, { ...versions, code: errorCode(err) });
  }
  if (count === 0) return unavailable('no GPUs found', versions);

  const gpus = await Promise.all(Array.from({ length: count }, (_, index) => collectGpu(nvml, index, checks, signal, clock)));
  return { collectedAt, nvml: { available: true, ...versions }, gpus, errors };
}
