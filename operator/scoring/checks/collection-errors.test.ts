import type { NvmlFieldError } from '../../../agent/nvml/types.js';
import { FIXED_SEVERITIES } from '../policy.js';
import { h100, lostGpu } from '../test-fixtures.js';
import { summary } from './check-test-helpers.js';
import { checkCollectionErrors, isUnobserved } from './collection-errors.js';

const timeout: NvmlFieldError = { field: 'power.usageWatts', code: 10, error: 'call deadline expired' };
const noPermission: NvmlFieldError = { field: 'ecc.volatileCorrected', code: 4, error: 'Insufficient Permissions' };

describe('checkCollectionErrors', () => {
  it.each([
    ['everything read', h100(0), []],
    ['unsupported fields only', h100(0, { unsupported: ['fanSpeedPercent', 'retiredPages', 'utilization'] }), []],
    ['failed reads', h100(0, { errors: [timeout, noPermission] }), [`${FIXED_SEVERITIES.collectionError}:CollectionError`]],
    ['a lost GPU (reported by checkLost)', { ...lostGpu(0), errors: [timeout] }, []],
  ])('%s', (_, gpu, expected) => {
    expect(summary(checkCollectionErrors(gpu))).toEqual(expected);
  });

  it('names the fields so "unknown" is visible', () => {
    const [f] = checkCollectionErrors(h100(0, { errors: [timeout, noPermission, { ...timeout }] }));
    expect(f?.message).toContain('2 field(s): power.usageWatts, ecc.volatileCorrected');
  });

  it.each([
    ['a failed field', [timeout], false],
    ['no handle', [{ field: 'handle', code: 999, error: 'Unknown Error' }], true],
    ['reads skipped after deadlines', [timeout, { field: 'gpu', code: 10, error: 'remaining fields skipped' }], true],
  ])('isUnobserved: %s → %s', (_, errors, expected) => {
    expect(isUnobserved(h100(0, { errors }))).toBe(expected);
  });
});
