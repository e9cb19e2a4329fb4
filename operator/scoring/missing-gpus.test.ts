import type { NodeSnapshotDocument } from '../../agent/api/snapshot-document.js';
import { BUILT_IN_POLICY_SPEC } from '../../api/defaults.js';
import type { GpuAdvertisement } from './advertised-gpus.js';
import { summary } from './checks/check-test-helpers.js';
import { checkMissingGpus, seenGpus } from './missing-gpus.js';
import { BUILT_IN_POLICY, resolvePolicy } from './policy.js';
import { h100, lostGpu, nodeSnapshot } from './test-fixtures.js';

const SEVERITY = BUILT_IN_POLICY_SPEC.thresholds.inventory.missingGpusSeverity;

/** A node advertising `gpus` in capacity, allocatable and the GFD label. */
function advertises(gpus: number, extra: Partial<GpuAdvertisement> = {}): GpuAdvertisement {
  return {
    counts: [
      { source: 'capacity nvidia.com/gpu', gpus },
      { source: 'allocatable nvidia.com/gpu', gpus },
      { source: 'label nvidia.com/gpu.count', gpus },
    ],
    ignored: [],
    ...extra,
  };
}

function withGpus(count: number, parts: Partial<NodeSnapshotDocument> = {}): NodeSnapshotDocument {
  return nodeSnapshot({ gpus: Array.from({ length: count }, (_, i) => h100(i)), ...parts });
}

const base = nodeSnapshot();
/** The agent's explicit no-GPU mode, as agent.ts and snapshot-service.ts report it. */
function noGpuMode(modeReason: string): NodeSnapshotDocument {
  return nodeSnapshot({
    nvml: { available: false, reason: 'NVML disabled (no-GPU mode)' },
    gpus: [],
    agent: { ...base.agent, mode: 'no-gpu', modeReason },
  });
}
const nvmlFailed = nodeSnapshot({ nvml: { available: false, reason: 'NVML initialisation failed: Driver Not Loaded', code: 9 }, gpus: [] });
const zeroGpus = nodeSnapshot({ nvml: { available: false, reason: 'no GPUs found', driverVersion: '550.90.07' }, gpus: [] });

describe('seenGpus', () => {
  it.each<[string, NodeSnapshotDocument, ReturnType<typeof seenGpus>]>([
    ['NVML lists 8', base, { count: 8 }],
    ['a lost GPU still counts (GpuLost says the rest)', withGpus(8, { gpus: [...withGpus(7).gpus, lostGpu(7)] }), { count: 8 }],
    ['no-GPU mode: the mode reason says why', noGpuMode('NVML reports no GPUs'), { count: 0, why: 'NVML reports no GPUs' }],
    ['NVML unavailable', nvmlFailed, { count: 0, why: 'NVML initialisation failed: Driver Not Loaded' }],
    ['an xid-only snapshot lists no GPUs', nodeSnapshot({ checks: ['xid'], gpus: [] }), undefined],
    [
      'an xid-only snapshot from a no-GPU agent still says none',
      { ...noGpuMode('NVML reports no GPUs'), checks: ['xid'] },
      { count: 0, why: 'NVML reports no GPUs' },
    ],
  ])('%s', (_, snapshot, expected) => {
    expect(seenGpus(snapshot)).toEqual(expected);
  });
});

describe('checkMissingGpus', () => {
  it.each<[string, NodeSnapshotDocument, GpuAdvertisement | undefined, string[]]>([
    ['advertises 8, sees 8', base, advertises(8), []],
    ['advertises 8, sees 7', withGpus(7), advertises(8), [`${SEVERITY}:GpusMissing`]],
    ['advertises 8, sees 1', withGpus(1), advertises(8), [`${SEVERITY}:GpusMissing`]],
    ['advertises 8, NVML counts none', zeroGpus, advertises(8), [`${SEVERITY}:GpusMissing`]],
    ['advertises 8, NVML fails to initialise', nvmlFailed, advertises(8), [`${SEVERITY}:GpusMissing`]],
    ['advertises 8, the agent is in no-GPU mode', noGpuMode('NVML reports no GPUs'), advertises(8), [`${SEVERITY}:GpusMissing`]],
    ['advertises none, sees none (a CPU node)', noGpuMode('NVML reports no GPUs'), advertises(0), []],
    ['advertises nothing at all, sees none', zeroGpus, { counts: [], ignored: [] }, []],
    ['no Node to compare with', withGpus(7), undefined, []],
    ['advertises fewer than it has (mixed MIG, a GPU the plugin marked unhealthy)', base, advertises(6), []],
    ['an xid-only snapshot cannot be compared', nodeSnapshot({ checks: ['xid'], gpus: [] }), advertises(8), []],
    [
      'MIG strategy single without GFD: 56 MIG devices on 8 GPUs are not compared',
      withGpus(8, { gpus: Array.from({ length: 8 }, (_, i) => h100(i, { migMode: { enabled: true, pendingEnabled: true } })) }),
      advertises(56),
      ['info:AdvertisedGpusIgnored'],
    ],
    [
      'MIG strategy mixed: still compared',
      withGpus(3, { gpus: [h100(0, { migMode: { enabled: true, pendingEnabled: true } }), h100(1), h100(2)] }),
      advertises(4, { migStrategy: 'mixed' }),
      [`${SEVERITY}:GpusMissing`],
    ],
    [
      'MIG single with GFD: MIG devices imply one GPU, and none is seen',
      nvmlFailed,
      { counts: [{ source: 'capacity nvidia.com/gpu', gpus: 1, migDevices: 56 }], ignored: [], migStrategy: 'single' },
      [`${SEVERITY}:GpusMissing`],
    ],
    [
      'unreadable values are info, the rest still compared',
      withGpus(7),
      advertises(8, { ignored: [{ source: 'label nvidia.com/gpu.count', reason: '"eight" is not a whole number' }] }),
      ['info:AdvertisedGpusIgnored', `${SEVERITY}:GpusMissing`],
    ],
  ])('%s', (_, snapshot, advertised, expected) => {
    expect(summary(checkMissingGpus(snapshot, advertised, BUILT_IN_POLICY))).toEqual(expected);
  });

  it('names the expected and seen counts and where the expectation comes from', () => {
    const [f] = checkMissingGpus(withGpus(7), advertises(8), BUILT_IN_POLICY);
    expect(f).toMatchObject({ check: 'inventory', severity: 'critical', code: 'GpusMissing' });
    expect(f?.message).toMatch(
      /^node advertises 8 GPUs \(capacity nvidia\.com\/gpu, allocatable nvidia\.com\/gpu, label nvidia\.com\/gpu\.count\) but the agent sees 7;/,
    );
  });

  it('names only the sources that advertise the most', () => {
    const advertised: GpuAdvertisement = {
      counts: [
        { source: 'capacity nvidia.com/gpu', gpus: 8 },
        { source: 'allocatable nvidia.com/gpu', gpus: 7 },
      ],
      ignored: [],
    };
    expect(checkMissingGpus(withGpus(7), advertised, BUILT_IN_POLICY)[0]?.message).toMatch(
      /^node advertises 8 GPUs \(capacity nvidia\.com\/gpu\) but the agent sees 7;/,
    );
  });

  it('says "none" with NVML\'s reason when the agent sees no GPU', () => {
    expect(checkMissingGpus(noGpuMode('NVML reports no GPUs'), advertises(8), BUILT_IN_POLICY)[0]?.message).toContain(
      'but the agent sees none (NVML: NVML reports no GPUs)',
    );
    expect(checkMissingGpus(nvmlFailed, advertises(8), BUILT_IN_POLICY)[0]?.message).toContain(
      'sees none (NVML: NVML initialisation failed: Driver Not Loaded)',
    );
    const mig = checkMissingGpus(
      nvmlFailed,
      { counts: [{ source: 'capacity nvidia.com/gpu', gpus: 1, migDevices: 56 }], ignored: [] },
      BUILT_IN_POLICY,
    );
    expect(mig[0]?.message).toMatch(
      /^node advertises at least 1 GPU \(capacity nvidia\.com\/gpu counts 56 MIG devices\) but the agent sees none/,
    );
  });

  it('keeps the counts in a message whose NVML reason is long', () => {
    const long = nodeSnapshot({ nvml: { available: false, reason: `NVML initialisation failed: ${'x'.repeat(1000)}` }, gpus: [] });
    const [f] = checkMissingGpus(long, advertises(8), BUILT_IN_POLICY);
    expect(f?.message.length).toBeLessThanOrEqual(512);
    expect(f?.message).toContain('node advertises 8 GPUs');
    expect(f?.message).toContain('check nvidia-smi');
  });

  it('takes its severity from thresholds.inventory.missingGpusSeverity', () => {
    const policy = resolvePolicy({ thresholds: { inventory: { missingGpusSeverity: 'warning' } } });
    expect(summary(checkMissingGpus(withGpus(7), advertises(8), policy))).toEqual(['warning:GpusMissing']);
  });
});
