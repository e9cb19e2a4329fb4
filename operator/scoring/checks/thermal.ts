/** Temperature against the GPU's own slowdown threshold, so one policy fits every model. */
import type { GpuSnapshot } from '../../../agent/nvml/types.js';
import { finding, type Finding } from '../finding.js';
import type { ResolvedPolicy } from '../policy.js';
import { NONE } from './types.js';

/** ThermalMargin when the margin to slowdownCelsius is at or under the critical/warning margin; needs both readings. */
export function checkThermal(gpu: GpuSnapshot, policy: ResolvedPolicy): readonly Finding[] {
  const temp = gpu.temperature?.gpuCelsius;
  const slowdown = gpu.temperature?.slowdownCelsius;
  if (temp === undefined || slowdown === undefined || slowdown <= 0) return NONE;
  const { warningMarginCelsius, criticalMarginCelsius } = policy.thresholds.thermal;
  const margin = slowdown - temp;
  const severity = margin <= criticalMarginCelsius ? 'critical' : margin <= warningMarginCelsius ? 'warning' : undefined;
  if (severity === undefined) return NONE;
  const limit = severity === 'critical' ? criticalMarginCelsius : warningMarginCelsius;
  return [
    finding(
      'thermal',
      severity,
      'ThermalMargin',
      `GPU at ${temp}°C is ${margin}°C from its slowdown temperature ${slowdown}°C (${severity} at a margin of ${limit}°C or less)`,
    ),
  ];
}
