import { BUILT_IN_POLICY_SPEC } from '../../../api/defaults.js';
import type { GpuFabric, GpuSnapshot } from '../../../agent/nvml/types.js';
import { BUILT_IN_POLICY, FIXED_SEVERITIES, resolvePolicy } from '../policy.js';
import { scoreNode } from '../score.js';
import { h100, nodeSnapshot } from '../test-fixtures.js';
import { checkBar1 } from './bar1.js';
import { summary } from './check-test-helpers.js';
import { checkFabric } from './fabric.js';
import { checkInforom } from './inforom.js';
import { memoryEventFinding } from './memory-events.js';
import { checkMemoryTemperature } from './memory-temperature.js';
import { checkPcieErrors } from './pcie-errors.js';
import { checkViolationTime } from './violation-time.js';

const t = BUILT_IN_POLICY_SPEC.thresholds;
const GIB = 1024 ** 3;
const NS = 1e9;
const completed: GpuFabric = { state: 'completed', status: 0, cliqueId: 1, clusterUuid: '6b2f1c9e0d4a4f3b8e7a5c1d2e3f4a5b', healthMask: 2, healthSummary: 'healthy', degradedBandwidth: false };

describe('checkFabric', () => {
  it.each<[string, GpuFabric | undefined, string[]]>([
    ['no fabric (PCIe board)', undefined, []],
    ['fabric not supported', { ...completed, state: 'notSupported' }, []],
    ['registered and healthy', completed, []],
    ['not started (fabric manager down)', { ...completed, state: 'notStarted' }, [`${t.fabric.notCompletedSeverity}:FabricNotCompleted`]],
    ['still in progress', { ...completed, state: 'inProgress' }, [`${t.fabric.notCompletedSeverity}:FabricNotCompleted`]],
    ['completed with an error', { ...completed, status: 999, healthSummary: 'unhealthy' }, [`${t.fabric.failedSeverity}:FabricRegistrationFailed`]],
    ['unhealthy summary', { ...completed, healthSummary: 'unhealthy' }, [`${t.fabric.failedSeverity}:FabricUnhealthy`]],
    ['degraded bandwidth', { ...completed, degradedBandwidth: true }, [`${t.fabric.degradedSeverity}:FabricDegraded`]],
    ['limited capacity', { ...completed, healthSummary: 'limitedCapacity' }, [`${t.fabric.degradedSeverity}:FabricDegraded`]],
  ])('%s', (_, fabric, expected) => {
    const gpu: GpuSnapshot = fabric === undefined ? h100(0) : h100(0, { fabric });
    expect(summary(checkFabric(gpu, BUILT_IN_POLICY))).toEqual(expected);
  });

  it('is critical by default, and a policy can lower it', () => {
    expect(t.fabric.notCompletedSeverity).toBe('critical');
    const policy = resolvePolicy({ thresholds: { fabric: { notCompletedSeverity: 'warning' } } });
    expect(summary(checkFabric(h100(0, { fabric: { ...completed, state: 'notStarted' } }), policy))).toEqual(['warning:FabricNotCompleted']);
  });
});

describe('checkInforom', () => {
  it.each<[string, GpuSnapshot['inforom'], string[]]>([
    ['unknown', undefined, []],
    ['valid', { imageVersion: 'G520.0200.00.05', valid: true }, []],
    ['versions only (validation unsupported)', { imageVersion: 'G520.0200.00.05' }, []],
    ['corrupted', { imageVersion: 'G520.0200.00.05', valid: false }, [`${t.inforom.invalidSeverity}:InforomCorrupted`]],
  ])('%s', (_, inforom, expected) => {
    expect(summary(checkInforom(inforom === undefined ? h100(0) : h100(0, { inforom }), BUILT_IN_POLICY))).toEqual(expected);
  });

  it('follows the policy severity', () => {
    const policy = resolvePolicy({ thresholds: { inforom: { invalidSeverity: 'critical' } } });
    expect(summary(checkInforom(h100(0, { inforom: { valid: false } }), policy))).toEqual(['critical:InforomCorrupted']);
  });
});

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
    const temperature = { ...gpu.temperature, ...(memoryCelsius === undefined ? {} : { memoryCelsius }), ...(memoryMaxCelsius === undefined ? {} : { memoryMaxCelsius }) };
    if (memoryMaxCelsius === undefined) delete temperature.memoryMaxCelsius;
    expect(summary(checkMemoryTemperature({ ...gpu, temperature }, BUILT_IN_POLICY))).toEqual(expected);
  });
});

describe('checkViolationTime', () => {
  const limit = t.thermal.violationSecondsWarning;
  it.each<[string, GpuSnapshot['violationTime'], string[]]>([
    ['unknown', undefined, []],
    ['no violation', { thermalNs: 0, powerNs: 0 }, []],
    ['thermal just under', { thermalNs: (limit - 1) * NS }, []],
    ['thermal at the threshold', { thermalNs: limit * NS }, [`${FIXED_SEVERITIES.violationTime}:ThermalViolationTime`]],
    ['power capping (not judged by default)', { powerNs: 86_400 * NS }, []],
  ])('%s', (_, violationTime, expected) => {
    const gpu = violationTime === undefined ? h100(0) : h100(0, { violationTime });
    expect(summary(checkViolationTime(gpu, BUILT_IN_POLICY))).toEqual(expected);
  });

  it('judges power violation time once a policy sets a threshold', () => {
    const policy = resolvePolicy({ thresholds: { power: { violationSecondsWarning: 3600 } } });
    expect(summary(checkViolationTime(h100(0, { violationTime: { powerNs: 3600 * NS } }), policy))).toEqual(['warning:PowerViolationTime']);
    expect(BUILT_IN_POLICY.thresholds.power.violationSecondsWarning).toBeUndefined();
  });
});

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

describe('checkBar1', () => {
  const total = 128 * GIB;
  it.each<[string, number, string[]]>([
    ['nearly empty', 2 * 1024 ** 2, []],
    ['half used (normal with RDMA)', total / 2, []],
    ['at the threshold', (total * t.memory.bar1UsedPercentWarning) / 100, ['warning:Bar1NearlyFull']],
    ['full', total, ['warning:Bar1NearlyFull']],
  ])('%s', (_, used, expected) => {
    expect(summary(checkBar1(h100(0, { bar1: { totalBytes: total, usedBytes: used, freeBytes: total - used } }), BUILT_IN_POLICY))).toEqual(expected);
  });
});

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
    const snapshot = { ...base, xid: { ...base.xid, memoryEvents: [{ kind: 'dramRetirementFailure' as const, pciBusId: bus, count: 1, firstSeen: base.collectedAt, lastSeen: base.collectedAt }] } };
    const scored = scoreNode(snapshot, BUILT_IN_POLICY, new Date(base.collectedAt));
    expect(scored.status).toBe('critical');
    expect(summary(scored.gpus[0]?.findings ?? [])).toContain('critical:DramRetirementFailure');
    expect(scored.findings).toEqual([]);
  });
});
