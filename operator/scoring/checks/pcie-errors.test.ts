import { BUILT_IN_POLICY_SPEC } from '../../../api/defaults.js';
import { BUILT_IN_POLICY } from '../policy.js';
import { h100 } from '../test-fixtures.js';
import { summary } from './check-test-helpers.js';
import { checkPcieErrors } from './pcie-errors.js';

const t = BUILT_IN_POLICY_SPEC.thresholds;

describe('checkPcieErrors', () => {
  const base = { currentGen: 5, currentWidth: 16, maxGen: 5, maxWidth: 16, replayCounter: 0 };
  it.each<[string, Record<string, number>, string[]]>([
    ['clean link', { replayRolloverCounter: 0, correctableErrors: 0 }, []],
    ['counters unsupported', {}, []],
    ['one rollover', { replayRolloverCounter: t.pcie.replayRolloverWarning }, ['warning:PcieReplayRollover']],
    ['correctable errors just under', { correctableErrors: t.pcie.correctableErrorsWarning - 1 }, []],
    ['correctable errors at the threshold', { correctableErrors: t.pcie.correctableErrorsWarning }, ['warning:PcieCorrectableErrors']],
  ])('%s', (_, extra, expected) => {
    expect(summary(checkPcieErrors(h100(0, { pcie: { ...base, ...extra } }), BUILT_IN_POLICY))).toEqual(expected);
  });
});
