/** A GPU that answers GPU_IS_LOST has fallen off the bus. */
import type { GpuSnapshot } from '../../../agent/nvml/types.js';
import { finding, type Finding } from '../finding.js';
import { FIXED_SEVERITIES } from '../policy.js';
import { NONE } from './types.js';

/** GpuLost (critical) when NVML reports the GPU lost; clears as soon as the GPU answers again. */
export function checkLost(gpu: GpuSnapshot): readonly Finding[] {
  if (!gpu.lost) return NONE;
  return [
    finding(
      'health',
      FIXED_SEVERITIES.gpuLost,
      'GpuLost',
      `GPU ${gpu.index} is lost (NVML returns GPU_IS_LOST: fallen off the bus); reboot the node and check the PCIe slot, power and cooling`,
    ),
  ];
}
