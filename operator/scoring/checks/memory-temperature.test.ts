import { BUILT_IN_POLICY_SPEC } from '../../../api/defaults.js';
import { BUILT_IN_POLICY } from '../policy.js';
import { h100 } from '../test-fixtures.js';
import { summary } from './check-test-helpers.js';
import { checkMemoryTemperature } from './memory-temperature.js';

const t = BUILT_IN_POLICY_SPEC.thresholds;

describe('checkMemoryTemperature', () => {
  const max = 95;
  it.each<[string, number | undefined, number | undefined, string[]]>([
    ['no memory sensor', undefined, max, []],
    ['no memory maximum', 90, undefined, []],
    ['cool HBM', 60, max, []],
    ['just outside the warning margin', max - t.thermal.memoryWarningMarginCelsius - 1, max, []],
    ['at the warning margin', max - t.thermal.memoryWarningMarginCelsius, max, ['warning:MemoryTemperatureMargin']],
    ['at the maximum', max, max, ['critical:MemoryTemperatureMargin']],
    ['over the maximum', max + 1, max, ['critical:MemoryTemperatureMargin']],
  ])('%s', (_, memoryCelsius, memoryMaxCelsius, expected) => {
    const gpu = h100(0);
    const temperature = {
      ...gpu.temperature,
      ...(memoryCelsius === undefined ? {} : { memoryCelsius }),
      ...(memoryMaxCelsius === undefined ? {} : { memoryMaxCelsius }),
    };
    if (memoryMaxCelsius === undefined) delete temperature.memoryMaxCelsius;
    expect(summary(checkMemoryTemperature({ ...gpu, temperature }, BUILT_IN_POLICY))).toEqual(expected);
  });
});
