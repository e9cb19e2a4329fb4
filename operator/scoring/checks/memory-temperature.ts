/** Memory (HBM) temperature against the board's own memory maximum, so one policy fits every model. */
import type { GpuSnapshot } from '../../../agent/nvml/types.js';
import { finding, type Finding } from '../finding.js';
import type { ResolvedPolicy } from '../policy.js';
import { NONE } from './types.js';

/** MemoryTemperatureMargin when the margin to memoryMaxCelsius is at or under the critical/warning margin; needs both readings. */
export function checkMemoryTemperature(gpu: GpuSnapshot, policy: ResolvedPolicy): readonly Finding[] {
  const temp = gpu.temperature?.memoryCelsius;
  const max = gpu.temperature?.memoryMaxCelsius;
  if (temp === undefined || max === undefined || max <= 0) return NONE;
  const { memoryWarningMarginCelsius: warning, memoryCriticalMarginCelsius: critical } = policy.thresholds.thermal;
  const margin = max - temp;
  const severity = margin <= critical ? 'critical' : margin <= warning ? 'warning' : undefined;
  if (severity === undefined) return NONE;
  const limit = severity === 'critical' ? critical : warning;
  return [
    finding(
      'thermal',
      severity,
      'MemoryTemperatureMargin',
      `Memory (HBM) at ${temp}°C is ${margin}°C from its maximum ${max}°C (${severity} at a margin of ${limit}°C or less)`,
    ),
  ];
}
