/** PCIe link errors from field values: replay rollovers (the link retrained) and correctable errors. */
import type { GpuSnapshot } from '../../../agent/nvml/types.js';
import { finding, type Finding } from '../finding.js';
import { FIXED_SEVERITIES, type ResolvedPolicy } from '../policy.js';
import { reaches } from './ecc.js';
import { NONE } from './types.js';

/** PcieReplayRollover (at replayRolloverWarning) and PcieCorrectableErrors (at correctableErrorsWarning), warnings. */
export function checkPcieErrors(gpu: GpuSnapshot, policy: ResolvedPolicy): readonly Finding[] {
  const pcie = gpu.pcie;
  if (pcie === undefined) return NONE;
  const t = policy.thresholds.pcie;
  const found: Finding[] = [];
  if (reaches(pcie.replayRolloverCounter, t.replayRolloverWarning)) {
    found.push(
      finding(
        'pcie',
        FIXED_SEVERITIES.pcieLinkErrors,
        'PcieReplayRollover',
        `PCIe replay counter rolled over ${pcie.replayRolloverCounter} time(s) (warning at ${t.replayRolloverWarning}): packets ` +
          `failed every replay and the link retrained; check the slot, riser or retimer`,
      ),
    );
  }
  if (reaches(pcie.correctableErrors, t.correctableErrorsWarning)) {
    found.push(
      finding(
        'pcie',
        FIXED_SEVERITIES.pcieLinkErrors,
        'PcieCorrectableErrors',
        `${pcie.correctableErrors} correctable PCIe errors since the driver loaded (warning at ${t.correctableErrorsWarning}): ` +
          `the link is marginal`,
      ),
    );
  }
  return found;
}
