/**
 * ECC counters. Volatile counts (since the last driver load) judge current health; aggregate
 * (lifetime) counts never reset, so they are history: at most an info finding.
 */
import type { GpuSnapshot } from '../../../agent/nvml/types.js';
import { finding, type Finding } from '../finding.js';
import { FIXED_SEVERITIES, type ResolvedPolicy } from '../policy.js';

/** A count at or over a threshold; a zero count is never a finding, whatever the threshold. */
export function reaches(count: number | undefined, threshold: number): count is number {
  return count !== undefined && count > 0 && count >= threshold;
}

/** VolatileDoubleBitEcc (critical), VolatileSingleBitEcc (warning), AggregateEccHistory (info). */
export function checkEcc(gpu: GpuSnapshot, policy: ResolvedPolicy): readonly Finding[] {
  const ecc = gpu.ecc;
  if (ecc === undefined) return [];
  const t = policy.thresholds.ecc;
  const found: Finding[] = [];
  if (reaches(ecc.volatileUncorrected, t.volatileUncorrectedCritical)) {
    found.push(
      finding(
        'ecc',
        'critical',
        'VolatileDoubleBitEcc',
        `${ecc.volatileUncorrected} uncorrectable (double-bit) ECC errors since the driver loaded (critical at ` +
          `${t.volatileUncorrectedCritical}); drain and reset the GPU`,
      ),
    );
  }
  if (reaches(ecc.volatileCorrected, t.volatileCorrectedWarning)) {
    found.push(
      finding(
        'ecc',
        FIXED_SEVERITIES.volatileCorrectedEcc,
        'VolatileSingleBitEcc',
        `${ecc.volatileCorrected} corrected (single-bit) ECC errors since the driver loaded (warning at ${t.volatileCorrectedWarning})`,
      ),
    );
  }
  const lifetimeCorrected = ecc.aggregateCorrected ?? 0;
  const lifetimeUncorrected = ecc.aggregateUncorrected ?? 0;
  if (lifetimeCorrected > 0 || lifetimeUncorrected > 0) {
    found.push(
      finding(
        'ecc',
        FIXED_SEVERITIES.aggregateEccHistory,
        'AggregateEccHistory',
        `Lifetime ECC history: ${lifetimeCorrected} corrected, ${lifetimeUncorrected} uncorrected (aggregate counters never ` +
          `reset; not a current fault)`,
      ),
    );
  }
  return found;
}
