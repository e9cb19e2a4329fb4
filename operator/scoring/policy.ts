/**
 * Resolves a (possibly partial) GPUHealthPolicy spec over the documented built-in defaults
 * (api/defaults.ts BUILT_IN_POLICY_SPEC, equal to the CRD defaults) into one frozen, fully
 * populated policy the scoring functions read. Every threshold and penalty the checks use
 * comes from here; the few severities a policy cannot change are named in FIXED_SEVERITIES.
 */
import type { DiagnosticCheck } from '../../agent/api/snapshot-document.js';
import { applyXidPolicy, defaultXidCatalog, type XidOverride } from '../../agent/xid/catalog.js';
import { BUILT_IN_POLICY_SPEC } from '../../api/defaults.js';
import type { GPUHealthPolicySpec } from '../../api/generated/types.js';
import type { Severity } from './finding.js';

/** Severities that are facts rather than policy: documented here, not overridable. */
export const FIXED_SEVERITIES = Object.freeze({
  /** NVML answers GPU_IS_LOST: the GPU fell off the bus. */
  gpuLost: 'critical',
  /** An NVML call failed (not NOT_SUPPORTED): part of the GPU is unobserved. */
  collectionError: 'warning',
  /** NVML could not initialise on a node that should have GPUs. */
  nvmlUnavailable: 'warning',
  /** Neither the kernel log nor NVML events are being watched, so XIDs go unseen. */
  xidSourcesDown: 'warning',
  /** System-level NVML reads (versions) failed; no health impact. */
  systemCollectionError: 'info',
  /** The agent left XID events out of its answer to bound it. */
  xidEventsTruncated: 'info',
  /** Lifetime (aggregate) ECC counts: history, never a current fault. */
  aggregateEccHistory: 'info',
  /** Volatile corrected ECC errors at or over volatileCorrectedWarning. */
  volatileCorrectedEcc: 'warning',
  /** A page retirement waits for the next driver reload. */
  retiredPagesPending: 'warning',
  /** Rows remapped for uncorrectable errors at or over uncorrectableRowsWarning. */
  uncorrectableRows: 'warning',
  /** Power draw over the enforced limit by overLimitPercentWarning. */
  powerOverLimit: 'warning',
  /** Memory use at or over usedPercentWarning. */
  memoryUsage: 'warning',
  /** PCIe replay counter at or over replayCounterWarning. */
  pcieReplays: 'warning',
  /** NVLink error counters at or over errorCountWarning. */
  nvlinkErrors: 'warning',
  /** PCIe replay rollovers or correctable errors at or over their thresholds. */
  pcieLinkErrors: 'warning',
  /** Thermal or power violation time at or over violationSecondsWarning. */
  violationTime: 'warning',
  /** BAR1 use at or over bar1UsedPercentWarning. */
  bar1Usage: 'warning',
} as const satisfies Record<string, Severity>);

/** An XID escalation rule with its window parsed. */
export interface ResolvedXidEscalation {
  readonly xid: number;
  readonly count: number;
  readonly window: string;
  readonly windowMs: number;
  readonly severity: Severity;
}

/** Thresholds of every GPU check, all populated (memory's is the one optional: unset disables it). */
export interface ResolvedThresholds {
  readonly thermal: {
    readonly warningMarginCelsius: number;
    readonly criticalMarginCelsius: number;
    readonly memoryWarningMarginCelsius: number;
    readonly memoryCriticalMarginCelsius: number;
    readonly violationSecondsWarning: number;
  };
  readonly memory: { readonly usedPercentWarning?: number; readonly bar1UsedPercentWarning: number };
  readonly power: { readonly overLimitPercentWarning: number; readonly violationSecondsWarning?: number };
  readonly ecc: {
    readonly volatileCorrectedWarning: number;
    readonly volatileUncorrectedCritical: number;
    readonly retiredPagesWarning: number;
    readonly retiredPagesCritical: number;
    readonly dramRetirementFailureSeverity: Severity;
    readonly fatalPoisonSeverity: Severity;
    readonly nonFatalPoisonSeverity: Severity;
    readonly eccStormSeverity: Severity;
  };
  readonly rowRemap: { readonly pendingSeverity: Severity; readonly failureSeverity: Severity; readonly uncorrectableRowsWarning: number };
  readonly inventory: { readonly missingGpusSeverity: Severity };
  readonly pcie: {
    readonly widthDegradedSeverity: Severity;
    readonly replayCounterWarning: number;
    readonly replayRolloverWarning: number;
    readonly correctableErrorsWarning: number;
  };
  readonly fabric: { readonly notCompletedSeverity: Severity; readonly failedSeverity: Severity; readonly degradedSeverity: Severity };
  readonly inforom: { readonly invalidSeverity: Severity };
  readonly nvlink: { readonly linkDownSeverity: Severity; readonly errorCountWarning: number };
  readonly clockEvents: {
    readonly hwThermalSlowdownSeverity: Severity;
    readonly hwSlowdownSeverity: Severity;
    readonly hwPowerBrakeSeverity: Severity;
    readonly swThermalSlowdownSeverity: Severity;
  };
}

/** The XID section with durations parsed. */
export interface ResolvedXidPolicy {
  readonly lookback: string;
  readonly lookbackMs: number;
  readonly ignore: readonly number[];
  readonly overrides: readonly XidOverride[];
  readonly escalations: readonly ResolvedXidEscalation[];
}

/** Penalties per finding severity and the status cut-offs. */
export interface ResolvedScoring {
  readonly warningPenalty: number;
  readonly criticalPenalty: number;
  readonly infoPenalty: number;
  readonly healthyMinScore: number;
  readonly degradedMinScore: number;
}

/** Opt-in actions, populated. */
export interface ResolvedActions {
  readonly dryRun: boolean;
  readonly nodeCondition: { readonly enabled: boolean };
  readonly podCondition: { readonly enabled: boolean };
  readonly taint: {
    readonly enabled: boolean;
    readonly key: string;
    readonly effect: 'NoSchedule' | 'PreferNoSchedule' | 'NoExecute';
    readonly maxTaintedPercent: number;
  };
}

/** A GPUHealthPolicy spec merged over the built-in defaults, frozen, durations in ms. */
export interface ResolvedPolicy {
  readonly interval: string;
  readonly intervalMs: number;
  readonly suspend: boolean;
  readonly checks: readonly DiagnosticCheck[];
  readonly thresholds: ResolvedThresholds;
  readonly xid: ResolvedXidPolicy;
  readonly scoring: ResolvedScoring;
  readonly actions: ResolvedActions;
}

/** Thrown when a policy spec cannot be used (a human must fix it: no retry helps). */
export class PolicyError extends Error {
  override readonly name = 'PolicyError';
}

/** Thrown when a text is not a Go duration. */
export class GoDurationError extends Error {
  override readonly name = 'GoDurationError';
}

const MS_PER_UNIT: Readonly<Record<string, number>> = Object.freeze({
  ns: 1e-6,
  us: 1e-3,
  ms: 1,
  s: 1_000,
  m: 60_000,
  h: 3_600_000,
});

/** The grammar the CRDs accept (`^([0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h))+$`), plus Go's bare `0`. */
const GO_DURATION = /^(?:\d+(?:\.\d+)?(?:ns|us|ms|s|m|h))+$/;
const GO_DURATION_PART = /(\d+(?:\.\d+)?)(ns|us|ms|s|m|h)/g;

/** Parses a Go duration (`1h30m`, `10m`, `45s`, `500ms`, `1.5h`) into milliseconds; throws GoDurationError naming the input. */
export function parseGoDuration(text: string): number {
  if (text === '0') return 0;
  if (!GO_DURATION.test(text)) {
    throw new GoDurationError(
      `invalid Go duration ${JSON.stringify(text)}: expected numbers with units ns, us, ms, s, m or h (e.g. 1h30m, 10m, 45s, 500ms)`,
    );
  }
  let total = 0;
  for (const [, value = '', unit = ''] of text.matchAll(GO_DURATION_PART)) {
    total += Number(value) * (MS_PER_UNIT[unit] ?? Number.NaN);
  }
  if (!Number.isFinite(total)) throw new GoDurationError(`invalid Go duration ${JSON.stringify(text)}: out of range`);
  return total;
}

function positiveDuration(text: string, field: string): number {
  let ms: number;
  try {
    ms = parseGoDuration(text);
  } catch (err) {
    throw new PolicyError(`policy field ${field}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
  if (ms <= 0) throw new PolicyError(`policy field ${field}: duration ${JSON.stringify(text)} must be greater than zero`);
  return ms;
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}

/** Merges `spec` over BUILT_IN_POLICY_SPEC into a frozen ResolvedPolicy; throws PolicyError naming the bad field. */
export function resolvePolicy(spec: GPUHealthPolicySpec = {}): ResolvedPolicy {
  const d = BUILT_IN_POLICY_SPEC;
  const t = spec.thresholds ?? {};
  const interval = spec.interval ?? d.interval;
  const lookback = spec.xid?.lookback ?? d.xid.lookback;
  const overrides = (spec.xid?.overrides ?? []).map((o) => ({ ...o }));
  const ignore = [...(spec.xid?.ignore ?? [])];
  try {
    applyXidPolicy(defaultXidCatalog, { ignore, overrides });
  } catch (err) {
    throw new PolicyError(`policy field xid: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
  const escalations = (spec.xid?.escalations ?? []).map((e, i): ResolvedXidEscalation => {
    if (!Number.isInteger(e.count) || e.count < 1)
      throw new PolicyError(`policy field xid.escalations[${i}].count: must be an integer of at least 1, got ${e.count}`);
    return {
      xid: e.xid,
      count: e.count,
      window: e.window,
      windowMs: positiveDuration(e.window, `xid.escalations[${i}].window`),
      severity: e.severity,
    };
  });
  const scoring: ResolvedScoring = { ...d.scoring, ...spec.scoring };
  if (scoring.healthyMinScore <= scoring.degradedMinScore) {
    throw new PolicyError(
      `policy field scoring: healthyMinScore (${scoring.healthyMinScore}) must be greater than degradedMinScore ` +
        `(${scoring.degradedMinScore})`,
    );
  }
  const resolved: ResolvedPolicy = {
    interval,
    intervalMs: positiveDuration(interval, 'interval'),
    suspend: spec.suspend ?? d.suspend,
    checks: [...(spec.checks ?? d.checks)],
    thresholds: {
      thermal: { ...d.thresholds.thermal, ...t.thermal },
      memory: { ...d.thresholds.memory, ...t.memory },
      power: { ...d.thresholds.power, ...t.power },
      ecc: { ...d.thresholds.ecc, ...t.ecc },
      rowRemap: { ...d.thresholds.rowRemap, ...t.rowRemap },
      inventory: { ...d.thresholds.inventory, ...t.inventory },
      pcie: { ...d.thresholds.pcie, ...t.pcie },
      fabric: { ...d.thresholds.fabric, ...t.fabric },
      inforom: { ...d.thresholds.inforom, ...t.inforom },
      nvlink: { ...d.thresholds.nvlink, ...t.nvlink },
      clockEvents: { ...d.thresholds.clockEvents, ...t.clockEvents },
    },
    xid: { lookback, lookbackMs: positiveDuration(lookback, 'xid.lookback'), ignore, overrides, escalations },
    scoring,
    actions: {
      dryRun: spec.actions?.dryRun ?? d.actions.dryRun,
      nodeCondition: { ...d.actions.nodeCondition, ...spec.actions?.nodeCondition },
      podCondition: { ...d.actions.podCondition, ...spec.actions?.podCondition },
      taint: { ...d.actions.taint, ...spec.actions?.taint },
    },
  };
  return deepFreeze(resolved);
}

/** The built-in policy, resolved once (what applies when no GPUHealthPolicy is referenced). */
export const BUILT_IN_POLICY: ResolvedPolicy = resolvePolicy();
