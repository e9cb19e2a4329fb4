import { BUILT_IN_POLICY_SPEC } from '../../../api/defaults.js';
import type { GpuPower } from '../../../agent/nvml/types.js';
import { BUILT_IN_POLICY, FIXED_SEVERITIES } from '../policy.js';
import { h100 } from '../test-fixtures.js';
import { summary } from './check-test-helpers.js';
import { checkPower } from './power.js';

const LIMIT = 700;
const over = BUILT_IN_POLICY_SPEC.thresholds.power.overLimitPercentWarning;
const atAllowance = LIMIT * (1 + over / 100);

describe('checkPower', () => {
  it.each<[string, GpuPower | undefined, string[]]>([
    ['idle', { usageWatts: 71.5, enforcedLimitWatts: LIMIT }, []],
    ['full load at the cap (SwPowerCap)', { usageWatts: 698.2, enforcedLimitWatts: LIMIT }, []],
    ['over the limit within the allowance', { usageWatts: atAllowance, enforcedLimitWatts: LIMIT }, []],
    [
      'over the allowance',
      { usageWatts: atAllowance + 1, enforcedLimitWatts: LIMIT },
      [`${FIXED_SEVERITIES.powerOverLimit}:PowerOverLimit`],
    ],
    ['no limit reading', { usageWatts: 900 }, []],
    ['no usage reading', { enforcedLimitWatts: LIMIT }, []],
    ['no power readings', undefined, []],
  ])('%s', (_, power, expected) => {
    const gpu = h100(0);
    if (power === undefined) delete gpu.power;
    else gpu.power = power;
    expect(summary(checkPower(gpu, BUILT_IN_POLICY))).toEqual(expected);
  });
});
