/**
 * nvidia-smi's `-q -x` document as typed readings, in nvidia-smi's own units (MiB, °C, W, MHz).
 * Element names changed across DTD versions (v10 … v13: `power_readings` → `gpu_power_readings`,
 * `power_draw` → `average_power_draw`/`instant_power_draw`, `clocks_throttle_reasons` →
 * `clocks_event_reasons`, per-location ECC → SRAM/DRAM totals); each reading tries the known
 * spellings. "N/A", "[N/A]", "Not Supported", "Requested functionality has been deprecated" and
 * other non-values become undefined, so absence is one thing whatever the wording.
 */
import type { GpuComputeMode } from '../../agent/nvml/types.js';
import { child, childrenNamed, parseXml, textAt, type XmlElement } from './xml-reader.js';

/** One process nvidia-smi lists on a GPU. */
export interface SmiProcess {
  pid: number;
  /** `C` compute, `G` graphics, `C+G`, `M` (MPS) …, as printed. */
  type: string;
  name?: string;
  usedMemoryMiB?: number;
}

/** One `<gpu>` element's readings. */
export interface SmiGpu {
  /** The element's `id` attribute (its PCI bus id). */
  id?: string;
  productName?: string;
  uuid?: string;
  serial?: string;
  pciBusId?: string;
  /** e.g. `233010DE` (device id then vendor id). */
  pciDeviceId?: string;
  pciSubSystemId?: string;
  memory: { totalMiB?: number; reservedMiB?: number; usedMiB?: number; freeMiB?: number };
  temperature: {
    gpuC?: number;
    memoryC?: number;
    shutdownC?: number;
    slowdownC?: number;
    gpuMaxC?: number;
    memoryMaxC?: number;
    /**
     * Newer boards (Hopper on R580, Blackwell) print thresholds relative to TLimit instead:
     * `gpu_temp_tlimit` is the headroom (TLimit − current temperature), and each
     * `*_tlimit_threshold` is a threshold's offset below TLimit (negative: above it).
     */
    tlimitHeadroomC?: number;
    shutdownTlimitC?: number;
    slowdownTlimitC?: number;
    gpuMaxTlimitC?: number;
  };
  power: {
    drawW?: number;
    averageDrawW?: number;
    instantDrawW?: number;
    limitW?: number;
    minLimitW?: number;
    maxLimitW?: number;
    defaultLimitW?: number;
  };
  utilization: { gpuPercent?: number; memoryPercent?: number };
  clocks: { graphicsMHz?: number; smMHz?: number; memoryMHz?: number; maxGraphicsMHz?: number; maxSmMHz?: number; maxMemoryMHz?: number };
  /** Active reasons in NVML's names (GpuIdle, SwPowerCap …); undefined when the section is absent. */
  clockEventReasons?: string[];
  ecc: {
    enabled?: boolean;
    pendingEnabled?: boolean;
    volatileCorrected?: number;
    volatileUncorrected?: number;
    aggregateCorrected?: number;
    aggregateUncorrected?: number;
  };
  retiredPages: { singleBitEcc?: number; doubleBitEcc?: number; pending?: boolean };
  remappedRows: { corrected?: number; uncorrected?: number; pending?: boolean; failure?: boolean };
  pcie: {
    currentGen?: number;
    maxGen?: number;
    currentWidth?: number;
    maxWidth?: number;
    replayCounter?: number;
    replayRolloverCounter?: number;
  };
  vbiosVersion?: string;
  inforom: { imageVersion?: string; oemVersion?: string; eccVersion?: string; powerVersion?: string };
  bar1: { totalMiB?: number; usedMiB?: number; freeMiB?: number };
  /** `gpu_recovery_action` as printed (`None`, …). */
  recoveryAction?: string;
  /** `fabric/state` as printed (`Completed`, `In Progress`, …); undefined for N/A. */
  fabricState?: string;
  /** Undefined when nvidia-smi printed N/A for the list. */
  processes?: SmiProcess[];
  migMode: { enabled?: boolean; pendingEnabled?: boolean };
  persistenceMode?: boolean;
  performanceState?: number;
  fanSpeedPercent?: number;
  computeMode?: GpuComputeMode;
}

/** The whole document. */
export interface NvidiaSmiLog {
  timestamp?: string;
  driverVersion?: string;
  cudaVersion?: string;
  attachedGpus?: number;
  gpus: SmiGpu[];
}

/** The readings, or why the text is not an nvidia-smi log. */
export type NvidiaSmiLogResult = { ok: true; log: NvidiaSmiLog } | { ok: false; error: string };

/** Clock event reason element suffixes → the names our snapshot uses (agent/nvml/collector.ts). */
const CLOCK_REASON_NAMES: ReadonlyArray<readonly [string, string]> = [
  ['gpu_idle', 'GpuIdle'],
  ['applications_clocks_setting', 'ApplicationsClocksSetting'],
  ['sw_power_cap', 'SwPowerCap'],
  ['hw_slowdown', 'HwSlowdown'],
  ['sync_boost', 'SyncBoost'],
  ['sw_thermal_slowdown', 'SwThermalSlowdown'],
  ['hw_thermal_slowdown', 'HwThermalSlowdown'],
  ['hw_power_brake_slowdown', 'HwPowerBrakeSlowdown'],
  ['display_clocks_setting', 'DisplayClockSetting'],
];

const COMPUTE_MODES: Readonly<Record<string, GpuComputeMode>> = {
  default: 'default',
  exclusive_thread: 'exclusiveThread',
  prohibited: 'prohibited',
  exclusive_process: 'exclusiveProcess',
};

const NUMBER = /^(-?\d+(?:\.\d+)?)\s*([A-Za-z%]*)$/;

/** `81559 MiB` → 81559 when `unit` matches (case-insensitive); N/A and other words → undefined. */
export function quantity(text: string | undefined, unit: string): number | undefined {
  if (text === undefined) return undefined;
  const m = NUMBER.exec(text.trim());
  if (m === null) return undefined;
  const [, value = '', found = ''] = m;
  return found.toLowerCase() === unit.toLowerCase() ? Number(value) : undefined;
}

/** A plain count (`0`, `12`); anything else → undefined. */
function count(text: string | undefined): number | undefined {
  return text !== undefined && /^\d+$/.test(text.trim()) ? Number(text.trim()) : undefined;
}

/** Enabled/Disabled, Yes/No, Active/Not Active; anything else → undefined. */
export function flag(text: string | undefined): boolean | undefined {
  switch (text?.trim().toLowerCase()) {
    case 'enabled':
    case 'yes':
    case 'active':
      return true;
    case 'disabled':
    case 'no':
    case 'not active':
      return false;
    default:
      return undefined;
  }
}

/** A text value, or undefined for nvidia-smi's ways of saying "nothing". */
function value(text: string | undefined): string | undefined {
  const t = text?.trim();
  if (t === undefined || t === '' || /^\[?(n\/a|not supported|unknown error|unknown|none|insufficient permissions)\]?$/i.test(t))
    return undefined;
  if (/deprecated|not available/i.test(t)) return undefined;
  return t;
}

/** Like {@link value}, but keeps `None`: for elements where "None" is a reading (the recovery action). */
function valueOrNone(text: string | undefined): string | undefined {
  return /^\s*none\s*$/i.test(text ?? '') ? 'None' : value(text);
}

function firstDefined<T>(...values: (T | undefined)[]): T | undefined {
  return values.find((v) => v !== undefined);
}

/** Sum of the parts present; undefined when none is. */
function sum(...parts: (number | undefined)[]): number | undefined {
  const present = parts.filter((p): p is number => p !== undefined);
  return present.length === 0 ? undefined : present.reduce((a, b) => a + b, 0);
}

/** Corrected/uncorrected totals of one `<volatile>` or `<aggregate>` block, in any schema version. */
function eccTotals(block: XmlElement | undefined): { corrected?: number; uncorrected?: number } {
  if (block === undefined) return {};
  const n = (path: string): number | undefined => count(textAt(block, path));
  // v10/v11: per location under single_bit / double_bit, each with a <total>
  const legacyCorrected = n('single_bit/total');
  const legacyUncorrected = n('double_bit/total');
  const sramUncorrected = firstDefined(n('sram_uncorrectable'), sum(n('sram_uncorrectable_parity'), n('sram_uncorrectable_secded')));
  const corrected = firstDefined(legacyCorrected, sum(n('sram_correctable'), n('dram_correctable')));
  const uncorrected = firstDefined(legacyUncorrected, sum(sramUncorrected, n('dram_uncorrectable')));
  return { ...(corrected !== undefined ? { corrected } : {}), ...(uncorrected !== undefined ? { uncorrected } : {}) };
}

function clockEventReasons(gpu: XmlElement): string[] | undefined {
  const section = child(gpu, 'clocks_event_reasons') ?? child(gpu, 'clocks_throttle_reasons');
  if (section === undefined) return undefined;
  const prefix = section.name === 'clocks_event_reasons' ? 'clocks_event_reason_' : 'clocks_throttle_reason_';
  const known = CLOCK_REASON_NAMES.filter(([suffix]) => child(section, prefix + suffix) !== undefined);
  if (known.length === 0) return undefined;
  return known.filter(([suffix]) => flag(textAt(section, prefix + suffix)) === true).map(([, name]) => name);
}

function processes(gpu: XmlElement): SmiProcess[] | undefined {
  const list = child(gpu, 'processes');
  if (list === undefined) return undefined;
  const infos = childrenNamed(list, 'process_info');
  if (infos.length === 0 && value(list.text) === undefined && list.text !== '') return undefined;
  return infos.flatMap((p): SmiProcess[] => {
    const pid = count(textAt(p, 'pid'));
    if (pid === undefined) return [];
    const name = value(textAt(p, 'process_name'));
    const used = quantity(textAt(p, 'used_memory'), 'MiB');
    return [
      {
        pid,
        type: textAt(p, 'type')?.trim() ?? '',
        ...(name !== undefined ? { name } : {}),
        ...(used !== undefined ? { usedMemoryMiB: used } : {}),
      },
    ];
  });
}

/** `T` with every member present but possibly undefined: what the readers below produce. */
type Loose<T> = { [K in keyof T]-?: T[K] | undefined };

/** Drops undefined members so the readings print and compare cleanly (optional members stay absent). */
function defined<T extends object>(o: Loose<T>): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}

function readGpu(gpu: XmlElement): SmiGpu {
  const t = (path: string): string | undefined => value(textAt(gpu, path));
  const power = child(gpu, 'gpu_power_readings') ?? child(gpu, 'power_readings');
  const pw = (name: string): number | undefined => quantity(textAt(power, name), 'W');
  const temp = (name: string): number | undefined => quantity(textAt(gpu, `temperature/${name}`), 'C');
  const mhz = (path: string): number | undefined => quantity(textAt(gpu, path), 'MHz');
  const mib = (path: string): number | undefined => quantity(textAt(gpu, path), 'MiB');
  const pstate = /^P(\d{1,2})$/.exec(t('performance_state') ?? '');
  const compute = t('compute_mode');
  const volatile = eccTotals(child(gpu, 'ecc_errors/volatile'));
  const aggregate = eccTotals(child(gpu, 'ecc_errors/aggregate'));
  const link = child(gpu, 'pci/pci_gpu_link_info');
  const width = (name: string): number | undefined => quantity(textAt(link, `link_widths/${name}`), 'x');
  const smiProcesses = processes(gpu);
  const reasons = clockEventReasons(gpu);
  return defined<SmiGpu>({
    id: value(gpu.attributes['id']),
    productName: t('product_name'),
    uuid: t('uuid'),
    serial: t('serial'),
    pciBusId: t('pci/pci_bus_id'),
    pciDeviceId: t('pci/pci_device_id'),
    pciSubSystemId: t('pci/pci_sub_system_id'),
    memory: defined<SmiGpu['memory']>({
      totalMiB: mib('fb_memory_usage/total'),
      reservedMiB: mib('fb_memory_usage/reserved'),
      usedMiB: mib('fb_memory_usage/used'),
      freeMiB: mib('fb_memory_usage/free'),
    }),
    temperature: defined<SmiGpu['temperature']>({
      gpuC: temp('gpu_temp'),
      memoryC: temp('memory_temp'),
      shutdownC: temp('gpu_temp_max_threshold'),
      slowdownC: temp('gpu_temp_slow_threshold'),
      gpuMaxC: temp('gpu_temp_max_gpu_threshold'),
      memoryMaxC: temp('gpu_temp_max_mem_threshold'),
      tlimitHeadroomC: temp('gpu_temp_tlimit'),
      shutdownTlimitC: temp('gpu_temp_max_tlimit_threshold'),
      slowdownTlimitC: temp('gpu_temp_slow_tlimit_threshold'),
      gpuMaxTlimitC: temp('gpu_temp_max_gpu_tlimit_threshold'),
    }),
    power: defined<SmiGpu['power']>({
      drawW: pw('power_draw'),
      averageDrawW: pw('average_power_draw'),
      instantDrawW: pw('instant_power_draw'),
      limitW: firstDefined(pw('enforced_power_limit'), pw('current_power_limit')),
      minLimitW: pw('min_power_limit'),
      maxLimitW: pw('max_power_limit'),
      defaultLimitW: pw('default_power_limit'),
    }),
    utilization: defined<SmiGpu['utilization']>({
      gpuPercent: quantity(textAt(gpu, 'utilization/gpu_util'), '%'),
      memoryPercent: quantity(textAt(gpu, 'utilization/memory_util'), '%'),
    }),
    clocks: defined<SmiGpu['clocks']>({
      graphicsMHz: mhz('clocks/graphics_clock'),
      smMHz: mhz('clocks/sm_clock'),
      memoryMHz: mhz('clocks/mem_clock'),
      maxGraphicsMHz: mhz('max_clocks/graphics_clock'),
      maxSmMHz: mhz('max_clocks/sm_clock'),
      maxMemoryMHz: mhz('max_clocks/mem_clock'),
    }),
    clockEventReasons: reasons,
    ecc: defined<SmiGpu['ecc']>({
      enabled: flag(textAt(gpu, 'ecc_mode/current_ecc')),
      pendingEnabled: flag(textAt(gpu, 'ecc_mode/pending_ecc')),
      volatileCorrected: volatile.corrected,
      volatileUncorrected: volatile.uncorrected,
      aggregateCorrected: aggregate.corrected,
      aggregateUncorrected: aggregate.uncorrected,
    }),
    retiredPages: defined<SmiGpu['retiredPages']>({
      singleBitEcc: count(textAt(gpu, 'retired_pages/multiple_single_bit_retirement/retired_count')),
      doubleBitEcc: count(textAt(gpu, 'retired_pages/double_bit_retirement/retired_count')),
      pending: flag(textAt(gpu, 'retired_pages/pending_retirement')),
    }),
    remappedRows: defined<SmiGpu['remappedRows']>({
      corrected: count(textAt(gpu, 'remapped_rows/remapped_row_corr')),
      uncorrected: count(textAt(gpu, 'remapped_rows/remapped_row_unc')),
      pending: flag(textAt(gpu, 'remapped_rows/remapped_row_pending')),
      failure: flag(textAt(gpu, 'remapped_rows/remapped_row_failure')),
    }),
    pcie: defined<SmiGpu['pcie']>({
      currentGen: count(textAt(link, 'pcie_gen/current_link_gen')),
      maxGen: count(textAt(link, 'pcie_gen/max_link_gen')),
      currentWidth: width('current_link_width'),
      maxWidth: width('max_link_width'),
      replayCounter: count(textAt(gpu, 'pci/replay_counter')),
      replayRolloverCounter: count(textAt(gpu, 'pci/replay_rollover_counter')),
    }),
    vbiosVersion: t('vbios_version'),
    inforom: defined<SmiGpu['inforom']>({
      imageVersion: t('inforom_version/img_version'),
      oemVersion: t('inforom_version/oem_object'),
      eccVersion: t('inforom_version/ecc_object'),
      powerVersion: t('inforom_version/pwr_object'),
    }),
    bar1: defined<SmiGpu['bar1']>({
      totalMiB: mib('bar1_memory_usage/total'),
      usedMiB: mib('bar1_memory_usage/used'),
      freeMiB: mib('bar1_memory_usage/free'),
    }),
    recoveryAction: valueOrNone(textAt(gpu, 'gpu_recovery_action')),
    fabricState: t('fabric/state'),
    processes: smiProcesses,
    migMode: defined<SmiGpu['migMode']>({
      enabled: flag(textAt(gpu, 'mig_mode/current_mig')),
      pendingEnabled: flag(textAt(gpu, 'mig_mode/pending_mig')),
    }),
    persistenceMode: flag(textAt(gpu, 'persistence_mode')),
    performanceState: pstate === null ? undefined : Number(pstate[1]),
    fanSpeedPercent: quantity(textAt(gpu, 'fan_speed'), '%'),
    computeMode: compute === undefined ? undefined : (COMPUTE_MODES[compute.toLowerCase()] ?? 'unknown'),
  });
}

/** Reads nvidia-smi's `-q -x` output; never throws. */
export function parseNvidiaSmiLog(xml: string): NvidiaSmiLogResult {
  const parsed = parseXml(xml);
  if (!parsed.ok) return { ok: false, error: `not XML this reader accepts: ${parsed.error} (at offset ${parsed.offset})` };
  const root = parsed.root;
  if (root.name !== 'nvidia_smi_log') return { ok: false, error: `the root element is <${root.name.slice(0, 40)}>, not <nvidia_smi_log>` };
  return {
    ok: true,
    log: defined<NvidiaSmiLog>({
      timestamp: value(textAt(root, 'timestamp')),
      driverVersion: value(textAt(root, 'driver_version')),
      cudaVersion: value(textAt(root, 'cuda_version')),
      attachedGpus: count(textAt(root, 'attached_gpus')),
      gpus: childrenNamed(root, 'gpu').map(readGpu),
    }),
  };
}
