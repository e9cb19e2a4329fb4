/** InfoROM validity: a corrupted InfoROM cannot be trusted with the ECC and page-retirement records. */
import type { GpuSnapshot } from '../../../agent/nvml/types.js';
import { finding, type Finding } from '../finding.js';
import type { ResolvedPolicy } from '../policy.js';
import { NONE } from './types.js';

/** InforomCorrupted (invalidSeverity) when nvmlDeviceValidateInforom answered CORRUPTED_INFOROM; versions are never judged. */
export function checkInforom(gpu: GpuSnapshot, policy: ResolvedPolicy): readonly Finding[] {
  if (gpu.inforom?.valid !== false) return NONE;
  const image = gpu.inforom.imageVersion === undefined ? '' : ` (image ${gpu.inforom.imageVersion})`;
  return [
    finding(
      'health',
      policy.thresholds.inforom.invalidSeverity,
      'InforomCorrupted',
      `The InfoROM${image} fails validation: its ECC and retirement records cannot be trusted; plan an RMA`,
    ),
  ];
}
