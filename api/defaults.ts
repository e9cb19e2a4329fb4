/**
 * The documented built-in defaults. The CRDs declare the same values as OpenAPI defaults; a test
 * creates empty objects on a real API server and checks that what it defaults equals these, so
 * the operator (which applies these when no policy is referenced) and the API never disagree.
 */
import type { GPUDiagnosticSpec, GPUHealthPolicySpec } from './generated/types.js';

/** Spec fields of a GPUDiagnostic that the API server fills in when omitted. */
export const DIAGNOSTIC_SPEC_DEFAULTS = {
  checks: ['health', 'xid'],
  xidLookback: '1h',
  timeoutSeconds: 60,
} as const satisfies GPUDiagnosticSpec;

/** perNodeTimeoutSeconds when unset (the operator also caps it at timeoutSeconds). */
export const DEFAULT_PER_NODE_TIMEOUT_SECONDS = 20;

/**
 * A node that advertises more GPUs than its agent sees (none included: NVML unavailable, no-GPU
 * mode) is critical: a GPU can vanish from the bus without any XID.
 */
export const DEFAULT_MISSING_GPUS_SEVERITY = 'critical';

/**
 * HBM throttles at the board's memory maximum (NVML_TEMPERATURE_THRESHOLD_MEM_MAX, 95°C on H100):
 * 5°C is the last warning before memory-induced slowdown, reaching it is critical.
 */
export const DEFAULT_MEMORY_TEMPERATURE_WARNING_MARGIN_CELSIUS = 5;
export const DEFAULT_MEMORY_TEMPERATURE_CRITICAL_MARGIN_CELSIUS = 0;
/**
 * Thermal violation time counts every moment the thermal policy held the clocks down since the
 * driver loaded. A datacenter GPU in working cooling accrues none; five minutes in total is a
 * cooling fault (fan wall, blocked inlet, failed pump), not noise.
 */
export const DEFAULT_THERMAL_VIOLATION_SECONDS_WARNING = 300;
/**
 * BAR1 maps GPU memory for the CPU and peers (GPUDirect RDMA, NCCL over IB): when it is full, new
 * mappings fail and jobs crash at start. 95% is clearly near exhaustion; lower use is normal.
 */
export const DEFAULT_BAR1_USED_PERCENT_WARNING = 95;
/**
 * A replay rollover means one packet failed every replay (REPLAY_NUM) and the link retrained:
 * a single one is a link fault worth a look (riser, slot, retimer).
 */
export const DEFAULT_PCIE_REPLAY_ROLLOVER_WARNING = 1;
/**
 * Correctable errors include every replay and bad TLP/DLLP the link recovered from: ten times the
 * replay threshold, so a marginal link is flagged before its replays are.
 */
export const DEFAULT_PCIE_CORRECTABLE_ERRORS_WARNING = 10_000;
/**
 * On an HGX system a GPU whose fabric registration is not complete, or failed, cannot reach its
 * peers over NVSwitch: multi-GPU jobs hang or fail. Critical, as the issue demands; reduced
 * bandwidth still works and is a warning.
 */
export const DEFAULT_FABRIC_NOT_COMPLETED_SEVERITY = 'critical';
export const DEFAULT_FABRIC_FAILED_SEVERITY = 'critical';
export const DEFAULT_FABRIC_DEGRADED_SEVERITY = 'warning';
/**
 * A corrupted InfoROM still runs, but its persistent ECC and page-retirement records cannot be
 * trusted and NVIDIA's answer is an RMA: a warning that keeps the GPU schedulable until replaced.
 */
export const DEFAULT_INFOROM_INVALID_SEVERITY = 'warning';
/**
 * A DRAM retirement failure (a bad row that could not be retired) or a fatal poison error (poisoned
 * memory was consumed) leaves the GPU unsafe until it is reset: critical. Contained poison and an
 * ECC storm are early signs: warning. A successful retirement is the mechanism working: no finding.
 */
export const DEFAULT_DRAM_RETIREMENT_FAILURE_SEVERITY = 'critical';
export const DEFAULT_FATAL_POISON_SEVERITY = 'critical';
export const DEFAULT_NON_FATAL_POISON_SEVERITY = 'warning';
export const DEFAULT_ECC_STORM_SEVERITY = 'warning';

/** The built-in GPUHealthPolicy spec: what applies when a GPUDiagnostic references no policy. */
export const BUILT_IN_POLICY_SPEC = {
  interval: '5m',
  suspend: false,
  checks: ['health', 'xid'],
  thresholds: {
    thermal: {
      warningMarginCelsius: 10,
      criticalMarginCelsius: 0,
      memoryWarningMarginCelsius: DEFAULT_MEMORY_TEMPERATURE_WARNING_MARGIN_CELSIUS,
      memoryCriticalMarginCelsius: DEFAULT_MEMORY_TEMPERATURE_CRITICAL_MARGIN_CELSIUS,
      violationSecondsWarning: DEFAULT_THERMAL_VIOLATION_SECONDS_WARNING,
    },
    memory: { bar1UsedPercentWarning: DEFAULT_BAR1_USED_PERCENT_WARNING },
    // power.violationSecondsWarning has no default: power capping under full load is normal
    power: { overLimitPercentWarning: 5 },
    ecc: {
      volatileCorrectedWarning: 1000,
      volatileUncorrectedCritical: 1,
      retiredPagesWarning: 48,
      retiredPagesCritical: 60,
      dramRetirementFailureSeverity: DEFAULT_DRAM_RETIREMENT_FAILURE_SEVERITY,
      fatalPoisonSeverity: DEFAULT_FATAL_POISON_SEVERITY,
      nonFatalPoisonSeverity: DEFAULT_NON_FATAL_POISON_SEVERITY,
      eccStormSeverity: DEFAULT_ECC_STORM_SEVERITY,
    },
    rowRemap: { pendingSeverity: 'warning', failureSeverity: 'critical', uncorrectableRowsWarning: 8 },
    inventory: { missingGpusSeverity: DEFAULT_MISSING_GPUS_SEVERITY },
    pcie: {
      widthDegradedSeverity: 'warning',
      replayCounterWarning: 1000,
      replayRolloverWarning: DEFAULT_PCIE_REPLAY_ROLLOVER_WARNING,
      correctableErrorsWarning: DEFAULT_PCIE_CORRECTABLE_ERRORS_WARNING,
    },
    fabric: {
      notCompletedSeverity: DEFAULT_FABRIC_NOT_COMPLETED_SEVERITY,
      failedSeverity: DEFAULT_FABRIC_FAILED_SEVERITY,
      degradedSeverity: DEFAULT_FABRIC_DEGRADED_SEVERITY,
    },
    inforom: { invalidSeverity: DEFAULT_INFOROM_INVALID_SEVERITY },
    nvlink: { linkDownSeverity: 'critical', errorCountWarning: 1000 },
    clockEvents: {
      hwThermalSlowdownSeverity: 'critical',
      hwSlowdownSeverity: 'warning',
      hwPowerBrakeSeverity: 'warning',
      swThermalSlowdownSeverity: 'warning',
    },
  },
  xid: { lookback: '1h' },
  scoring: { warningPenalty: 15, criticalPenalty: 60, infoPenalty: 0, healthyMinScore: 85, degradedMinScore: 40 },
  actions: {
    dryRun: false,
    nodeCondition: { enabled: false },
    podCondition: { enabled: false },
    taint: { enabled: false, key: 'gpudiag.io/gpu-unhealthy', effect: 'NoSchedule', maxTaintedPercent: 10 },
  },
} as const satisfies GPUHealthPolicySpec;
