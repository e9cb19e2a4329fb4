/** Power draw against the enforced limit. */
import type { GpuSnapshot } from '../../../agent/nvml/types.js';
import { finding, type Finding } from '../finding.js';
import { FIXED_SEVERITIES, type ResolvedPolicy } from '../policy.js';
import { NONE } from './types.js';

const PERCENT = 100;

/** PowerOverLimit (warning) when draw exceeds the enforced limit by more than overLimitPercentWarning. */
export function checkPower(gpu: GpuSnapshot, policy: ResolvedPolicy): readonly Finding[] {
  const usage = gpu.power?.usageWatts;
  const limit = gpu.power?.enforcedLimitWatts;
  if (usage === undefined || limit === undefined || limit <= 0) return NONE;
  const over = policy.thresholds.power.overLimitPercentWarning;
  if (usage <= limit * (1 + over / PERCENT)) return NONE;
  const percent = ((usage - limit) / limit) * PERCENT;
  return [
    finding(
      'power',
      FIXED_SEVERITIES.powerOverLimit,
      'PowerOverLimit',
      `Power draw ${usage.toFixed(0)} W is ${percent.toFixed(1)}% over the enforced limit ${limit.toFixed(0)} W (warning above ${over}%)`,
    ),
  ];
}
