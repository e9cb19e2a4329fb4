import { BUILT_IN_POLICY_SPEC } from '../../../api/defaults.js';
import { BUILT_IN_POLICY } from '../policy.js';
import { scoreNode } from '../score.js';
import { nodeSnapshot } from '../test-fixtures.js';
import { summary } from './check-test-helpers.js';
import { memoryEventFinding } from './memory-events.js';

const t = BUILT_IN_POLICY_SPEC.thresholds;

describe('memoryEventFinding', () => {
  const report = { count: 2, firstSeen: '2026-01-01T00:00:00.000Z', lastSeen: '2026-01-01T00:05:00.000Z', pciBusId: '0000:18:00' };
  it.each<[Parameters<typeof memoryEventFinding>[0]['kind'], string | null]>([
    ['dramRetirementFailure', `${t.ecc.dramRetirementFailureSeverity}:DramRetirementFailure`],
    ['fatalPoison', `${t.ecc.fatalPoisonSeverity}:FatalPoisonError`],
    ['nonFatalPoison', `${t.ecc.nonFatalPoisonSeverity}:NonFatalPoisonError`],
    ['singleBitEccStorm', `${t.ecc.eccStormSeverity}:EccErrorStorm`],
    ['dramRetirement', null],
  ])('%s', (kind, expected) => {
    const f = memoryEventFinding({ ...report, kind }, BUILT_IN_POLICY);
    expect(f === null ? null : `${f.severity}:${f.code}`).toBe(expected);
    if (f !== null) expect(f).toMatchObject({ check: 'ecc', message: expect.stringContaining('2 ') });
  });

  it('critical by default for a retirement failure and fatal poison', () => {
    expect([t.ecc.dramRetirementFailureSeverity, t.ecc.fatalPoisonSeverity]).toEqual(['critical', 'critical']);
  });
});

describe('memory events in scoreNode', () => {
  it('attaches a DRAM retirement failure to its GPU by bus id and makes the node critical', () => {
    const base = nodeSnapshot();
    const target = base.gpus[0];
    if (target === undefined) throw new Error('fixture has no GPU');
    const bus = target.pciBusIdKernel ?? '';
    const snapshot = {
      ...base,
      xid: {
        ...base.xid,
        memoryEvents: [
          { kind: 'dramRetirementFailure' as const, pciBusId: bus, count: 1, firstSeen: base.collectedAt, lastSeen: base.collectedAt },
        ],
      },
    };
    const scored = scoreNode(snapshot, BUILT_IN_POLICY, new Date(base.collectedAt));
    expect(scored.status).toBe('critical');
    expect(summary(scored.gpus[0]?.findings ?? [])).toContain('critical:DramRetirementFailure');
    expect(scored.findings).toEqual([]);
  });
});
