/** BAR1 aperture use: only near exhaustion is a finding (new CPU and peer mappings then fail). */
import type { GpuSnapshot } from '../../../agent/nvml/types.js';
import { finding, type Finding } from '../finding.js';
import { FIXED_SEVERITIES, type ResolvedPolicy } from '../policy.js';
import { NONE } from './types.js';

const PERCENT = 100;
const MIB = 1024 * 1024;

/** Bar1NearlyFull (warning) when BAR1 use reaches bar1UsedPercentWarning of its total. */
export function checkBar1(gpu: GpuSnapshot, policy: ResolvedPolicy): readonly Finding[] {
  const bar1 = gpu.bar1;
  if (bar1 === undefined || bar1.totalBytes <= 0) return NONE;
  const percent = (bar1.usedBytes / bar1.totalBytes) * PERCENT;
  const limit = policy.thresholds.memory.bar1UsedPercentWarning;
  if (percent < limit) return NONE;
  return [
    finding(
      'health',
      FIXED_SEVERITIES.bar1Usage,
      'Bar1NearlyFull',
      `BAR1 is ${percent.toFixed(1)}% used (${Math.round(bar1.usedBytes / MIB)} of ${Math.round(bar1.totalBytes / MIB)} MiB; ` +
        `warning at ${limit}%): new GPU memory mappings (GPUDirect RDMA) will fail`,
    ),
  ];
}
