import { BUILT_IN_POLICY_SPEC } from '../../../api/defaults.js';
import type { GpuPcie } from '../../../agent/nvml/types.js';
import { BUILT_IN_POLICY, FIXED_SEVERITIES } from '../policy.js';
import { h100 } from '../test-fixtures.js';
import { summary } from './check-test-helpers.js';
import { checkPcie } from './pcie.js';

const t = BUILT_IN_POLICY_SPEC.thresholds.pcie;
const full: GpuPcie = { currentGen: 5, currentWidth: 16, maxGen: 5, maxWidth: 16, replayCounter: 0 };

describe('checkPcie', () => {
  it.each<[string, GpuPcie, string[]]>([
    ['Gen5 x16 at full speed', full, []],
    ['lower generation at idle (power saving)', { ...full, currentGen: 1 }, []],
    ['narrower link', { ...full, currentWidth: 8 }, [`${t.widthDegradedSeverity}:PcieWidthDegraded`]],
    ['replays below the threshold', { ...full, replayCounter: t.replayCounterWarning - 1 }, []],
    ['replays at the threshold', { ...full, replayCounter: t.replayCounterWarning }, [`${FIXED_SEVERITIES.pcieReplays}:PcieReplays`]],
    ['width unknown', { currentGen: 4 }, []],
  ])('%s', (_, pcie, expected) => {
    expect(summary(checkPcie(h100(0, { pcie }), BUILT_IN_POLICY))).toEqual(expected);
  });

  it('names both widths', () => {
    const [f] = checkPcie(h100(0, { pcie: { ...full, currentWidth: 4 } }), BUILT_IN_POLICY);
    expect(f).toMatchObject({ check: 'pcie', code: 'PcieWidthDegraded' });
    expect(f?.message).toContain('x4 of x16');
  });
});
