import { BUILT_IN_POLICY_SPEC } from '../../../api/defaults.js';
import { BUILT_IN_POLICY } from '../policy.js';
import { h100 } from '../test-fixtures.js';
import { checkBar1 } from './bar1.js';
import { summary } from './check-test-helpers.js';

const t = BUILT_IN_POLICY_SPEC.thresholds;
const GIB = 1024 ** 3;

describe('checkBar1', () => {
  const total = 128 * GIB;
  it.each<[string, number, string[]]>([
    ['nearly empty', 2 * 1024 ** 2, []],
    ['half used (normal with RDMA)', total / 2, []],
    ['at the threshold', (total * t.memory.bar1UsedPercentWarning) / 100, ['warning:Bar1NearlyFull']],
    ['full', total, ['warning:Bar1NearlyFull']],
  ])('%s', (_, used, expected) => {
    expect(summary(checkBar1(h100(0, { bar1: { totalBytes: total, usedBytes: used, freeBytes: total - used } }), BUILT_IN_POLICY))).toEqual(
      expected,
    );
  });
});
