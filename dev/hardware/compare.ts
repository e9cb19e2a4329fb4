/**
 * Field-by-field comparison of an agent snapshot with nvidia-smi's readings of the same GPUs.
 * Pure: the caller gathers the snapshot and one or two nvidia-smi documents (taken just before
 * and just after the snapshot) and this decides, per field, OK / DIFF / MISSING / EXTRA / NA.
 * Values that move (temperature, power, clocks, memory in use, P-state, throttle reasons,
 * processes) pass when ours lies within the tolerance of the range the two readings span, or
 * matches either reading; identity, limits, thresholds, modes and error counters must be equal.
 */
import type { NodeSnapshotDocument } from '../../agent/api/snapshot-document.js';
import { toKernelBusId } from '../../agent/nvml/pci-bus-id.js';
import type { GpuSnapshot, NvmlFieldError } from '../../agent/nvml/types.js';
import { clip } from '../../lib/text.js';
import type { NvidiaSmiLog, SmiGpu } from './nvidia-smi-log.js';
import type { SmiNvLinkGpu } from './nvlink-status.js';

/**
 * OK: both agree. DIFF: both have a value and they disagree. MISSING: nvidia-smi has a value
 * and our snapshot does not. EXTRA: ours has a value where nvidia-smi prints N/A. NA: neither has one.
 */
export type FieldStatus = 'OK' | 'DIFF' | 'MISSING' | 'EXTRA' | 'NA';

/** Every status, in table order. */
export const FIELD_STATUSES: readonly FieldStatus[] = ['OK', 'DIFF', 'MISSING', 'EXTRA', 'NA'];

/** One row of the comparison. */
export interface FieldComparison {
  field: string;
  /** Our value in nvidia-smi's unit ("" when absent). */
  ours: string;
  /** nvidia-smi's value; a range `a … b` when the two readings differ ("" when N/A). */
  nvidiaSmi: string;
  status: FieldStatus;
  note?: string;
}

/** The rows of one GPU. */
export interface GpuComparison {
  /** NVML index, or -1 for a GPU only nvidia-smi lists. */
  index: number;
  name?: string;
  uuid?: string;
  pciBusId?: string;
  fields: FieldComparison[];
}

/** Tolerances for values that move between two reads. */
export interface Tolerances {
  temperatureC: number;
  /** Fraction of nvidia-smi's reading, but at least `powerMinW`. */
  powerFraction: number;
  powerMinW: number;
  /** Printed with two decimals. */
  powerLimitW: number;
  /** Totals are printed as whole MiB (rounded down). */
  memoryTotalMiB: number;
  /** Fraction of the GPU's total memory, but at least `memoryInUseMinMiB`. */
  memoryInUseFraction: number;
  memoryInUseMinMiB: number;
  clockFraction: number;
  clockMinMHz: number;
  fanPercent: number;
  /** Fraction of nvidia-smi's per-process reading, but at least `memoryInUseMinMiB`. */
  processMemoryFraction: number;
  /** Thresholds derived from TLimit: current temperature and headroom may be read a moment apart. */
  tlimitThresholdC: number;
  /** BAR1 used/free move with mappings. */
  bar1InUseMiB: number;
}

/** The documented defaults (docs/hardware-validation.md). */
export const DEFAULT_TOLERANCES: Readonly<Tolerances> = Object.freeze({
  temperatureC: 3,
  powerFraction: 0.1,
  powerMinW: 2,
  powerLimitW: 0.5,
  memoryTotalMiB: 1,
  memoryInUseFraction: 0.01,
  memoryInUseMinMiB: 64,
  clockFraction: 0.1,
  clockMinMHz: 30,
  fanPercent: 5,
  processMemoryFraction: 0.05,
  tlimitThresholdC: 1,
  bar1InUseMiB: 16,
});

/** What {@link compareSnapshot} compares. */
export interface ComparisonInput {
  snapshot: Pick<NodeSnapshotDocument, 'nvml' | 'gpus'> & { errors?: NvmlFieldError[] };
  /** One or two nvidia-smi documents (before and after the snapshot). */
  readings: readonly NvidiaSmiLog[];
  /** `nvidia-smi nvlink --status`, when it ran. */
  nvlinkStatus?: readonly SmiNvLinkGpu[];
  tolerances?: Readonly<Tolerances>;
}

/** The whole comparison. */
export interface ComparisonReport {
  system: FieldComparison[];
  gpus: GpuComparison[];
  notes: string[];
  counts: Record<FieldStatus, number>;
  /** No DIFF and no MISSING. */
  passed: boolean;
}

const MIB = 1024 * 1024;
const MAX_CELL_CHARS = 96;

type Num = number | undefined;

/** A number as nvidia-smi prints it: up to two decimals, trailing zeros dropped. */
function fmt(n: number, unit: string): string {
  const text = Number.isInteger(n) ? String(n) : n.toFixed(2).replace(/\.?0+$/, '');
  return unit === '' ? text : `${text} ${unit}`;
}

function present<T>(values: readonly (T | undefined)[]): T[] {
  return values.filter((v): v is T => v !== undefined);
}

/** Why our snapshot has no value for `path`: unsupported, an NVML error (the GPU's, or a system one), a lost GPU. */
function absence(gpu: GpuSnapshot | undefined, systemErrors: readonly NvmlFieldError[], path: string): string {
  const group = path.split(/[.[]/)[0] ?? path;
  if (gpu?.lost === true) return 'ours: GPU lost';
  if (gpu !== undefined && (gpu.unsupported.includes(path) || gpu.unsupported.includes(group))) return 'ours: NOT_SUPPORTED';
  const err = (gpu?.errors ?? systemErrors).find((e) => e.field === path || e.field === group || e.field.startsWith(`${group}.`));
  if (err !== undefined) return `ours: NVML error ${err.code} (${clip(err.error, 80)})`;
  return 'absent from our snapshot';
}

/** A row builder for one GPU (or the system rows when `gpu` is undefined). */
class Rows {
  readonly rows: FieldComparison[] = [];

  constructor(
    private readonly gpu: GpuSnapshot | undefined,
    private readonly systemErrors: readonly NvmlFieldError[] = [],
  ) {}

  private push(row: FieldComparison): void {
    this.rows.push({ ...row, ours: clip(row.ours, MAX_CELL_CHARS), nvidiaSmi: clip(row.nvidiaSmi, MAX_CELL_CHARS) });
  }

  /** Presence rows shared by every comparator; returns true when it already decided. */
  private presence(field: string, path: string, ours: string | undefined, smi: string, smiPresent: boolean): boolean {
    if (ours === undefined && !smiPresent) this.push({ field, ours: '', nvidiaSmi: '', status: 'NA' });
    else if (ours === undefined)
      this.push({ field, ours: '', nvidiaSmi: smi, status: 'MISSING', note: absence(this.gpu, this.systemErrors, path) });
    else if (!smiPresent) this.push({ field, ours, nvidiaSmi: '', status: 'EXTRA', note: 'nvidia-smi prints N/A' });
    else return false;
    return true;
  }

  /** A number that must lie within `tolerance(v)` of the range the readings span. */
  number(
    field: string,
    path: string,
    ours: Num,
    readings: readonly Num[],
    unit: string,
    tolerance: (v: number) => number = () => 0,
    note?: string,
  ): void {
    const values = present(readings);
    const lo = Math.min(...values);
    const hi = Math.max(...values);
    const smi = values.length === 0 ? '' : lo === hi ? fmt(lo, unit) : `${fmt(lo, '')} … ${fmt(hi, unit)}`;
    if (this.presence(field, path, ours === undefined ? undefined : fmt(ours, unit), smi, values.length > 0) || ours === undefined) return;
    const within = ours >= lo - tolerance(lo) && ours <= hi + tolerance(hi);
    const tol = tolerance(hi);
    const tolNote = tol > 0 ? `±${fmt(tol, unit)}` : undefined;
    const text = [note, tolNote].filter((t) => t !== undefined).join('; ');
    this.push({ field, ours: fmt(ours, unit), nvidiaSmi: smi, status: within ? 'OK' : 'DIFF', ...(text !== '' ? { note: text } : {}) });
  }

  /** A value that must equal one of the readings (the first, for values that do not move). */
  exact(
    field: string,
    path: string,
    ours: string | undefined,
    readings: readonly (string | undefined)[],
    equal: (a: string, b: string) => boolean = (a, b) => a === b,
  ): void {
    const values = [...new Set(present(readings))];
    const smi = values.join(' | ');
    if (this.presence(field, path, ours, smi, values.length > 0) || ours === undefined) return;
    this.push({ field, ours, nvidiaSmi: smi, status: values.some((v) => equal(ours, v)) ? 'OK' : 'DIFF' });
  }

  /** Both sides have a value or neither does; the values are shown, not compared. */
  presenceOnly(field: string, path: string, ours: string | undefined, smi: string | undefined, note: string): void {
    if (this.presence(field, path, ours, smi ?? '', smi !== undefined) || ours === undefined) return;
    this.push({ field, ours, nvidiaSmi: smi ?? '', status: 'OK', note });
  }

  note(field: string, ours: string, nvidiaSmi: string, status: FieldStatus, note: string): void {
    this.push({ field, ours, nvidiaSmi, status, note });
  }
}

const yesNo = (b: boolean | undefined): string | undefined => (b === undefined ? undefined : b ? 'Enabled' : 'Disabled');
const list = (names: readonly string[] | undefined): string | undefined =>
  names === undefined ? undefined : names.length === 0 ? 'none' : [...names].sort().join(', ');
const mib = (bytes: Num): Num => (bytes === undefined ? undefined : bytes / MIB);

/** Compact "0-3,6-9" form of sorted link indices. */
function ranges(indices: readonly number[]): string {
  if (indices.length === 0) return 'none';
  const sorted = [...indices].sort((a, b) => a - b);
  const parts: string[] = [];
  let start = sorted[0] ?? 0;
  let prev = start;
  for (const i of [...sorted.slice(1), Number.NaN]) {
    if (i === prev + 1) {
      prev = i;
      continue;
    }
    parts.push(start === prev ? String(start) : `${start}-${prev}`);
    start = i;
    prev = i;
  }
  return parts.join(',');
}

function busKey(busId: string | undefined): string | undefined {
  return busId === undefined ? undefined : toKernelBusId(busId);
}

function smiKey(g: SmiGpu): string | undefined {
  return busKey(g.pciBusId ?? g.id);
}

/** nvidia-smi's GPU matching ours: by PCI bus id, then by UUID. */
function matchSmi(gpu: GpuSnapshot, log: NvidiaSmiLog): SmiGpu | undefined {
  const key = busKey(gpu.pciBusId);
  return (
    log.gpus.find((g) => key !== undefined && smiKey(g) === key) ?? log.gpus.find((g) => gpu.uuid !== undefined && g.uuid === gpu.uuid)
  );
}

/** nvidia-smi's sections that hold readings (for the typed pickers in compareGpu). */
type SmiGroup =
  'memory' | 'temperature' | 'power' | 'utilization' | 'clocks' | 'ecc' | 'retiredPages' | 'remappedRows' | 'pcie' | 'migMode' | 'bar1';

const yesNoAll = (values: readonly (boolean | undefined)[]): (string | undefined)[] => values.map(yesNo);
const textAll = (values: readonly (number | undefined)[]): (string | undefined)[] =>
  values.map((n) => (n === undefined ? undefined : String(n)));
const pstate = (n: Num): string | undefined => (n === undefined ? undefined : `P${n}`);

function compareGpu(
  gpu: GpuSnapshot,
  smi: readonly SmiGpu[],
  link: SmiNvLinkGpu | undefined,
  linksRan: boolean,
  t: Readonly<Tolerances>,
): FieldComparison[] {
  const r = new Rows(gpu);
  const first = smi[0];
  /** One section member from every reading (values that move). */
  const all = <G extends SmiGroup, K extends keyof SmiGpu[G]>(group: G, key: K): SmiGpu[G][K][] => smi.map((g) => g[group][key]);
  /** The same from the first reading only (values that do not move). */
  const once = <G extends SmiGroup, K extends keyof SmiGpu[G]>(group: G, key: K): SmiGpu[G][K][] => all(group, key).slice(0, 1);
  const within = (fraction: number, min: number) => (v: number) => Math.max(min, Math.abs(v) * fraction);
  const fixed = (tolerance: number) => () => tolerance;
  const sameBus = (a: string, b: string): boolean => busKey(a) !== undefined && busKey(a) === busKey(b);

  r.exact('name', 'name', gpu.name, [first?.productName]);
  r.exact('uuid', 'uuid', gpu.uuid, [first?.uuid]);
  r.exact('serial', 'serial', gpu.serial, [first?.serial]);
  r.exact('pciBusId', 'pciBusId', gpu.pciBusId, [first?.pciBusId ?? first?.id], sameBus);

  const m = gpu.memory;
  const totalMiB = first?.memory.totalMiB;
  const inUse = (v: number): number => Math.max(t.memoryInUseMinMiB, (totalMiB ?? v) * t.memoryInUseFraction);
  // NVML v1 `used` includes the reserved memory that nvidia-smi (v2) reports apart
  const v1 = m !== undefined && m.reservedBytes === undefined;
  const v1Note = v1 ? 'ours is NVML v1 (used includes reserved)' : undefined;
  const smiUsed = smi.map((g) =>
    v1 && g.memory.usedMiB !== undefined ? g.memory.usedMiB + (g.memory.reservedMiB ?? 0) : g.memory.usedMiB,
  );
  r.number('memory.total', 'memory', mib(m?.totalBytes), all('memory', 'totalMiB'), 'MiB', fixed(t.memoryTotalMiB));
  r.number('memory.reserved', 'memory', mib(m?.reservedBytes), all('memory', 'reservedMiB'), 'MiB', fixed(t.memoryTotalMiB));
  r.number('memory.used', 'memory', mib(m?.usedBytes), smiUsed, 'MiB', inUse, v1Note);
  r.number('memory.free', 'memory', mib(m?.freeBytes), all('memory', 'freeMiB'), 'MiB', inUse);

  const temp = gpu.temperature;
  r.number('temperature.gpu', 'temperature.gpuCelsius', temp?.gpuCelsius, all('temperature', 'gpuC'), 'C', fixed(t.temperatureC));
  r.number(
    'temperature.memory',
    'temperature.memoryCelsius',
    temp?.memoryCelsius,
    all('temperature', 'memoryC'),
    'C',
    fixed(t.temperatureC),
  );
  compareThresholds(r, gpu, smi, t);

  // DTD v12 prints one power_draw; v13 an average and an instant one: ours may match any
  const draws = [...all('power', 'drawW'), ...all('power', 'averageDrawW'), ...all('power', 'instantDrawW')];
  const power = gpu.power;
  r.number('power.usage', 'power.usageWatts', power?.usageWatts, draws, 'W', within(t.powerFraction, t.powerMinW));
  r.number(
    'power.enforcedLimit',
    'power.enforcedLimitWatts',
    power?.enforcedLimitWatts,
    once('power', 'limitW'),
    'W',
    fixed(t.powerLimitW),
  );
  const limit = fixed(t.powerLimitW);
  r.number('power.minLimit', 'power.minLimitWatts', power?.minLimitWatts, once('power', 'minLimitW'), 'W', limit);
  r.number('power.maxLimit', 'power.maxLimitWatts', power?.maxLimitWatts, once('power', 'maxLimitW'), 'W', limit);
  r.number('power.defaultLimit', 'power.defaultLimitWatts', power?.defaultLimitWatts, once('power', 'defaultLimitW'), 'W', limit);

  const u = gpu.utilization;
  const ourUtil = u === undefined ? undefined : `${u.gpuPercent} % / ${u.memoryPercent} %`;
  const su = first?.utilization;
  const smiUtil = su?.gpuPercent === undefined ? undefined : `${su.gpuPercent} % / ${su.memoryPercent ?? '?'} %`;
  r.presenceOnly('utilization', 'utilization', ourUtil, smiUtil, 'values move; compared for presence only');

  const c = gpu.clocks;
  const clockTolerance = within(t.clockFraction, t.clockMinMHz);
  r.number('clocks.graphics', 'clocks.graphicsMHz', c?.graphicsMHz, all('clocks', 'graphicsMHz'), 'MHz', clockTolerance);
  r.number('clocks.sm', 'clocks.smMHz', c?.smMHz, all('clocks', 'smMHz'), 'MHz', clockTolerance);
  r.number('clocks.memory', 'clocks.memoryMHz', c?.memoryMHz, all('clocks', 'memoryMHz'), 'MHz', clockTolerance);
  r.number('clocks.maxGraphics', 'clocks.maxGraphicsMHz', c?.maxGraphicsMHz, once('clocks', 'maxGraphicsMHz'), 'MHz');
  r.number('clocks.maxSm', 'clocks.maxSmMHz', c?.maxSmMHz, once('clocks', 'maxSmMHz'), 'MHz');
  r.number('clocks.maxMemory', 'clocks.maxMemoryMHz', c?.maxMemoryMHz, once('clocks', 'maxMemoryMHz'), 'MHz');
  // only the nine reasons nvidia-smi prints; unknown bits (hex names) are ours alone
  const knownReasons = gpu.clockEventReasons?.names.filter((n) => !n.startsWith('0x'));
  const smiReasons = smi.map((g) => list(g.clockEventReasons));
  r.exact('clockEventReasons', 'clockEventReasons', list(knownReasons), smiReasons);

  const e = gpu.ecc;
  r.exact('ecc.mode', 'ecc.mode', yesNo(e?.enabled), yesNoAll(once('ecc', 'enabled')));
  r.exact('ecc.pendingMode', 'ecc.mode', yesNo(e?.pendingEnabled), yesNoAll(once('ecc', 'pendingEnabled')));
  r.number('ecc.volatileCorrected', 'ecc.volatileCorrected', e?.volatileCorrected, all('ecc', 'volatileCorrected'), '');
  r.number('ecc.volatileUncorrected', 'ecc.volatileUncorrected', e?.volatileUncorrected, all('ecc', 'volatileUncorrected'), '');
  r.number('ecc.aggregateCorrected', 'ecc.aggregateCorrected', e?.aggregateCorrected, all('ecc', 'aggregateCorrected'), '');
  r.number('ecc.aggregateUncorrected', 'ecc.aggregateUncorrected', e?.aggregateUncorrected, all('ecc', 'aggregateUncorrected'), '');

  const rp = gpu.retiredPages;
  r.number('retiredPages.singleBitEcc', 'retiredPages.singleBitEcc', rp?.singleBitEcc, all('retiredPages', 'singleBitEcc'), '');
  r.number('retiredPages.doubleBitEcc', 'retiredPages.doubleBitEcc', rp?.doubleBitEcc, all('retiredPages', 'doubleBitEcc'), '');
  r.exact('retiredPages.pending', 'retiredPages.pending', yesNo(rp?.pending), yesNoAll(all('retiredPages', 'pending')));

  const rr = gpu.remappedRows;
  r.number('remappedRows.corrected', 'remappedRows', rr?.corrected, all('remappedRows', 'corrected'), '');
  r.number('remappedRows.uncorrected', 'remappedRows', rr?.uncorrected, all('remappedRows', 'uncorrected'), '');
  r.exact('remappedRows.pending', 'remappedRows', yesNo(rr?.pending), yesNoAll(all('remappedRows', 'pending')));
  r.exact('remappedRows.failure', 'remappedRows', yesNo(rr?.failure), yesNoAll(all('remappedRows', 'failure')));

  const p = gpu.pcie;
  const text = (n: Num): string | undefined => (n === undefined ? undefined : String(n));
  r.exact('pcie.currentGen', 'pcie.currentGen', text(p?.currentGen), textAll(all('pcie', 'currentGen')));
  r.exact('pcie.maxGen', 'pcie.maxGen', text(p?.maxGen), textAll(once('pcie', 'maxGen')));
  r.exact('pcie.currentWidth', 'pcie.currentWidth', text(p?.currentWidth), textAll(all('pcie', 'currentWidth')));
  r.exact('pcie.maxWidth', 'pcie.maxWidth', text(p?.maxWidth), textAll(once('pcie', 'maxWidth')));
  r.number('pcie.replayCounter', 'pcie.replayCounter', p?.replayCounter, all('pcie', 'replayCounter'), '');
  const rollovers = all('pcie', 'replayRolloverCounter');
  r.number('pcie.replayRollover', 'pcie.replayRolloverCounter', p?.replayRolloverCounter, rollovers, '');

  r.exact('vbiosVersion', 'vbiosVersion', gpu.vbiosVersion, [first?.vbiosVersion]);
  const ir = gpu.inforom;
  r.exact('inforom.image', 'inforom.imageVersion', ir?.imageVersion, [first?.inforom.imageVersion]);
  r.exact('inforom.oem', 'inforom.oemVersion', ir?.oemVersion, [first?.inforom.oemVersion]);
  r.exact('inforom.ecc', 'inforom.eccVersion', ir?.eccVersion, [first?.inforom.eccVersion]);
  r.exact('inforom.power', 'inforom.powerVersion', ir?.powerVersion, [first?.inforom.powerVersion]);
  const bar1 = gpu.bar1;
  r.number('bar1.total', 'bar1', mib(bar1?.totalBytes), once('bar1', 'totalMiB'), 'MiB', fixed(t.memoryTotalMiB));
  r.number('bar1.used', 'bar1', mib(bar1?.usedBytes), all('bar1', 'usedMiB'), 'MiB', fixed(t.bar1InUseMiB));
  r.number('bar1.free', 'bar1', mib(bar1?.freeBytes), all('bar1', 'freeMiB'), 'MiB', fixed(t.bar1InUseMiB));
  const smiRecovery = smi.map((g) => g.recoveryAction);
  r.exact('recoveryAction', 'recoveryAction', gpu.recoveryAction, smiRecovery, sameRecoveryAction);
  // ours says notSupported where nvidia-smi prints N/A: both mean "no fabric"
  const fabric = gpu.fabric?.state === 'notSupported' ? undefined : gpu.fabric?.state;
  r.exact(
    'fabric.state',
    'fabric',
    fabric,
    smi.map((g) => g.fabricState),
    (a, b) => letters(a) === letters(b),
  );

  compareProcesses(r, gpu, smi, t);
  compareNvLinks(r, gpu, link, linksRan);

  const mig = gpu.migMode;
  r.exact('migMode.current', 'migMode', yesNo(mig?.enabled), yesNoAll(once('migMode', 'enabled')));
  r.exact('migMode.pending', 'migMode', yesNo(mig?.pendingEnabled), yesNoAll(once('migMode', 'pendingEnabled')));
  r.exact('persistenceMode', 'persistenceMode', yesNo(gpu.persistenceMode), [yesNo(first?.persistenceMode)]);
  const smiPstates = smi.map((g) => pstate(g.performanceState));
  const smiFans = smi.map((g) => g.fanSpeedPercent);
  r.exact('performanceState', 'performanceState', pstate(gpu.performanceState), smiPstates);
  r.number('fanSpeed', 'fanSpeedPercent', gpu.fanSpeedPercent, smiFans, '%', fixed(t.fanPercent));
  r.exact('computeMode', 'computeMode', gpu.computeMode, [first?.computeMode]);
  return r.rows;
}

/** Lower-case letters only: `Drain and Reset` and `drainAndReset` meet as `drainandreset`. */
const letters = (text: string): string => text.toLowerCase().replace(/[^a-z]/g, '');

/** nvidia-smi prints the recovery action in words; ours are nvmlDeviceGpuRecoveryAction_t names. */
function sameRecoveryAction(ours: string, smi: string): boolean {
  const aliases: Readonly<Record<string, string>> = { reset: 'gpureset', reboot: 'nodereboot' };
  const printed = letters(smi);
  return letters(ours) === (aliases[printed] ?? printed);
}

/**
 * The slowdown, shutdown and GPU-max thresholds: absolute where nvidia-smi prints them, else
 * derived from its TLimit-relative ones (TLimit = temperature + headroom; threshold = TLimit −
 * offset), which boards since Hopper on R580 and Blackwell print instead. The memory threshold
 * has no TLimit-relative counterpart nvidia-smi can be read back from.
 */
function compareThresholds(r: Rows, gpu: GpuSnapshot, smi: readonly SmiGpu[], t: Readonly<Tolerances>): void {
  const temp = gpu.temperature;
  const derived = (offset: (g: SmiGpu) => number | undefined): Num[] =>
    smi.map((g) => {
      const [now, headroom, off] = [g.temperature.gpuC, g.temperature.tlimitHeadroomC, offset(g)];
      return now === undefined || headroom === undefined || off === undefined ? undefined : now + headroom - off;
    });
  const first = smi.slice(0, 1);
  const rows: Array<[string, keyof NonNullable<GpuSnapshot['temperature']>, Num[], Num[]]> = [
    ['slowdown', 'slowdownCelsius', first.map((g) => g.temperature.slowdownC), derived((g) => g.temperature.slowdownTlimitC)],
    ['shutdown', 'shutdownCelsius', first.map((g) => g.temperature.shutdownC), derived((g) => g.temperature.shutdownTlimitC)],
    ['gpuMax', 'gpuMaxCelsius', first.map((g) => g.temperature.gpuMaxC), derived((g) => g.temperature.gpuMaxTlimitC)],
  ];
  for (const [name, key, absolute, fromTlimit] of rows) {
    const ours = temp?.[key];
    if (present(absolute).length > 0 || present(fromTlimit).length === 0)
      r.number(`temperature.${name}`, `temperature.${key}`, ours, absolute, 'C');
    else
      r.number(`temperature.${name}`, `temperature.${key}`, ours, fromTlimit, 'C', () => t.tlimitThresholdC, 'nvidia-smi: TLimit-relative');
  }
  r.number(
    'temperature.memoryMax',
    'temperature.memoryMaxCelsius',
    temp?.memoryMaxCelsius,
    first.map((g) => g.temperature.memoryMaxC),
    'C',
  );
}

/** Compute processes (nvidia-smi type C, C+G, M+C …; graphics-only ones are not NVML compute processes). */
function compareProcesses(r: Rows, gpu: GpuSnapshot, smi: readonly SmiGpu[], t: Readonly<Tolerances>): void {
  if (gpu.processesOmitted !== undefined && gpu.processesOmitted > 0) {
    r.note('processes', `${gpu.processes?.length ?? 0} (+${gpu.processesOmitted})`, '', 'NA', 'our list is truncated; pids not compared');
    return;
  }
  const compute = (g: SmiGpu): SmiGpu['processes'] => g.processes?.filter((p) => p.type.includes('C'));
  const pids = (ps: readonly { pid: number }[] | undefined): string | undefined =>
    ps === undefined ? undefined : list(ps.map((p) => String(p.pid)));
  const smiPids = smi.map((g) => pids(compute(g)));
  r.exact('processes', 'processes', pids(gpu.processes), smiPids);
  const first = smi[0];
  const tolerance = (v: number): number => Math.max(t.memoryInUseMinMiB, v * t.processMemoryFraction);
  for (const ours of gpu.processes ?? []) {
    // a process nvidia-smi did not list at first is already a DIFF in the pid row
    if (first === undefined || compute(first)?.some((p) => p.pid === ours.pid) !== true) continue;
    const readings = smi.map((g) => compute(g)?.find((p) => p.pid === ours.pid)?.usedMemoryMiB);
    r.number(`processes[${ours.pid}].usedMemory`, 'processes', mib(ours.usedMemoryBytes), readings, 'MiB', tolerance);
  }
}

function compareNvLinks(r: Rows, gpu: GpuSnapshot, smi: SmiNvLinkGpu | undefined, ran: boolean): void {
  if (!ran) return;
  const smiLinks = smi !== undefined && smi.links.length > 0 ? smi.links : undefined;
  const ours = gpu.nvlinks;
  const active = (links: readonly { link: number; active: boolean }[] | undefined): string | undefined =>
    links === undefined ? undefined : ranges(links.filter((l) => l.active).map((l) => l.link));
  r.exact('nvlinks.active', 'nvlinks', active(ours), [active(smiLinks)]);
  const countOf = (links: readonly unknown[] | undefined): string | undefined => (links === undefined ? undefined : String(links.length));
  r.exact('nvlinks.count', 'nvlinks', countOf(ours), [countOf(smiLinks)]);
}

/** Compares every GPU of `snapshot` with nvidia-smi's readings. */
export function compareSnapshot(input: ComparisonInput): ComparisonReport {
  const t = input.tolerances ?? DEFAULT_TOLERANCES;
  const { snapshot, readings } = input;
  const notes: string[] = [];
  const first = readings[0];
  if (first === undefined) throw new RangeError('compareSnapshot needs at least one nvidia-smi reading');

  const sys = new Rows(undefined, snapshot.errors ?? []);
  sys.exact('driverVersion', 'driverVersion', snapshot.nvml.driverVersion, [first.driverVersion]);
  sys.exact('cudaDriverVersion', 'cudaDriverVersion', snapshot.nvml.cudaDriverVersion, [first.cudaVersion]);
  sys.exact('gpus', 'gpus', String(snapshot.gpus.length), [String(first.gpus.length)]);
  if (first.attachedGpus !== undefined && first.attachedGpus !== first.gpus.length) {
    notes.push(`nvidia-smi says ${first.attachedGpus} GPUs are attached but lists ${first.gpus.length}`);
  }
  if (!snapshot.nvml.available) notes.push(`our snapshot is in no-GPU mode: ${snapshot.nvml.reason}`);
  const nvlinkRan = input.nvlinkStatus !== undefined;
  if (!nvlinkRan) notes.push('NVLink not compared: no `nvidia-smi nvlink --status` output');

  const gpus: GpuComparison[] = [];
  const matched = new Set<SmiGpu>();
  for (const gpu of snapshot.gpus) {
    const mine = readings.map((log) => matchSmi(gpu, log)).filter((g): g is SmiGpu => g !== undefined);
    const identity = {
      index: gpu.index,
      ...(gpu.name !== undefined ? { name: gpu.name } : {}),
      ...(gpu.uuid !== undefined ? { uuid: gpu.uuid } : {}),
    };
    const head = { ...identity, ...(gpu.pciBusId !== undefined ? { pciBusId: gpu.pciBusId } : {}) };
    const firstMatch = matchSmi(gpu, first);
    if (firstMatch === undefined) {
      gpus.push({
        ...head,
        fields: [
          {
            field: 'gpu',
            ours: gpu.pciBusId ?? gpu.uuid ?? `index ${gpu.index}`,
            nvidiaSmi: '',
            status: 'EXTRA',
            note: 'nvidia-smi does not list this GPU',
          },
        ],
      });
      continue;
    }
    matched.add(firstMatch);
    const link =
      input.nvlinkStatus?.find((l) => gpu.uuid !== undefined && l.uuid === gpu.uuid) ??
      input.nvlinkStatus?.find((l) => l.uuid === undefined && l.index === gpu.index);
    const fields = gpu.lost
      ? [
          {
            field: 'gpu',
            ours: 'lost',
            nvidiaSmi: firstMatch.productName ?? 'listed',
            status: 'DIFF' as const,
            note: 'our snapshot marks this GPU lost',
          },
        ]
      : compareGpu(gpu, mine, link, nvlinkRan, t);
    gpus.push({ ...head, fields });
  }
  for (const g of first.gpus.filter((x) => !matched.has(x))) {
    const id = g.pciBusId ?? g.id ?? g.uuid ?? '?';
    gpus.push({
      index: -1,
      ...(g.productName !== undefined ? { name: g.productName } : {}),
      ...(g.uuid !== undefined ? { uuid: g.uuid } : {}),
      ...(g.pciBusId !== undefined ? { pciBusId: g.pciBusId } : {}),
      fields: [{ field: 'gpu', ours: '', nvidiaSmi: id, status: 'MISSING', note: 'GPU absent from our snapshot' }],
    });
  }

  const counts = Object.fromEntries(FIELD_STATUSES.map((s) => [s, 0])) as Record<FieldStatus, number>;
  for (const row of [...sys.rows, ...gpus.flatMap((g) => g.fields)]) counts[row.status] += 1;
  return { system: sys.rows, gpus, notes, counts, passed: counts.DIFF === 0 && counts.MISSING === 0 };
}

/** The report as a fixed-width table: one block per GPU, then the counts. */
export function formatComparison(report: ComparisonReport): string {
  const width = (rows: readonly FieldComparison[], pick: (r: FieldComparison) => string, header: string): number =>
    Math.max(header.length, ...rows.map((r) => pick(r).length));
  const block = (title: string, rows: readonly FieldComparison[]): string[] => {
    const w = [width(rows, (r) => r.field, 'field'), width(rows, (r) => r.ours, 'ours'), width(rows, (r) => r.nvidiaSmi, 'nvidia-smi')];
    const line = (cells: readonly string[]): string =>
      cells
        .map((c, i) => c.padEnd(w[i] ?? 0))
        .join('  ')
        .trimEnd();
    return [
      title,
      line(['field', 'ours', 'nvidia-smi', 'status']),
      ...rows.map((r) => line([r.field, r.ours, r.nvidiaSmi, r.note === undefined ? r.status : `${r.status}  (${r.note})`])),
      '',
    ];
  };
  const out = [...block('System', report.system)];
  for (const g of report.gpus) {
    const title = `GPU ${g.index < 0 ? '?' : g.index}  ${[g.name, g.uuid, g.pciBusId].filter((x) => x !== undefined).join('  ')}`;
    out.push(...block(title, g.fields));
  }
  for (const n of report.notes) out.push(`note: ${n}`);
  out.push(`${FIELD_STATUSES.map((s) => `${s} ${report.counts[s]}`).join(', ')} → ${report.passed ? 'PASS' : 'FAIL'}`);
  return out.join('\n');
}
