import { FIXED_SEVERITIES } from '../policy.js';
import { h100, lostGpu } from '../test-fixtures.js';
import { summary } from './check-test-helpers.js';
import { checkLost } from './lost.js';

describe('checkLost', () => {
  it.each([
    ['a GPU that answers', h100(0), []],
    ['a GPU back on the bus after a reset', h100(3), []],
    ['a lost GPU', lostGpu(3), [`${FIXED_SEVERITIES.gpuLost}:GpuLost`]],
  ])('%s', (_, gpu, expected) => {
    expect(summary(checkLost(gpu))).toEqual(expected);
  });

  it('is critical and names the GPU', () => {
    const [f] = checkLost(lostGpu(3));
    expect(f).toMatchObject({ check: 'health', severity: 'critical', code: 'GpuLost' });
    expect(f?.message).toContain('GPU 3');
  });
});
