import { BUILT_IN_POLICY_SPEC } from '../../../api/defaults.js';
import type { GpuTemperature } from '../../../agent/nvml/types.js';
import { BUILT_IN_POLICY, resolvePolicy } from '../policy.js';
import { h100 } from '../test-fixtures.js';
import { summary } from './check-test-helpers.js';
import { checkThermal } from './thermal.js';

const { warningMarginCelsius, criticalMarginCelsius } = BUILT_IN_POLICY_SPEC.thresholds.thermal;
const SLOWDOWN = 87;

describe('checkThermal', () => {
  it.each<[string, GpuTemperature | undefined, string[]]>([
    ['idle and cool', { gpuCelsius: 31, slowdownCelsius: SLOWDOWN }, []],
    ['just outside the warning margin', { gpuCelsius: SLOWDOWN - warningMarginCelsius - 1, slowdownCelsius: SLOWDOWN }, []],
    ['at the warning margin', { gpuCelsius: SLOWDOWN - warningMarginCelsius, slowdownCelsius: SLOWDOWN }, ['warning:ThermalMargin']],
    ['at the critical margin', { gpuCelsius: SLOWDOWN - criticalMarginCelsius, slowdownCelsius: SLOWDOWN }, ['critical:ThermalMargin']],
    ['past the slowdown temperature', { gpuCelsius: SLOWDOWN + 3, slowdownCelsius: SLOWDOWN }, ['critical:ThermalMargin']],
    ['no current temperature', { slowdownCelsius: SLOWDOWN }, []],
    ['no slowdown threshold (unsupported)', { gpuCelsius: SLOWDOWN + 3 }, []],
    ['no temperature at all', undefined, []],
  ])('%s', (_, temperature, expected) => {
    const gpu = h100(0);
    if (temperature === undefined) delete gpu.temperature;
    else gpu.temperature = temperature;
    expect(summary(checkThermal(gpu, BUILT_IN_POLICY))).toEqual(expected);
  });

  it('uses the policy margins', () => {
    const policy = resolvePolicy({ thresholds: { thermal: { warningMarginCelsius: 30 } } });
    const gpu = h100(0, { temperature: { gpuCelsius: SLOWDOWN - 25, slowdownCelsius: SLOWDOWN } });
    expect(summary(checkThermal(gpu, BUILT_IN_POLICY))).toEqual([]);
    const [f] = checkThermal(gpu, policy);
    expect(f).toMatchObject({ check: 'thermal', severity: 'warning', code: 'ThermalMargin' });
    expect(f?.message).toContain(`${SLOWDOWN - 25}°C`);
    expect(f?.message).toContain(`${SLOWDOWN}°C`);
  });
});
