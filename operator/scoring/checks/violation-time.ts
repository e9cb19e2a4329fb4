/**
 * Violation time: how long the thermal or power policy held the clocks down since the driver
 * loaded. Thermal time means cooling is not keeping up; power time is normal under full load and
 * is judged only when the policy sets a threshold.
 */
import type { GpuSnapshot } from '../../../agent/nvml/types.js';
import { finding, type Finding } from '../finding.js';
import { FIXED_SEVERITIES, type ResolvedPolicy } from '../policy.js';
import { reaches } from './ecc.js';

const NS_PER_SECOND = 1e9;

/** ThermalViolationTime and (when power.violationSecondsWarning is set) PowerViolationTime, warnings. */
export function checkViolationTime(gpu: GpuSnapshot, policy: ResolvedPolicy): readonly Finding[] {
  const found: Finding[] = [];
  const seconds = (ns: number | undefined): number | undefined => (ns === undefined ? undefined : ns / NS_PER_SECOND);
  const thermal = seconds(gpu.violationTime?.thermalNs);
  const thermalLimit = policy.thresholds.thermal.violationSecondsWarning;
  if (thermal !== undefined && reaches(thermal, thermalLimit)) {
    found.push(
      finding(
        'thermal',
        FIXED_SEVERITIES.violationTime,
        'ThermalViolationTime',
        `The thermal policy has held the clocks down ${thermal.toFixed(0)} s since the driver loaded (warning at ` +
          `${thermalLimit} s): check the cooling`,
      ),
    );
  }
  const power = seconds(gpu.violationTime?.powerNs);
  const powerLimit = policy.thresholds.power.violationSecondsWarning;
  if (power !== undefined && powerLimit !== undefined && reaches(power, powerLimit)) {
    found.push(
      finding(
        'power',
        FIXED_SEVERITIES.violationTime,
        'PowerViolationTime',
        `The power policy has held the clocks down ${power.toFixed(0)} s since the driver loaded (warning at ${powerLimit} s)`,
      ),
    );
  }
  return found;
}
