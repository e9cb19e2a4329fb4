/**
 * The device-info part of a GPU's snapshot: field values (HBM temperature, energy, violation
 * time, PCIe error counts, the recovery action) in one nvmlDeviceGetFieldValues call per GPU,
 * the NVSwitch fabric state, VBIOS and InfoROM versions and validity, the power-limit range and
 * BAR1 use. Static answers (versions, InfoROM validity, limit range) are cached per GPU for
 * STATIC_INFO_TTL_MS, so a snapshot costs one field-value call, one fabric call and one BAR1
 * call per GPU once they are known.
 */
import {
  InforomObject,
  NvmlFieldId,
  type NvmlBinding,
  type NvmlCallOptions,
  type NvmlDeviceHandle,
  type NvmlFieldValue,
  type NvmlGpuFabricInfo,
} from './binding.js';
import type {
  GpuFabric,
  GpuFabricHealthSummary,
  GpuFabricState,
  GpuInforom,
  GpuPower,
  GpuRecoveryAction,
  GpuSnapshot,
  NvmlCheck,
} from './types.js';

/** What the collector's per-GPU reader offers (collector.ts GpuReader). */
export interface DeviceInfoReader {
  readonly unsupported: Set<string>;
  readonly errors: readonly unknown[];
  readonly lost: boolean;
  readonly options: NvmlCallOptions;
  read<T>(field: string, fn: () => Promise<T>): Promise<T | undefined>;
  fieldValue(field: string, answer: NvmlFieldValue | undefined, fn: string): number | undefined;
  collapse(group: string, fields: readonly string[]): void;
}

/** Versions and limits change only with a firmware flash or a driver reload: re-read them this often. */
export const STATIC_INFO_TTL_MS = 10 * 60_000;
const MILLIWATTS_PER_WATT = 1000;
/** nvmlDeviceGpuRecoveryAction_t values, in order (nvml.h). */
const RECOVERY_ACTIONS: readonly GpuRecoveryAction[] = ['none', 'gpuReset', 'nodeReboot', 'drainP2p', 'drainAndReset', 'gpuResetBus'];
/** NVML_GPU_FABRIC_STATE_* in order. */
const FABRIC_STATES: readonly GpuFabricState[] = ['notSupported', 'notStarted', 'inProgress', 'completed'];
/** NVML_GPU_FABRIC_HEALTH_SUMMARY_* in order. */
const FABRIC_HEALTH_SUMMARIES: readonly GpuFabricHealthSummary[] = ['notSupported', 'healthy', 'unhealthy', 'limitedCapacity'];
/** NVML_GPU_FABRIC_HEALTH_MASK_SHIFT_DEGRADED_BW 0, WIDTH 3, DEGRADED_BW_TRUE 1 (nvml.h). */
const FABRIC_DEGRADED_BW_MASK = 0x3;
const FABRIC_DEGRADED_BW_TRUE = 1;

type GpuField = (gpu: GpuSnapshot, value: number) => void;

/** One field of the batch: the check that wants it, its snapshot name, and where its value goes. */
interface BatchField {
  check: NvmlCheck;
  fieldId: number;
  name: string;
  apply: GpuField;
  /** A slow counter's: where the time of its reading goes (it is re-read at most every SLOW_COUNTER_REFRESH_MS). */
  readAt?: (gpu: GpuSnapshot, at: string) => void;
}

/** Stamps `pcie.countersReadAt` with the oldest reading among the PCIe counters shown. */
export function stampPcieCounters(gpu: GpuSnapshot, at: string): void {
  const before = gpu.pcie?.countersReadAt;
  gpu.pcie = { ...gpu.pcie, countersReadAt: before !== undefined && before < at ? before : at };
}

const BATCH_FIELDS: readonly BatchField[] = [
  {
    check: 'temperature',
    fieldId: NvmlFieldId.MEMORY_TEMP,
    name: 'temperature.memoryCelsius',
    apply: (g, v) => (g.temperature = { ...g.temperature, memoryCelsius: v }),
  },
  {
    check: 'temperature',
    fieldId: NvmlFieldId.PERF_POLICY_THERMAL,
    name: 'violationTime.thermalNs',
    apply: (g, v) => (g.violationTime = { ...g.violationTime, thermalNs: v }),
    readAt: (g, at) => (g.violationTime = { ...g.violationTime, thermalReadAt: at }),
  },
  {
    check: 'power',
    fieldId: NvmlFieldId.TOTAL_ENERGY_CONSUMPTION,
    name: 'energyMillijoules',
    apply: (g, v) => (g.energyMillijoules = v),
    readAt: (g, at) => (g.energyReadAt = at),
  },
  {
    check: 'power',
    fieldId: NvmlFieldId.PERF_POLICY_POWER,
    name: 'violationTime.powerNs',
    apply: (g, v) => (g.violationTime = { ...g.violationTime, powerNs: v }),
  },
  {
    check: 'pcie',
    fieldId: NvmlFieldId.PCIE_REPLAY_ROLLOVER_COUNTER,
    name: 'pcie.replayRolloverCounter',
    apply: (g, v) => (g.pcie = { ...g.pcie, replayRolloverCounter: v }),
    readAt: stampPcieCounters,
  },
  {
    check: 'pcie',
    fieldId: NvmlFieldId.PCIE_COUNT_CORRECTABLE_ERRORS,
    name: 'pcie.correctableErrors',
    apply: (g, v) => (g.pcie = { ...g.pcie, correctableErrors: v }),
    readAt: stampPcieCounters,
  },
  {
    check: 'modes',
    fieldId: NvmlFieldId.GPU_RECOVERY_ACTION,
    name: 'recoveryAction',
    apply: (g, v) => (g.recoveryAction = RECOVERY_ACTIONS[v] ?? 'unknown'),
  },
];

/** The map of `caches` that belongs to `nvml` (one NVML session), made on first use. */
function cacheOf<V>(caches: WeakMap<NvmlBinding, Map<string, V>>, nvml: NvmlBinding): Map<string, V> {
  // created and stored at once: the GPUs of a snapshot are read concurrently, each must find the same map
  let cache = caches.get(nvml);
  if (cache === undefined) caches.set(nvml, (cache = new Map<string, V>()));
  return cache;
}

/** Stores `value` as the newest entry, dropping the oldest beyond MAX_STATIC_ENTRIES. */
function setBounded<V>(cache: Map<string, V>, key: string, value: V): void {
  cache.delete(key);
  cache.set(key, value);
  while (cache.size > MAX_STATIC_ENTRIES) {
    const oldest = cache.keys().next();
    if (oldest.done === true) break;
    cache.delete(oldest.value);
  }
}

/**
 * Cumulative counters a real driver is slow to read are re-read at most this often per GPU, and
 * say when they were read: on an H200 (R580; bench/README.md, "A real H200") the energy counter
 * takes ~3 ms (it did not move within 20 ms), the thermal violation time 0.58 ms, the replay
 * counter 0.32 ms and each PCIe field ~0.15 ms, together ~4.2 of a GPU's ~6 ms. Scoring compares
 * these counters with thresholds, which a reading at most 5 s old serves as well.
 */
export const SLOW_COUNTER_REFRESH_MS = 5_000;

/** A slow counter's last reading. */
export interface CounterReading {
  readonly value: number;
  readonly atMs: number;
}

/** The last reading per binding, GPU UUID and counter (snapshot field name). */
const counterReadings = new WeakMap<NvmlBinding, Map<string, CounterReading>>();

function freshReading(nvml: NvmlBinding, uuid: string | undefined, counter: string, nowMs: number): CounterReading | undefined {
  const last = uuid === undefined ? undefined : cacheOf(counterReadings, nvml).get(`${uuid}|${counter}`);
  // a clock that went back makes the reading stale too
  return last === undefined || nowMs - last.atMs >= SLOW_COUNTER_REFRESH_MS || nowMs < last.atMs ? undefined : last;
}

function rememberReading(nvml: NvmlBinding, uuid: string | undefined, counter: string, reading: CounterReading): void {
  if (uuid !== undefined) setBounded(cacheOf(counterReadings, nvml), `${uuid}|${counter}`, reading);
}

/** Reads a slow counter through `read`, or repeats its reading while it is fresh. */
export async function readSlowCounter(
  nvml: NvmlBinding,
  uuid: string | undefined,
  counter: string,
  r: DeviceInfoReader,
  read: () => Promise<number>,
  nowMs: number,
): Promise<CounterReading | undefined> {
  const last = freshReading(nvml, uuid, counter, nowMs);
  if (last !== undefined) return last;
  const value = await r.read(counter, read);
  if (value === undefined) return undefined;
  const reading = { value, atMs: nowMs };
  rememberReading(nvml, uuid, counter, reading);
  return reading;
}

/** Reads every field value the wanted checks need in one nvmlDeviceGetFieldValues call; a fresh slow counter is repeated instead. */
export async function collectFieldBatch(
  nvml: NvmlBinding,
  h: NvmlDeviceHandle,
  r: DeviceInfoReader,
  gpu: GpuSnapshot,
  checks: ReadonlySet<NvmlCheck>,
  nowMs: number = Date.now(),
): Promise<void> {
  if (r.lost) return;
  const fields: BatchField[] = [];
  for (const f of BATCH_FIELDS) {
    if (!checks.has(f.check)) continue;
    const last = f.readAt === undefined ? undefined : freshReading(nvml, gpu.uuid, f.name, nowMs);
    if (last === undefined) {
      fields.push(f);
      continue;
    }
    f.apply(gpu, last.value);
    f.readAt?.(gpu, new Date(last.atMs).toISOString());
  }
  if (fields.length === 0) return;
  const answers = await r.read('fieldValues', () =>
    nvml.deviceGetFieldValues(
      h,
      fields.map((f) => ({ fieldId: f.fieldId })),
      r.options,
    ),
  );
  if (answers === undefined) {
    // the call itself is missing or NOT_SUPPORTED: so is every field it carries
    if (r.unsupported.delete('fieldValues')) for (const f of fields) r.unsupported.add(f.name);
    return;
  }
  const readAt = new Date(nowMs).toISOString();
  fields.forEach((f, i) => {
    const value = r.fieldValue(f.name, answers[i], 'nvmlDeviceGetFieldValues');
    if (value === undefined) return;
    f.apply(gpu, value);
    if (f.readAt === undefined) return;
    f.readAt(gpu, readAt);
    rememberReading(nvml, gpu.uuid, f.name, { value, atMs: nowMs });
  });
}

/** The snapshot form of an nvmlGpuFabricInfo answer. */
export function toGpuFabric(info: NvmlGpuFabricInfo): GpuFabric {
  const fabric: GpuFabric = {
    state: FABRIC_STATES[info.state] ?? 'unknown',
    status: info.status,
    cliqueId: info.cliqueId,
    clusterUuid: info.clusterUuid,
  };
  if (info.healthMask !== undefined) {
    fabric.healthMask = info.healthMask;
    fabric.degradedBandwidth = (info.healthMask & FABRIC_DEGRADED_BW_MASK) === FABRIC_DEGRADED_BW_TRUE;
  }
  if (info.healthSummary !== undefined) fabric.healthSummary = FABRIC_HEALTH_SUMMARIES[info.healthSummary] ?? 'unknown';
  return fabric;
}

/** Static answers of one GPU, and the fields that turned out unsupported while reading them. */
interface StaticEntry {
  readonly atMs: number;
  readonly patch: Partial<GpuSnapshot>;
  readonly unsupported: readonly string[];
}

/** Per binding (one NVML session), per GPU UUID and part. */
const staticCache = new WeakMap<NvmlBinding, Map<string, StaticEntry>>();
/** Entries per map and binding at most: a node has at most 64 GPUs, with six static parts, four refusals or five slow counters each. */
const MAX_STATIC_ENTRIES = 512;

/**
 * Reads a GPU's static `part` through `read`, or replays the cached answer while it is fresh.
 * An answer is cached only when every read of it succeeded or was unsupported (no errors, not lost).
 * The collector uses it too, for what never changes while NVML is loaded (names, PCI ids,
 * temperature thresholds, maximum clocks and PCIe link): a snapshot then makes 12 calls fewer per GPU.
 */
export async function cachedStatic(
  nvml: NvmlBinding,
  gpu: GpuSnapshot,
  part: string,
  r: DeviceInfoReader,
  read: () => Promise<Partial<GpuSnapshot>>,
  nowMs: number,
): Promise<void> {
  const key = gpu.uuid === undefined ? undefined : `${gpu.uuid}|${part}`;
  const cache = cacheOf(staticCache, nvml);
  const hit = key === undefined ? undefined : cache.get(key);
  if (hit !== undefined && nowMs - hit.atMs < STATIC_INFO_TTL_MS) {
    mergePatch(gpu, hit.patch);
    for (const f of hit.unsupported) r.unsupported.add(f);
    return;
  }
  const unsupportedBefore = new Set(r.unsupported);
  const errorsBefore = r.errors.length;
  const patch = await read();
  mergePatch(gpu, patch);
  if (key === undefined || r.lost || r.errors.length !== errorsBefore) return;
  setBounded(cache, key, { atMs: nowMs, patch, unsupported: [...r.unsupported].filter((f) => !unsupportedBefore.has(f)) });
}

/** Per binding (one NVML session), per GPU UUID and field: when the GPU last answered NOT_SUPPORTED for it. */
const refusals = new WeakMap<NvmlBinding, Map<string, number>>();

/**
 * Reads `field` unless this GPU refused it (NOT_SUPPORTED) within STATIC_INFO_TTL_MS. For what a
 * board has or lacks (a fan, page retirement): a real driver still takes 0.3 ms per refusal (H200,
 * R580; bench/README.md), each snapshot. The refusal is replayed as unsupported.
 */
export async function readUnlessRefused<T>(
  nvml: NvmlBinding,
  uuid: string | undefined,
  field: string,
  r: DeviceInfoReader,
  read: () => Promise<T>,
  nowMs: number,
): Promise<T | undefined> {
  const cache = cacheOf(refusals, nvml);
  const key = uuid === undefined ? undefined : `${uuid}|${field}`;
  const refusedAt = key === undefined ? undefined : cache.get(key);
  if (refusedAt !== undefined && nowMs - refusedAt < STATIC_INFO_TTL_MS) {
    r.unsupported.add(field);
    return undefined;
  }
  const before = r.unsupported.has(field);
  const value = await r.read(field, read);
  if (key === undefined) return value;
  if (!before && r.unsupported.has(field)) setBounded(cache, key, nowMs);
  else cache.delete(key);
  return value;
}

/** Assigns `patch` to `gpu`; a group both have (power, temperature, clocks, PCIe) keeps the live values beside the cached ones. */
function mergePatch(gpu: GpuSnapshot, patch: Partial<GpuSnapshot>): void {
  const { power, temperature, clocks, pcie, ...rest } = patch;
  Object.assign(gpu, rest);
  if (power !== undefined) gpu.power = gpu.power === undefined ? power : { ...gpu.power, ...power };
  if (temperature !== undefined) gpu.temperature = gpu.temperature === undefined ? temperature : { ...gpu.temperature, ...temperature };
  if (clocks !== undefined) gpu.clocks = gpu.clocks === undefined ? clocks : { ...gpu.clocks, ...clocks };
  if (pcie !== undefined) gpu.pcie = gpu.pcie === undefined ? pcie : { ...gpu.pcie, ...pcie };
}

async function readInventory(nvml: NvmlBinding, h: NvmlDeviceHandle, r: DeviceInfoReader): Promise<Partial<GpuSnapshot>> {
  const o = r.options;
  const patch: Partial<GpuSnapshot> = {};
  const vbios = await r.read('vbiosVersion', () => nvml.deviceGetVbiosVersion(h, o));
  if (vbios !== undefined) patch.vbiosVersion = vbios;
  const inforom: GpuInforom = {};
  const image = await r.read('inforom.imageVersion', () => nvml.deviceGetInforomImageVersion(h, o));
  if (image !== undefined) inforom.imageVersion = image;
  const objects = [
    ['oemVersion', InforomObject.OEM],
    ['eccVersion', InforomObject.ECC],
    ['powerVersion', InforomObject.POWER],
  ] as const;
  for (const [name, object] of objects) {
    const version = await r.read(`inforom.${name}`, () => nvml.deviceGetInforomVersion(h, object, o));
    if (version !== undefined) inforom[name] = version;
  }
  const valid = await r.read('inforom.valid', () => nvml.deviceValidateInforom(h, o));
  if (valid !== undefined) inforom.valid = valid;
  if (Object.keys(inforom).length > 0) patch.inforom = inforom;
  r.collapse('inforom', ['inforom.imageVersion', ...objects.map(([name]) => `inforom.${name}`), 'inforom.valid']);
  return patch;
}

async function readPowerLimits(nvml: NvmlBinding, h: NvmlDeviceHandle, r: DeviceInfoReader): Promise<Partial<GpuSnapshot>> {
  const o = r.options;
  const power: GpuPower = {};
  const range = await r.read('power.limitRange', () => nvml.deviceGetPowerManagementLimitConstraints(h, o));
  if (range !== undefined) {
    power.minLimitWatts = range.min / MILLIWATTS_PER_WATT;
    power.maxLimitWatts = range.max / MILLIWATTS_PER_WATT;
  }
  const def = await r.read('power.defaultLimitWatts', () => nvml.deviceGetPowerManagementDefaultLimit(h, o));
  if (def !== undefined) power.defaultLimitWatts = def / MILLIWATTS_PER_WATT;
  r.collapse('power.limits', ['power.limitRange', 'power.defaultLimitWatts']);
  return Object.keys(power).length > 0 ? { power } : {};
}

/**
 * Everything this module reads for one GPU, by check group: `modes` (inventory: fabric, VBIOS,
 * InfoROM), `power` (limit range), `memory` (BAR1), and the field-value batch.
 */
export async function collectDeviceInfo(
  nvml: NvmlBinding,
  h: NvmlDeviceHandle,
  r: DeviceInfoReader,
  gpu: GpuSnapshot,
  checks: ReadonlySet<NvmlCheck>,
  nowMs: number = Date.now(),
): Promise<void> {
  const o = r.options;
  await collectFieldBatch(nvml, h, r, gpu, checks, nowMs);
  if (checks.has('memory')) {
    const bar1 = await r.read('bar1', () => nvml.deviceGetBar1MemoryInfo(h, o));
    if (bar1 !== undefined) gpu.bar1 = { totalBytes: bar1.total, usedBytes: bar1.used, freeBytes: bar1.free };
  }
  if (checks.has('power')) await cachedStatic(nvml, gpu, 'power', r, () => readPowerLimits(nvml, h, r), nowMs);
  if (checks.has('modes')) {
    const fabric = await r.read('fabric', () => nvml.deviceGetGpuFabricInfo(h, o));
    if (fabric !== undefined) gpu.fabric = toGpuFabric(fabric);
    await cachedStatic(nvml, gpu, 'inventory', r, () => readInventory(nvml, h, r), nowMs);
  }
}
