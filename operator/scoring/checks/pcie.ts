/**
 * PCIe link. A narrower link than the maximum is a fault (bad seating, riser, slot); a lower
 * current generation is normal power saving at idle and is never a finding.
 */
import type { GpuSnapshot } from '../../../agent/nvml/types.js';
import { finding, type Finding } from '../finding.js';
import { FIXED_SEVERITIES, type ResolvedPolicy } from '../policy.js';
import { reaches } from './ecc.js';

/** PcieWidthDegraded (widthDegradedSeverity) and PcieReplays (warning at replayCounterWarning). */
export function checkPcie(gpu: GpuSnapshot, policy: ResolvedPolicy): readonly Finding[] {
  const pcie = gpu.pcie;
  if (pcie === undefined) return [];
  const t = policy.thresholds.pcie;
  const found: Finding[] = [];
  const { currentWidth, maxWidth } = pcie;
  if (currentWidth !== undefined && maxWidth !== undefined && currentWidth < maxWidth) {
    found.push(
      finding(
        'pcie',
        t.widthDegradedSeverity,
        'PcieWidthDegraded',
        `PCIe link runs at x${currentWidth} of x${maxWidth}; reseat the GPU or check the slot/riser`,
      ),
    );
  }
  if (reaches(pcie.replayCounter, t.replayCounterWarning)) {
    found.push(
      finding(
        'pcie',
        FIXED_SEVERITIES.pcieReplays,
        'PcieReplays',
        `PCIe replay counter at ${pcie.replayCounter} (warning at ${t.replayCounterWarning}): the link retransmits, check signal integrity`,
      ),
    );
  }
  return found;
}
