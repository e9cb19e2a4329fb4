/** Pre-Ampere page retirement (Ampere and newer remap rows instead; see row-remap.ts). */
import type { GpuSnapshot } from '../../../agent/nvml/types.js';
import { finding, type Finding } from '../finding.js';
import { FIXED_SEVERITIES, type ResolvedPolicy } from '../policy.js';
import { reaches } from './ecc.js';

/** RetiredPages (warning/critical at retiredPagesWarning/Critical, SBE + DBE pages) and RetiredPagesPending (warning). */
export function checkRetiredPages(gpu: GpuSnapshot, policy: ResolvedPolicy): readonly Finding[] {
  const pages = gpu.retiredPages;
  if (pages === undefined) return [];
  const t = policy.thresholds.ecc;
  const sbe = pages.singleBitEcc ?? 0;
  const dbe = pages.doubleBitEcc ?? 0;
  const total = sbe + dbe;
  const found: Finding[] = [];
  const severity = reaches(total, t.retiredPagesCritical) ? 'critical' : reaches(total, t.retiredPagesWarning) ? 'warning' : undefined;
  if (severity !== undefined) {
    const limit = severity === 'critical' ? t.retiredPagesCritical : t.retiredPagesWarning;
    found.push(
      finding(
        'ecc',
        severity,
        'RetiredPages',
        `${total} retired memory pages (${sbe} for single-bit, ${dbe} for double-bit errors; ${severity} at ${limit})`,
      ),
    );
  }
  if (pages.pending === true) {
    found.push(
      finding(
        'ecc',
        FIXED_SEVERITIES.retiredPagesPending,
        'RetiredPagesPending',
        'A page retirement is pending: it takes effect when the driver reloads (reset the GPU or reboot)',
      ),
    );
  }
  return found;
}
