/** Ampere+ row remapping: a failure means no spare rows left; pending means a reset is needed. */
import type { GpuSnapshot } from '../../../agent/nvml/types.js';
import { finding, type Finding } from '../finding.js';
import { FIXED_SEVERITIES, type ResolvedPolicy } from '../policy.js';
import { reaches } from './ecc.js';

/** RowRemapFailure (failureSeverity), RowRemapPending (pendingSeverity), RowRemapUncorrectable (warning). */
export function checkRowRemap(gpu: GpuSnapshot, policy: ResolvedPolicy): readonly Finding[] {
  const rows = gpu.remappedRows;
  if (rows === undefined) return [];
  const t = policy.thresholds.rowRemap;
  const counts = `${rows.corrected} rows remapped for correctable, ${rows.uncorrected} for uncorrectable errors`;
  const found: Finding[] = [];
  if (rows.failure) {
    found.push(
      finding('ecc', t.failureSeverity, 'RowRemapFailure', `Row remapping failed (no spare rows left; ${counts}); the GPU needs service`),
    );
  }
  if (rows.pending) {
    found.push(finding('ecc', t.pendingSeverity, 'RowRemapPending', `A row remap is pending (${counts}); reset the GPU to apply it`));
  }
  if (reaches(rows.uncorrected, t.uncorrectableRowsWarning)) {
    found.push(
      finding(
        'ecc',
        FIXED_SEVERITIES.uncorrectableRows,
        'RowRemapUncorrectable',
        `${rows.uncorrected} rows remapped for uncorrectable errors (warning at ${t.uncorrectableRowsWarning})`,
      ),
    );
  }
  return found;
}
