/**
 * Clock event (throttle) reasons. Only the slowdowns are faults; GpuIdle, SwPowerCap, SyncBoost
 * and the application/display clock settings are normal states and never findings.
 */
import type { DiagnosticCheck } from '../../../agent/api/snapshot-document.js';
import type { GpuSnapshot } from '../../../agent/nvml/types.js';
import { finding, type Finding, type Severity } from '../finding.js';
import type { ResolvedPolicy, ResolvedThresholds } from '../policy.js';
import { NONE } from './types.js';

interface SlowdownReason {
  readonly name: string;
  readonly bit: number;
  readonly check: DiagnosticCheck;
  readonly severity: (t: ResolvedThresholds['clockEvents']) => Severity;
  readonly explanation: string;
}

/** The reasons that are findings (NVML nvmlClocksEventReason* bits); every other bit is normal. */
const SLOWDOWN_REASONS: readonly SlowdownReason[] = [
  {
    name: 'HwThermalSlowdown',
    bit: 0x40,
    check: 'thermal',
    severity: (t) => t.hwThermalSlowdownSeverity,
    explanation: 'the hardware cut clocks because the GPU is too hot',
  },
  {
    name: 'HwSlowdown',
    bit: 0x8,
    check: 'health',
    severity: (t) => t.hwSlowdownSeverity,
    explanation: 'the hardware cut clocks (thermal or power brake)',
  },
  {
    name: 'HwPowerBrakeSlowdown',
    bit: 0x80,
    check: 'power',
    severity: (t) => t.hwPowerBrakeSeverity,
    explanation: 'an external power brake (e.g. the PSU) asserted a slowdown',
  },
  {
    name: 'SwThermalSlowdown',
    bit: 0x20,
    check: 'thermal',
    severity: (t) => t.swThermalSlowdownSeverity,
    explanation: 'the driver cut clocks to keep the GPU under its thermal limit',
  },
];

/** One finding per active slowdown reason, at the policy's severity for it. */
export function checkClockEvents(gpu: GpuSnapshot, policy: ResolvedPolicy): readonly Finding[] {
  const reasons = gpu.clockEventReasons;
  if (reasons === undefined) return NONE;
  const t = policy.thresholds.clockEvents;
  return SLOWDOWN_REASONS.filter((r) => (reasons.mask & r.bit) !== 0 || reasons.names.includes(r.name)).map((r) =>
    finding(r.check, r.severity(t), r.name, `Clock event reason ${r.name}: ${r.explanation} (reasons mask 0x${reasons.mask.toString(16)})`),
  );
}
