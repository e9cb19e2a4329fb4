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

/** The built-in GPUHealthPolicy spec: what applies when a GPUDiagnostic references no policy. */
export const BUILT_IN_POLICY_SPEC = {
  interval: '5m',
  suspend: false,
  checks: ['health', 'xid'],
  thresholds: {
    thermal: { warningMarginCelsius: 10, criticalMarginCelsius: 0 },
    memory: {},
    power: { overLimitPercentWarning: 5 },
    ecc: { volatileCorrectedWarning: 1000, volatileUncorrectedCritical: 1, retiredPagesWarning: 48, retiredPagesCritical: 60 },
    rowRemap: { pendingSeverity: 'warning', failureSeverity: 'critical', uncorrectableRowsWarning: 8 },
    inventory: { missingGpusSeverity: DEFAULT_MISSING_GPUS_SEVERITY },
    pcie: { widthDegradedSeverity: 'warning', replayCounterWarning: 1000 },
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
    taint: { enabled: false, key: 'gpudiag.io/gpu-unhealthy', effect: 'NoSchedule', maxTaintedPercent: 10 },
  },
} as const satisfies GPUHealthPolicySpec;
