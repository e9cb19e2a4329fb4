import { BUILT_IN_POLICY_SPEC } from '../../../api/defaults.js';
import type { GpuSnapshot } from '../../../agent/nvml/types.js';
import { BUILT_IN_POLICY, FIXED_SEVERITIES, resolvePolicy } from '../policy.js';
import { h100 } from '../test-fixtures.js';
import { summary } from './check-test-helpers.js';
import { checkViolationTime } from './violation-time.js';

const t = BUILT_IN_POLICY_SPEC.thresholds;
const NS = 1e9;

describe('checkViolationTime', () => {
  const limit = t.thermal.violationSecondsWarning;
  it.each<[string, GpuSnapshot['violationTime'], string[]]>([
    ['unknown', undefined, []],
    ['no violation', { thermalNs: 0, powerNs: 0 }, []],
    ['thermal just under', { thermalNs: (limit - 1) * NS }, []],
    ['thermal at the threshold', { thermalNs: limit * NS }, [`${FIXED_SEVERITIES.violationTime}:ThermalViolationTime`]],
    ['power capping (not judged by default)', { powerNs: 86_400 * NS }, []],
  ])('%s', (_, violationTime, expected) => {
    const gpu = violationTime === undefined ? h100(0) : h100(0, { violationTime });
    expect(summary(checkViolationTime(gpu, BUILT_IN_POLICY))).toEqual(expected);
  });

  it('judges power violation time once a policy sets a threshold', () => {
    const policy = resolvePolicy({ thresholds: { power: { violationSecondsWarning: 3600 } } });
    expect(summary(checkViolationTime(h100(0, { violationTime: { powerNs: 3600 * NS } }), policy))).toEqual(['warning:PowerViolationTime']);
    expect(BUILT_IN_POLICY.thresholds.power.violationSecondsWarning).toBeUndefined();
  });
});
