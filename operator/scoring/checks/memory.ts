/** Framebuffer use. Frameworks reserve ~95% up front, so this is off unless usedPercentWarning is set. */
import type { GpuSnapshot } from '../../../agent/nvml/types.js';
import { finding, type Finding } from '../finding.js';
import { FIXED_SEVERITIES, type ResolvedPolicy } from '../policy.js';
import { NONE } from './types.js';

const BYTES_PER_GIB = 1024 ** 3;
const PERCENT = 100;

/** MemoryUsage (warning) when used memory reaches usedPercentWarning; nothing when the threshold is unset. */
export function checkMemory(gpu: GpuSnapshot, policy: ResolvedPolicy): readonly Finding[] {
  const limit = policy.thresholds.memory.usedPercentWarning;
  const memory = gpu.memory;
  if (limit === undefined || memory === undefined || memory.totalBytes <= 0) return NONE;
  const used = (memory.usedBytes / memory.totalBytes) * PERCENT;
  if (used < limit) return NONE;
  const gib = (bytes: number): string => (bytes / BYTES_PER_GIB).toFixed(1);
  return [
    finding(
      'health',
      FIXED_SEVERITIES.memoryUsage,
      'MemoryUsage',
      `Memory ${used.toFixed(1)}% used (${gib(memory.usedBytes)} of ${gib(memory.totalBytes)} GiB; warning at ${limit}%)`,
    ),
  ];
}
