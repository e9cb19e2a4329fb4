import { BUILT_IN_POLICY_SPEC } from '../../../api/defaults.js';
import type { GpuEcc } from '../../../agent/nvml/types.js';
import { BUILT_IN_POLICY, FIXED_SEVERITIES, resolvePolicy } from '../policy.js';
import { h100 } from '../test-fixtures.js';
import { summary } from './check-test-helpers.js';
import { checkEcc } from './ecc.js';

const t = BUILT_IN_POLICY_SPEC.thresholds.ecc;
const clean: GpuEcc = {
  enabled: true,
  pendingEnabled: true,
  volatileCorrected: 0,
  volatileUncorrected: 0,
  aggregateCorrected: 0,
  aggregateUncorrected: 0,
};

describe('checkEcc', () => {
  it.each<[string, GpuEcc | undefined, string[]]>([
    ['no errors', clean, []],
    [
      'volatile double-bit errors at the threshold',
      { ...clean, volatileUncorrected: t.volatileUncorrectedCritical },
      ['critical:VolatileDoubleBitEcc'],
    ],
    ['volatile corrected below the threshold', { ...clean, volatileCorrected: t.volatileCorrectedWarning - 1 }, []],
    [
      'volatile corrected at the threshold',
      { ...clean, volatileCorrected: t.volatileCorrectedWarning },
      [`${FIXED_SEVERITIES.volatileCorrectedEcc}:VolatileSingleBitEcc`],
    ],
    [
      'historical aggregate counts only (lifetime, never reset)',
      { ...clean, aggregateCorrected: 15_234, aggregateUncorrected: 2 },
      [`${FIXED_SEVERITIES.aggregateEccHistory}:AggregateEccHistory`],
    ],
    ['ECC disabled (no counters)', { enabled: false }, []],
    ['not collected', undefined, []],
  ])('%s', (_, ecc, expected) => {
    const gpu = h100(0);
    if (ecc === undefined) delete gpu.ecc;
    else gpu.ecc = ecc;
    expect(summary(checkEcc(gpu, BUILT_IN_POLICY))).toEqual(expected);
  });

  it('aggregate history is info, never warning or critical', () => {
    expect(FIXED_SEVERITIES.aggregateEccHistory).toBe('info');
    const gpu = h100(0, { ecc: { ...clean, aggregateCorrected: 1e9, aggregateUncorrected: 1e6 } });
    expect(checkEcc(gpu, BUILT_IN_POLICY).every((f) => f.severity === 'info')).toBe(true);
  });

  it('a volatile DBE is critical with the count in the message', () => {
    const [f] = checkEcc(h100(0, { ecc: { ...clean, volatileUncorrected: 3 } }), BUILT_IN_POLICY);
    expect(f).toMatchObject({ check: 'ecc', severity: 'critical', code: 'VolatileDoubleBitEcc' });
    expect(f?.message).toContain('3 uncorrectable');
  });

  it('a zero count is never a finding, even with a zero threshold', () => {
    const policy = resolvePolicy({ thresholds: { ecc: { volatileCorrectedWarning: 0, volatileUncorrectedCritical: 0 } } });
    expect(checkEcc(h100(0, { ecc: clean }), policy)).toEqual([]);
  });
});
