import { BUILT_IN_POLICY_SPEC } from '../../api/defaults.js';
import { BUILT_IN_POLICY, GoDurationError, parseGoDuration, PolicyError, resolvePolicy } from './policy.js';

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;

describe('parseGoDuration', () => {
  it.each([
    ['1h30m', HOUR + 30 * MINUTE],
    ['10m', 10 * MINUTE],
    ['45s', 45_000],
    ['500ms', 500],
    ['1.5h', 1.5 * HOUR],
    ['1h0m0s', HOUR],
    ['720h', 720 * HOUR],
    ['250us', 0.25],
    ['1000000ns', 1],
    ['0', 0],
  ])('%s → %d ms', (text, ms) => {
    expect(parseGoDuration(text)).toBeCloseTo(ms, 9);
  });

  it.each(['', '10', '1d', '-5m', 'm', '1h 30m', ' 10m', '1.h', '.5h', 'ten minutes'])('rejects %j with an error naming it', (text) => {
    expect(() => parseGoDuration(text)).toThrow(GoDurationError);
    expect(() => parseGoDuration(text)).toThrow(JSON.stringify(text));
  });
});

describe('resolvePolicy', () => {
  it('without a spec is the documented built-in defaults', () => {
    const p = resolvePolicy();
    expect(p.thresholds).toEqual(BUILT_IN_POLICY_SPEC.thresholds);
    expect(p.scoring).toEqual(BUILT_IN_POLICY_SPEC.scoring);
    expect(p.checks).toEqual(BUILT_IN_POLICY_SPEC.checks);
    expect(p.actions).toEqual(BUILT_IN_POLICY_SPEC.actions);
    expect(p.interval).toBe(BUILT_IN_POLICY_SPEC.interval);
    expect(p.intervalMs).toBe(parseGoDuration(BUILT_IN_POLICY_SPEC.interval));
    expect(p.xid).toEqual({
      lookback: BUILT_IN_POLICY_SPEC.xid.lookback,
      lookbackMs: parseGoDuration(BUILT_IN_POLICY_SPEC.xid.lookback),
      ignore: [],
      overrides: [],
      escalations: [],
    });
    expect(BUILT_IN_POLICY).toEqual(p);
  });

  it('is deeply frozen', () => {
    const p = resolvePolicy({ xid: { ignore: [13], escalations: [{ xid: 13, count: 5, window: '10m', severity: 'critical' }] } });
    expect(Object.isFrozen(p)).toBe(true);
    expect(Object.isFrozen(p.thresholds.thermal)).toBe(true);
    expect(Object.isFrozen(p.xid.ignore)).toBe(true);
    expect(Object.isFrozen(p.xid.escalations[0])).toBe(true);
  });

  it('merges a partial spec field by field over the defaults', () => {
    const p = resolvePolicy({
      thresholds: { thermal: { warningMarginCelsius: 20 }, memory: { usedPercentWarning: 99 }, rowRemap: { pendingSeverity: 'info' } },
      scoring: { warningPenalty: 25 },
      xid: { lookback: '24h' },
    });
    expect(p.thresholds.thermal).toEqual({ ...BUILT_IN_POLICY_SPEC.thresholds.thermal, warningMarginCelsius: 20 });
    expect(p.thresholds.memory.usedPercentWarning).toBe(99);
    expect(p.thresholds.rowRemap).toEqual({ ...BUILT_IN_POLICY_SPEC.thresholds.rowRemap, pendingSeverity: 'info' });
    expect(p.thresholds.ecc).toEqual(BUILT_IN_POLICY_SPEC.thresholds.ecc);
    expect(p.scoring).toEqual({ ...BUILT_IN_POLICY_SPEC.scoring, warningPenalty: 25 });
    expect(p.xid.lookbackMs).toBe(24 * HOUR);
  });

  it('parses escalation windows and copies lists', () => {
    const ignore = [13, 43];
    const p = resolvePolicy({
      checks: ['xid'],
      xid: { ignore, escalations: [{ xid: 31, count: 3, window: '1h30m', severity: 'critical' }] },
    });
    ignore.push(45);
    expect(p.checks).toEqual(['xid']);
    expect(p.xid.ignore).toEqual([13, 43]);
    expect(p.xid.escalations).toEqual([{ xid: 31, count: 3, window: '1h30m', windowMs: HOUR + 30 * MINUTE, severity: 'critical' }]);
  });

  it.each([
    ['a bad lookback', { xid: { lookback: '1 hour' } }, 'xid.lookback'],
    ['a zero lookback', { xid: { lookback: '0s' } }, 'xid.lookback'],
    ['a bad interval', { interval: '5 minutes' }, 'interval'],
    [
      'a bad escalation window',
      { xid: { escalations: [{ xid: 13, count: 2, window: 'soon', severity: 'critical' as const }] } },
      'xid.escalations[0].window',
    ],
    [
      'a zero escalation count',
      { xid: { escalations: [{ xid: 13, count: 0, window: '10m', severity: 'critical' as const }] } },
      'xid.escalations[0].count',
    ],
    ['an invalid override code', { xid: { overrides: [{ xid: -1, severity: 'info' as const }] } }, 'overrides[0]'],
    ['an invalid ignore code', { xid: { ignore: [0] } }, 'ignore[0]'],
    ['healthyMinScore not above degradedMinScore', { scoring: { healthyMinScore: 40, degradedMinScore: 40 } }, 'healthyMinScore'],
  ])('rejects %s with a PolicyError naming the field', (_, spec, field) => {
    expect(() => resolvePolicy(spec)).toThrow(PolicyError);
    expect(() => resolvePolicy(spec)).toThrow(field);
  });

  it('keeps the duration error as the cause', () => {
    const caught = ((): unknown => {
      try {
        resolvePolicy({ xid: { lookback: 'x' } });
      } catch (err) {
        return err;
      }
      return undefined;
    })();
    expect(caught).toBeInstanceOf(PolicyError);
    expect(caught instanceof PolicyError ? caught.cause : undefined).toBeInstanceOf(GoDurationError);
  });
});
