import { BUILT_IN_POLICY_SPEC } from '../../api/defaults.js';
import type { NodeSnapshotDocument } from '../../agent/api/snapshot-document.js';
import type { GpuSnapshot } from '../../agent/nvml/types.js';
import type { Finding } from './finding.js';
import { BUILT_IN_POLICY, FIXED_SEVERITIES, parseGoDuration, resolvePolicy } from './policy.js';
import { parseAdvertisedGpus } from './advertised-gpus.js';
import { MAX_SCORE, scoreNode, statusFor, worseStatus } from './score.js';
import { h100, h100UnderLoad, healthyNvLinks, lostGpu, minutesAgo, nodeSnapshot, NOW, withoutUuid, xidEvent } from './test-fixtures.js';

const S = BUILT_IN_POLICY_SPEC.scoring;
const CRITICAL_SCORE = MAX_SCORE - S.criticalPenalty;

/** An 8×H100 node whose GPU 2 is replaced. */
function nodeWithGpu2(gpu: GpuSnapshot, extra: Partial<NodeSnapshotDocument> = {}): NodeSnapshotDocument {
  return nodeSnapshot({ gpus: Array.from({ length: 8 }, (_, i) => (i === 2 ? gpu : h100(i))), ...extra });
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}

describe('scoreNode on real GPU states', () => {
  it('a healthy idle 8×H100 node scores 100 with nothing to say', () => {
    const result = scoreNode(nodeSnapshot(), BUILT_IN_POLICY, NOW);
    expect(result).toMatchObject({ node: 'gpu-node-1', score: MAX_SCORE, status: 'healthy', findings: [], xidEvents: [] });
    expect(result.gpus).toHaveLength(8);
    expect(result.gpus.every((g) => g.status === 'healthy' && g.findings.length === 0)).toBe(true);
    expect(result.gpus[3]).toMatchObject({ index: 3, uuid: h100(3).uuid, name: 'NVIDIA H100 80GB HBM3', pciBusId: h100(3).pciBusIdKernel });
    expect(result.worstMessage).toBe('8 GPU(s), no problems found');
  });

  const ecc = h100(2).ecc;
  it.each<[string, GpuSnapshot]>([
    ['full load: ~95% memory reserved, SwPowerCap + SyncBoost', h100UnderLoad(2)],
    ['GpuIdle clock reason', h100(2, { clockEventReasons: { mask: 0x1, names: ['GpuIdle'] } })],
    ['historical aggregate ECC counts', h100(2, { ecc: { ...ecc, aggregateCorrected: 15_234, aggregateUncorrected: 2 } })],
    ['lower PCIe generation at idle', h100(2, { pcie: { currentGen: 1, currentWidth: 16, maxGen: 5, maxWidth: 16, replayCounter: 0 } })],
    [
      'MIG enabled (no utilization, NVLink idle)',
      h100(2, {
        migMode: { enabled: true, pendingEnabled: true },
        nvlinks: healthyNvLinks().map((l) => ({ ...l, active: false })),
        unsupported: ['fanSpeedPercent', 'retiredPages', 'utilization'],
      }),
    ],
    [
      'a remap applied after reset (pending false)',
      h100(2, { remappedRows: { corrected: 3, uncorrected: 1, pending: false, failure: false } }),
    ],
    [
      'fields unsupported on this model',
      h100(2, { unsupported: ['fanSpeedPercent', 'retiredPages', 'temperature.memoryMaxCelsius', 'nvlinks'], nvlinks: [] }),
    ],
  ])('no alarm: %s', (_, gpu) => {
    const result = scoreNode(nodeWithGpu2(gpu), BUILT_IN_POLICY, NOW);
    expect(result.status).toBe('healthy');
    expect(result.score).toBe(MAX_SCORE - (result.gpus[2]?.findings.length ?? 0) * S.infoPenalty);
    expect(result.gpus[2]?.findings.filter((f) => f.severity !== 'info')).toEqual([]);
  });

  it.each<[string, NodeSnapshotDocument, string]>([
    ['a lost GPU', nodeWithGpu2(lostGpu(2)), 'GpuLost'],
    ['volatile double-bit ECC', nodeWithGpu2(h100(2, { ecc: { ...ecc, volatileUncorrected: 1 } })), 'VolatileDoubleBitEcc'],
    [
      'row-remap failure',
      nodeWithGpu2(h100(2, { remappedRows: { corrected: 0, uncorrected: 5, pending: false, failure: true } })),
      'RowRemapFailure',
    ],
    [
      'an NVLink down',
      nodeWithGpu2(h100(2, { nvlinks: healthyNvLinks().map((l) => (l.link === 11 ? { ...l, active: false } : l)) })),
      'NvLinkDown',
    ],
    [
      'every NVLink of one GPU down',
      nodeWithGpu2(h100(2, { nvlinks: healthyNvLinks().map((l) => ({ ...l, active: false })) })),
      'NvLinkDown',
    ],
    [
      'HW thermal slowdown',
      nodeWithGpu2(h100(2, { clockEventReasons: { mask: 0x40, names: ['HwThermalSlowdown'] } })),
      'HwThermalSlowdown',
    ],
    ['XID 79 (fallen off the bus)', nodeSnapshot({ events: [xidEvent(79, {}, h100(2))] }), 'XidCritical'],
    ['XID 48 (double-bit ECC)', nodeSnapshot({ events: [xidEvent(48, {}, h100(2))] }), 'XidCritical'],
    ['XID 95 (uncontained memory error)', nodeSnapshot({ events: [xidEvent(95, {}, h100(2))] }), 'XidCritical'],
  ])('critical: %s', (_, snapshot, code) => {
    const result = scoreNode(snapshot, BUILT_IN_POLICY, NOW);
    expect(result.status).toBe('critical');
    expect(result.score).toBe(CRITICAL_SCORE);
    expect(result.gpus[2]).toMatchObject({ status: 'critical', score: CRITICAL_SCORE });
    expect(result.gpus[2]?.findings[0]).toMatchObject({ severity: 'critical', code });
    expect(result.gpus.filter((g) => g.status !== 'healthy').map((g) => g.index)).toEqual([2]);
    expect(result.worstMessage).toMatch(/^GPU 2 \(GPU-/);
  });
});

describe('scoring arithmetic and status', () => {
  const f = (severity: Finding['severity']): Finding => ({ check: 'health', severity, code: 'X', message: 'm' });
  it.each<[string, Finding[], number, string]>([
    ['healthyMinScore', [], S.healthyMinScore, 'healthy'],
    ['just under healthyMinScore', [], S.healthyMinScore - 1, 'degraded'],
    ['degradedMinScore', [], S.degradedMinScore, 'degraded'],
    ['just under degradedMinScore', [], S.degradedMinScore - 1, 'critical'],
    ['a critical finding at a full score', [f('critical')], MAX_SCORE, 'critical'],
  ])('statusFor at %s', (_, findings, score, status) => {
    expect(statusFor(findings, score, BUILT_IN_POLICY.scoring)).toBe(status);
  });

  it.each([1, 2, 3, 7])('%i warning(s) subtract warningPenalty each, floored at 0', (n) => {
    const hot = h100(2, {
      temperature: { gpuCelsius: 80, slowdownCelsius: 87 },
      pcie: {
        currentGen: 5,
        currentWidth: 8,
        maxGen: 5,
        maxWidth: 16,
        replayCounter: BUILT_IN_POLICY_SPEC.thresholds.pcie.replayCounterWarning,
      },
      remappedRows: { corrected: 0, uncorrected: 1, pending: true, failure: false },
      clockEventReasons: { mask: 0x20 | 0x8 | 0x80, names: [] },
    });
    const all = scoreNode(nodeWithGpu2(hot), BUILT_IN_POLICY, NOW).gpus[2]?.findings ?? [];
    expect(all.length).toBeGreaterThanOrEqual(7);
    expect(all.every((x) => x.severity === 'warning')).toBe(true);
    const score = Math.max(0, MAX_SCORE - n * S.warningPenalty);
    expect(statusFor(all.slice(0, n), score, BUILT_IN_POLICY.scoring)).toBe(
      score >= S.healthyMinScore ? 'healthy' : score >= S.degradedMinScore ? 'degraded' : 'critical',
    );
    const policy = resolvePolicy({ scoring: { warningPenalty: 10 } });
    expect(scoreNode(nodeWithGpu2(hot), policy, NOW).gpus[2]?.score).toBe(Math.max(0, MAX_SCORE - all.length * 10));
  });

  it('the node takes the lowest GPU score and the worst status', () => {
    const snapshot = nodeSnapshot({
      gpus: [
        h100(0),
        h100(1, { pcie: { currentGen: 5, currentWidth: 8, maxGen: 5, maxWidth: 16 } }),
        h100(2, { ecc: { volatileUncorrected: 2 } }),
      ],
    });
    const result = scoreNode(snapshot, BUILT_IN_POLICY, NOW);
    expect(result.gpus.map((g) => g.score)).toEqual([MAX_SCORE, MAX_SCORE - S.warningPenalty, CRITICAL_SCORE]);
    expect(result.score).toBe(CRITICAL_SCORE);
    expect(result.status).toBe('critical');
  });

  it('ranks statuses healthy < unknown < degraded < critical', () => {
    expect(worseStatus('healthy', 'unknown')).toBe('unknown');
    expect(worseStatus('unknown', 'degraded')).toBe('degraded');
    expect(worseStatus('critical', 'degraded')).toBe('critical');
  });

  it('lists findings worst first', () => {
    const gpu = h100(2, {
      pcie: { currentGen: 5, currentWidth: 8, maxGen: 5, maxWidth: 16 },
      ecc: { volatileUncorrected: 1, aggregateCorrected: 5 },
    });
    expect(scoreNode(nodeWithGpu2(gpu), BUILT_IN_POLICY, NOW).gpus[2]?.findings.map((x) => x.severity)).toEqual([
      'critical',
      'warning',
      'info',
    ]);
  });
});

describe('health clears itself when the fault is gone', () => {
  it.each<[string, GpuSnapshot, GpuSnapshot]>([
    ['GPU lost, then back after a reset', lostGpu(2), h100(2)],
    [
      'remap pending, then applied',
      h100(2, { remappedRows: { corrected: 0, uncorrected: 1, pending: true, failure: false } }),
      h100(2, { remappedRows: { corrected: 0, uncorrected: 1, pending: false, failure: false } }),
    ],
    ['HW thermal slowdown, then cooled', h100(2, { clockEventReasons: { mask: 0x40, names: ['HwThermalSlowdown'] } }), h100(2)],
  ])('%s', (_, before, after) => {
    expect(scoreNode(nodeWithGpu2(before), BUILT_IN_POLICY, NOW).gpus[2]?.findings).not.toEqual([]);
    const result = scoreNode(nodeWithGpu2(after), BUILT_IN_POLICY, NOW);
    expect(result).toMatchObject({ status: 'healthy', score: MAX_SCORE });
    expect(result.gpus[2]?.findings).toEqual([]);
  });

  it('an XID stops counting once its lastSeen is older than the lookback (unless its fault outlasts it)', () => {
    const lookbackMs = parseGoDuration(BUILT_IN_POLICY_SPEC.xid.lookback);
    // XID 45 alone: restart Fabric Manager (critical), a fault of the look-back class.
    const snapshot = nodeSnapshot({ events: [xidEvent(45, { lastSeen: minutesAgo(5), message: 'channel 0x0000000a' }, h100(2))] });
    expect(scoreNode(snapshot, BUILT_IN_POLICY, NOW).status).toBe('critical');
    const later = new Date(NOW.getTime() + lookbackMs);
    expect(scoreNode(snapshot, BUILT_IN_POLICY, later)).toMatchObject({ status: 'healthy', score: MAX_SCORE, xidEvents: [] });
  });
});

describe('XIDs on the node', () => {
  it('maps an event by kernel bus id when the agent had no UUID', () => {
    const event = withoutUuid(xidEvent(48, {}, h100(5)), 'keep');
    const result = scoreNode(nodeSnapshot({ events: [event] }), BUILT_IN_POLICY, NOW);
    expect(result.gpus[5]?.status).toBe('critical');
    expect(result.findings).toEqual([]);
  });

  it('keeps an event tied to no reported GPU at node level', () => {
    const event = withoutUuid(xidEvent(79));
    const result = scoreNode(nodeSnapshot({ events: [event] }), BUILT_IN_POLICY, NOW);
    expect(result.gpus.every((g) => g.status === 'healthy')).toBe(true);
    expect(result.findings.map((x) => x.code)).toEqual(['XidCritical']);
    expect(result).toMatchObject({ status: 'critical', score: CRITICAL_SCORE });
  });

  it('applies the policy: override to info leaves the node healthy', () => {
    const policy = resolvePolicy({ xid: { overrides: [{ xid: 79, severity: 'info' }] } });
    const result = scoreNode(nodeSnapshot({ events: [xidEvent(79, {}, h100(2))] }), policy, NOW);
    expect(result).toMatchObject({ status: 'healthy', score: MAX_SCORE - S.infoPenalty });
    expect(result.xidEvents.map((e) => e.severity)).toEqual(['info']);
  });

  it('applies the policy: ignored codes vanish', () => {
    const policy = resolvePolicy({ xid: { ignore: [13] } });
    const result = scoreNode(nodeSnapshot({ events: [xidEvent(13, { count: 50 })] }), policy, NOW);
    expect(result).toMatchObject({ status: 'healthy', score: MAX_SCORE, xidEvents: [] });
  });

  it('applies the policy: escalation turns a repeated application XID critical', () => {
    const policy = resolvePolicy({ xid: { escalations: [{ xid: 31, count: 10, window: '10m', severity: 'critical' }] } });
    const snapshot = nodeSnapshot({ events: [xidEvent(31, { count: 12, firstSeen: minutesAgo(9), lastSeen: minutesAgo(1) }, h100(4))] });
    expect(scoreNode(snapshot, BUILT_IN_POLICY, NOW).gpus[4]?.status).toBe('healthy');
    expect(scoreNode(snapshot, policy, NOW).gpus[4]?.status).toBe('critical');
  });
});

describe('nodes without observed GPUs', () => {
  it('zero GPUs (NVML says so) is healthy with 0 GPUs', () => {
    const snapshot = nodeSnapshot({ nvml: { available: false, reason: 'no GPUs found', driverVersion: '550.90.07' }, gpus: [] });
    expect(scoreNode(snapshot, BUILT_IN_POLICY, NOW)).toMatchObject({
      status: 'healthy',
      score: MAX_SCORE,
      gpus: [],
      findings: [],
      worstMessage: '0 GPU(s), no problems found',
    });
  });

  it('zero GPUs after XID 79 is critical', () => {
    const event = withoutUuid(xidEvent(79));
    const snapshot = nodeSnapshot({ nvml: { available: false, reason: 'no GPUs found' }, gpus: [], events: [event] });
    expect(scoreNode(snapshot, BUILT_IN_POLICY, NOW)).toMatchObject({ status: 'critical', score: CRITICAL_SCORE });
  });

  it.each([
    ['the library missing', { available: false as const, reason: 'Failed to load shared library libnvidia-ml.so.1' }],
    ['init failing', { available: false as const, reason: 'NVML initialisation failed: Driver Not Loaded', code: 9 }],
    ['the GPU count failing', { available: false as const, reason: 'cannot count GPUs: Unknown Error', code: 999 }],
  ])('NVML unavailable because of %s is unknown, with a NvmlUnavailable warning', (_, nvml) => {
    const result = scoreNode(nodeSnapshot({ nvml, gpus: [] }), BUILT_IN_POLICY, NOW);
    expect(result.status).toBe('unknown');
    expect(result.findings.map((x) => `${x.severity}:${x.code}`)).toEqual([`${FIXED_SEVERITIES.nvmlUnavailable}:NvmlUnavailable`]);
    expect(result.worstMessage).toContain(nvml.reason);
  });

  it('a GPU with no handle is unknown, not healthy', () => {
    const blind: GpuSnapshot = { index: 2, lost: false, unsupported: [], errors: [{ field: 'handle', code: 999, error: 'Unknown Error' }] };
    const result = scoreNode(nodeWithGpu2(blind), BUILT_IN_POLICY, NOW);
    expect(result.gpus[2]?.status).toBe('unknown');
    expect(result.gpus[2]?.findings.map((x) => x.code)).toEqual(['CollectionError']);
    expect(result.status).toBe('unknown');
  });

  it('XID sources down is a node-level warning', () => {
    const base = nodeSnapshot();
    const agent = {
      ...base.agent,
      xidSources: { kmsg: { running: false, path: '/dev/kmsg', records: 0, lost: 0, error: 'EPERM' }, nvmlEvents: { running: false } },
    };
    const result = scoreNode({ ...base, agent }, BUILT_IN_POLICY, NOW);
    expect(result.findings.map((x) => `${x.severity}:${x.code}`)).toEqual([`${FIXED_SEVERITIES.xidSourcesDown}:XidSourcesDown`]);
    expect(result.score).toBe(MAX_SCORE - S.warningPenalty);
    expect(scoreNode({ ...base, agent, checks: ['health'] }, BUILT_IN_POLICY, NOW).findings).toEqual([]);
  });
});

describe('GPUs the node advertises but the agent does not see', () => {
  const eight = parseAdvertisedGpus({
    metadata: { labels: { 'nvidia.com/gpu.count': '8' } },
    status: { capacity: { 'nvidia.com/gpu': '8' }, allocatable: { 'nvidia.com/gpu': '8' } },
  });
  const none = parseAdvertisedGpus({ metadata: { name: 'cpu-node' }, status: { capacity: { cpu: '64' } } });
  const zeroGpus = nodeSnapshot({ nvml: { available: false, reason: 'no GPUs found', driverVersion: '550.90.07' }, gpus: [] });

  it.each<[string, NodeSnapshotDocument, RegExp]>([
    [
      'one GPU gone from the bus, the other seven healthy',
      nodeSnapshot({ gpus: Array.from({ length: 7 }, (_, i) => h100(i)) }),
      /^node advertises 8 GPUs .* but the agent sees 7;/,
    ],
    [
      'all gone while NVML works (healthy before this check)',
      zeroGpus,
      /^node advertises 8 GPUs .* but the agent sees none \(NVML: no GPUs found\)/,
    ],
    [
      'NVML cannot load',
      nodeSnapshot({ nvml: { available: false, reason: 'Failed to load shared library libnvidia-ml.so.1' }, gpus: [] }),
      /sees none \(NVML: Failed to load shared library/,
    ],
  ])('critical: %s', (_, snapshot, message) => {
    const result = scoreNode(snapshot, BUILT_IN_POLICY, NOW, { advertised: eight });
    expect(result.status).toBe('critical');
    expect(result.score).toBeLessThanOrEqual(CRITICAL_SCORE);
    expect(result.findings.find((x) => x.code === 'GpusMissing')).toMatchObject({ check: 'inventory', severity: 'critical' });
    expect(result.worstMessage).toMatch(message);
    expect(result.gpus.every((g) => g.status === 'healthy')).toBe(true);
  });

  it('a node that advertises as many as it has, or none and has none, stays as before', () => {
    expect(scoreNode(nodeSnapshot(), BUILT_IN_POLICY, NOW, { advertised: eight })).toEqual(scoreNode(nodeSnapshot(), BUILT_IN_POLICY, NOW));
    expect(scoreNode(zeroGpus, BUILT_IN_POLICY, NOW, { advertised: none })).toMatchObject({
      status: 'healthy',
      score: MAX_SCORE,
      findings: [],
    });
  });
});

it('is pure: leaves its input alone and gives the same answer twice', () => {
  const snapshot = deepFreeze(
    nodeWithGpu2(h100(2, { ecc: { volatileUncorrected: 1 } }), {
      xid: { since: minutesAgo(60), events: [xidEvent(13), xidEvent(79, {}, h100(2))], truncated: 0 },
    }),
  );
  const a = scoreNode(snapshot, BUILT_IN_POLICY, NOW);
  expect(scoreNode(snapshot, BUILT_IN_POLICY, NOW)).toEqual(a);
});

describe('kernel signals besides XIDs', () => {
  it('a bus loss without an XID makes that GPU critical', () => {
    const gpu = h100(3);
    const snapshot = nodeSnapshot({ events: [] });
    const withLoss = {
      ...snapshot,
      xid: {
        ...snapshot.xid,
        busLoss: [{ pciBusId: gpu.pciBusId ?? '', count: 1, firstSeen: minutesAgo(600), lastSeen: minutesAgo(600) }],
      },
    };
    const result = scoreNode(withLoss, BUILT_IN_POLICY, NOW);
    expect(result.gpus[3]?.findings.map((f) => `${f.code}:${f.severity}`)).toEqual(['GpuFellOffBus:critical']);
    expect(result.status).toBe('critical');
  });

  it('NVSwitch SXids are node-level findings, fatal ones critical', () => {
    const snapshot = nodeSnapshot({ events: [] });
    const sxid = (fatal: boolean, link: number) => ({
      sxid: fatal ? 20034 : 22013,
      switchPciBusId: '0000:06:00',
      fatal,
      link,
      count: 2,
      firstSeen: minutesAgo(3),
      lastSeen: minutesAgo(1),
      message: 'Link LTSSM Fault Up',
    });
    const result = scoreNode(
      { ...snapshot, xid: { ...snapshot.xid, switchEvents: [sxid(true, 48), sxid(true, 49), sxid(false, 60)] } },
      BUILT_IN_POLICY,
      NOW,
    );
    expect(result.findings.map((f) => `${f.code}:${f.severity}`)).toEqual(['NvSwitchFatalSxid:critical', 'NvSwitchNonFatalSxid:warning']);
    expect(result.findings[0]?.message).toContain('SXid 20034 (fatal) on NVSwitch 0000:06:00 on links 48, 49, 4 time(s)');
  });
});
