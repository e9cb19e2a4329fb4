import { BUILT_IN_POLICY_SPEC } from '../../../api/defaults.js';
import type { GpuRemappedRows } from '../../../agent/nvml/types.js';
import { BUILT_IN_POLICY, FIXED_SEVERITIES, resolvePolicy } from '../policy.js';
import { h100 } from '../test-fixtures.js';
import { summary } from './check-test-helpers.js';
import { checkRowRemap } from './row-remap.js';

const t = BUILT_IN_POLICY_SPEC.thresholds.rowRemap;

describe('checkRowRemap', () => {
  it.each<[string, GpuRemappedRows, string[]]>([
    ['no remaps', { corrected: 0, uncorrected: 0, pending: false, failure: false }, []],
    ['remap applied after a reset (pending false)', { corrected: 2, uncorrected: 1, pending: false, failure: false }, []],
    ['a remap pending', { corrected: 0, uncorrected: 1, pending: true, failure: false }, [`${t.pendingSeverity}:RowRemapPending`]],
    [
      'a remap failure',
      { corrected: 0, uncorrected: 12, pending: false, failure: true },
      [`${t.failureSeverity}:RowRemapFailure`, `${FIXED_SEVERITIES.uncorrectableRows}:RowRemapUncorrectable`],
    ],
    [
      'uncorrectable rows below the threshold',
      { corrected: 0, uncorrected: t.uncorrectableRowsWarning - 1, pending: false, failure: false },
      [],
    ],
    [
      'uncorrectable rows at the threshold',
      { corrected: 0, uncorrected: t.uncorrectableRowsWarning, pending: false, failure: false },
      [`${FIXED_SEVERITIES.uncorrectableRows}:RowRemapUncorrectable`],
    ],
  ])('%s', (_, remappedRows, expected) => {
    expect(summary(checkRowRemap(h100(0, { remappedRows }), BUILT_IN_POLICY))).toEqual(expected);
  });

  it('a failure is critical by default', () => {
    expect(t.failureSeverity).toBe('critical');
  });

  it('uses the policy severities', () => {
    const policy = resolvePolicy({ thresholds: { rowRemap: { pendingSeverity: 'info', failureSeverity: 'warning' } } });
    const gpu = h100(0, { remappedRows: { corrected: 0, uncorrected: 1, pending: true, failure: true } });
    expect(summary(checkRowRemap(gpu, policy))).toEqual(['warning:RowRemapFailure', 'info:RowRemapPending']);
  });

  it('reports nothing when unsupported (pre-Ampere)', () => {
    const gpu = h100(0);
    delete gpu.remappedRows;
    expect(checkRowRemap(gpu, BUILT_IN_POLICY)).toEqual([]);
  });
});
