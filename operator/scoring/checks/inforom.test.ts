import { BUILT_IN_POLICY_SPEC } from '../../../api/defaults.js';
import type { GpuSnapshot } from '../../../agent/nvml/types.js';
import { BUILT_IN_POLICY, resolvePolicy } from '../policy.js';
import { h100 } from '../test-fixtures.js';
import { summary } from './check-test-helpers.js';
import { checkInforom } from './inforom.js';

const t = BUILT_IN_POLICY_SPEC.thresholds;

describe('checkInforom', () => {
  it.each<[string, GpuSnapshot['inforom'], string[]]>([
    ['unknown', undefined, []],
    ['valid', { imageVersion: 'G520.0200.00.05', valid: true }, []],
    ['versions only (validation unsupported)', { imageVersion: 'G520.0200.00.05' }, []],
    ['corrupted', { imageVersion: 'G520.0200.00.05', valid: false }, [`${t.inforom.invalidSeverity}:InforomCorrupted`]],
  ])('%s', (_, inforom, expected) => {
    expect(summary(checkInforom(inforom === undefined ? h100(0) : h100(0, { inforom }), BUILT_IN_POLICY))).toEqual(expected);
  });

  it('follows the policy severity', () => {
    const policy = resolvePolicy({ thresholds: { inforom: { invalidSeverity: 'critical' } } });
    expect(summary(checkInforom(h100(0, { inforom: { valid: false } }), policy))).toEqual(['critical:InforomCorrupted']);
  });
});
