import { BUILT_IN_POLICY_SPEC } from '../../../api/defaults.js';
import type { GpuRetiredPages } from '../../../agent/nvml/types.js';
import { BUILT_IN_POLICY, FIXED_SEVERITIES } from '../policy.js';
import { h100 } from '../test-fixtures.js';
import { summary } from './check-test-helpers.js';
import { checkRetiredPages } from './retired-pages.js';

const { retiredPagesWarning, retiredPagesCritical } = BUILT_IN_POLICY_SPEC.thresholds.ecc;

describe('checkRetiredPages (pre-Ampere)', () => {
  it.each<[string, GpuRetiredPages | undefined, string[]]>([
    ['none retired', { singleBitEcc: 0, doubleBitEcc: 0, pending: false }, []],
    ['a few retired', { singleBitEcc: 2, doubleBitEcc: 1, pending: false }, []],
    [
      'SBE + DBE at the warning count',
      { singleBitEcc: retiredPagesWarning - 1, doubleBitEcc: 1, pending: false },
      ['warning:RetiredPages'],
    ],
    ['at the critical count', { singleBitEcc: retiredPagesCritical - 2, doubleBitEcc: 2, pending: false }, ['critical:RetiredPages']],
    [
      'a retirement pending',
      { singleBitEcc: 0, doubleBitEcc: 1, pending: true },
      [`${FIXED_SEVERITIES.retiredPagesPending}:RetiredPagesPending`],
    ],
    ['unsupported (Ampere and newer)', undefined, []],
  ])('%s', (_, pages, expected) => {
    const gpu = h100(0);
    if (pages !== undefined) gpu.retiredPages = pages;
    expect(summary(checkRetiredPages(gpu, BUILT_IN_POLICY))).toEqual(expected);
  });
});
