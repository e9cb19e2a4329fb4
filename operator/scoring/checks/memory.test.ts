import { BUILT_IN_POLICY_SPEC } from '../../../api/defaults.js';
import { BUILT_IN_POLICY, FIXED_SEVERITIES, resolvePolicy } from '../policy.js';
import { h100, h100UnderLoad } from '../test-fixtures.js';
import { summary } from './check-test-helpers.js';
import { checkMemory } from './memory.js';

const GIB = 1024 ** 3;
const withUsedPercent = (percent: number): ReturnType<typeof h100> =>
  h100(0, { memory: { totalBytes: 80 * GIB, usedBytes: (80 * GIB * percent) / 100, freeBytes: (80 * GIB * (100 - percent)) / 100 } });

describe('checkMemory', () => {
  it('is off by default: ~95% used by a framework allocator is normal', () => {
    // only the BAR1 aperture (checks/bar1.ts) has a default; framebuffer use has none
    expect(BUILT_IN_POLICY_SPEC.thresholds.memory).toEqual({ bar1UsedPercentWarning: 95 });
    expect(BUILT_IN_POLICY.thresholds.memory.usedPercentWarning).toBeUndefined();
    expect(checkMemory(h100UnderLoad(0), BUILT_IN_POLICY)).toEqual([]);
    expect(checkMemory(withUsedPercent(100), BUILT_IN_POLICY)).toEqual([]);
  });

  const policy = resolvePolicy({ thresholds: { memory: { usedPercentWarning: 97 } } });
  it.each<[string, number, string[]]>([
    ['95% used', 95, []],
    ['at the threshold', 97, [`${FIXED_SEVERITIES.memoryUsage}:MemoryUsage`]],
    ['full', 100, [`${FIXED_SEVERITIES.memoryUsage}:MemoryUsage`]],
  ])('with usedPercentWarning set: %s', (_, percent, expected) => {
    expect(summary(checkMemory(withUsedPercent(percent), policy))).toEqual(expected);
  });

  it('reports nothing without memory info', () => {
    const gpu = h100(0);
    delete gpu.memory;
    expect(checkMemory(gpu, policy)).toEqual([]);
  });
});
