import { BUILT_IN_POLICY_SPEC } from '../../../api/defaults.js';
import { BUILT_IN_POLICY, resolvePolicy } from '../policy.js';
import { h100 } from '../test-fixtures.js';
import { summary } from './check-test-helpers.js';
import { checkClockEvents } from './clock-events.js';

const t = BUILT_IN_POLICY_SPEC.thresholds.clockEvents;
const names: Readonly<Record<number, string>> = {
  0x1: 'GpuIdle',
  0x2: 'ApplicationsClocksSetting',
  0x4: 'SwPowerCap',
  0x8: 'HwSlowdown',
  0x10: 'SyncBoost',
  0x20: 'SwThermalSlowdown',
  0x40: 'HwThermalSlowdown',
  0x80: 'HwPowerBrakeSlowdown',
  0x100: 'DisplayClockSetting',
};
const decode = (mask: number): string[] =>
  Object.entries(names)
    .filter(([bit]) => (mask & Number(bit)) !== 0)
    .map(([, n]) => n);

describe('checkClockEvents', () => {
  it.each<[string, number, string[]]>([
    ['no reason (full clocks)', 0x0, []],
    ['GpuIdle', 0x1, []],
    ['SwPowerCap + SyncBoost under full load', 0x4 | 0x10, []],
    ['application and display clock settings', 0x2 | 0x100, []],
    ['HW thermal slowdown', 0x40, [`${t.hwThermalSlowdownSeverity}:HwThermalSlowdown`]],
    ['HW slowdown', 0x8, [`${t.hwSlowdownSeverity}:HwSlowdown`]],
    ['HW power brake', 0x80, [`${t.hwPowerBrakeSeverity}:HwPowerBrakeSlowdown`]],
    ['SW thermal slowdown', 0x20, [`${t.swThermalSlowdownSeverity}:SwThermalSlowdown`]],
    [
      'SW + HW thermal with power cap',
      0x4 | 0x20 | 0x40,
      [`${t.hwThermalSlowdownSeverity}:HwThermalSlowdown`, `${t.swThermalSlowdownSeverity}:SwThermalSlowdown`],
    ],
  ])('%s', (_, mask, expected) => {
    const gpu = h100(0, { clockEventReasons: { mask, names: decode(mask) } });
    expect(summary(checkClockEvents(gpu, BUILT_IN_POLICY))).toEqual(expected);
  });

  it('HW thermal slowdown is critical by default', () => {
    expect(t.hwThermalSlowdownSeverity).toBe('critical');
    const [f] = checkClockEvents(h100(0, { clockEventReasons: { mask: 0x40, names: ['HwThermalSlowdown'] } }), BUILT_IN_POLICY);
    expect(f).toMatchObject({ check: 'thermal', severity: 'critical' });
  });

  it('reads the decoded names as well as the mask', () => {
    expect(summary(checkClockEvents(h100(0, { clockEventReasons: { mask: 0, names: ['HwSlowdown'] } }), BUILT_IN_POLICY))).toEqual([
      `${t.hwSlowdownSeverity}:HwSlowdown`,
    ]);
  });

  it('uses the policy severity', () => {
    const policy = resolvePolicy({
      thresholds: { clockEvents: { hwThermalSlowdownSeverity: 'warning', swThermalSlowdownSeverity: 'info' } },
    });
    const gpu = h100(0, { clockEventReasons: { mask: 0x60, names: ['SwThermalSlowdown', 'HwThermalSlowdown'] } });
    expect(summary(checkClockEvents(gpu, policy))).toEqual(['warning:HwThermalSlowdown', 'info:SwThermalSlowdown']);
  });

  it('reports nothing when the reasons were not collected', () => {
    const gpu = h100(0);
    delete gpu.clockEventReasons;
    expect(checkClockEvents(gpu, BUILT_IN_POLICY)).toEqual([]);
  });
});
