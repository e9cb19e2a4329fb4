/** The GPU-hardware verdict of explain_pod_failure, rule by rule. */
import { describe, expect, it } from '@jest/globals';
import { containerLine, gpuHardwareVerdict, type ContainerFacts, type GpuHardwareVerdict, type VerdictFacts } from './pod-verdict.js';

const UUID = 'GPU-3b2c1d00-0000-4000-8000-000000000003';
const healthyGpu = { index: 3, uuid: UUID, pciBusId: '0000:5d:00', status: 'healthy' as const, findings: [] };
const lostGpu = {
  ...healthyGpu,
  status: 'critical' as const,
  findings: [{ check: 'health' as const, severity: 'critical' as const, code: 'GpuLost', message: 'GPU 3 is lost' }],
};
const degradedGpu = {
  ...healthyGpu,
  status: 'degraded' as const,
  findings: [{ check: 'thermal' as const, severity: 'warning' as const, code: 'HwThermalSlowdown', message: 'GPU 3 is throttled' }],
};
const unknownGpu = { ...healthyGpu, status: 'unknown' as const };
const xid79 = {
  xid: 79,
  name: 'GPU_HAS_FALLEN_OFF_THE_BUS',
  severity: 'critical' as const,
  gpu: UUID,
  attribution: 'gpu' as const,
  lastSeen: '2026-01-01T10:00:00.000Z',
  count: 1,
};
const xid79Node = { xid: 79, severity: 'critical' as const, attribution: 'node' as const, lastSeen: '2026-01-01T10:00:00.000Z', count: 1 };
const xid13 = {
  xid: 13,
  name: 'GRAPHICS_SM_EXCEPTION',
  severity: 'warning' as const,
  gpu: UUID,
  attribution: 'gpu' as const,
  lastSeen: '2026-01-01T10:00:00.000Z',
  count: 4,
};
const xidNoSeverity = { xid: 999, gpu: UUID, attribution: 'gpu' as const, count: 1 };
const xidInfo = { ...xid13, xid: 43, severity: 'info' as const };
const oom: ContainerFacts = {
  name: 'train',
  init: false,
  restartCount: 2,
  state: 'waiting',
  waitingReason: 'CrashLoopBackOff',
  lastTerminated: { exitCode: 137, reason: 'OOMKilled', finishedAt: '2026-01-01T10:01:00.000Z' },
};
const error: ContainerFacts = {
  name: 'train',
  init: false,
  restartCount: 0,
  state: 'terminated',
  lastTerminated: { exitCode: 1, reason: 'Error' },
};
const running: ContainerFacts = { name: 'train', init: false, restartCount: 0, state: 'running' };

function facts(over: Partial<VerdictFacts>): VerdictFacts {
  return { node: 'gpu-1', nodeDiagnosed: true, gpus: [healthyGpu], xidEvents: [], containers: [], ...over };
}

describe('gpuHardwareVerdict', () => {
  const cases: [string, Partial<VerdictFacts>, GpuHardwareVerdict, RegExp[]][] = [
    ['a critical GPU of the pod', { gpus: [lostGpu] }, 'likely', [/^GPU 3 \(GPU-3b2c1d00-.*\) is critical: GpuLost — GPU 3 is lost$/]],
    [
      'a critical XID on its healthy-looking GPU',
      { xidEvents: [xid79] },
      'likely',
      [
        /^XID 79 GPU_HAS_FALLEN_OFF_THE_BUS \(critical, ×1\) on GPU 3 \(GPU-3b2c1d00-.*\), last seen 2026-01-01T10:00:00.000Z during the pod's lifetime$/,
      ],
    ],
    [
      'a critical XID naming no GPU on its node',
      { xidEvents: [xid79Node] },
      'likely',
      [/on node gpu-1, naming no GPU \(it may have been the pod's\)/],
    ],
    [
      'critical wins over degraded and OOM, and the container facts follow',
      { gpus: [lostGpu, { ...degradedGpu, index: 4, uuid: 'GPU-4' }], containers: [oom] },
      'likely',
      [/GPU 3 .* is critical/, /GPU 4 \(GPU-4\) is degraded/, /container train was OOMKilled/],
    ],
    ['a degraded GPU', { gpus: [degradedGpu] }, 'possible', [/^GPU 3 .* is degraded: HwThermalSlowdown — GPU 3 is throttled$/]],
    ['a warning XID on its GPU', { xidEvents: [xid13] }, 'possible', [/^XID 13 GRAPHICS_SM_EXCEPTION \(warning, ×4\) on GPU 3/]],
    [
      'an XID without severity counts as a warning',
      { xidEvents: [xidNoSeverity] },
      'possible',
      [/^XID 999 \(warning, ×1\) on GPU 3 .* last seen at an unknown time/],
    ],
    [
      'healthy GPUs, only an info XID, an OOMKilled container',
      { xidEvents: [xidInfo], containers: [oom] },
      'unlikely',
      [
        /is healthy, with no warning or critical XID/,
        /^likelier cause: container train was OOMKilled \(out of memory; exit code 137\) at 2026-01-01T10:01:00.000Z \(2 restart\(s\)\)$/,
      ],
    ],
    [
      'healthy GPUs, an exit code',
      { gpus: [healthyGpu, { ...healthyGpu, index: 5, uuid: 'GPU-5' }], containers: [error] },
      'unlikely',
      [
        /GPU 3 .*, GPU 5 \(GPU-5\) are healthy, with no warning or critical XID on them/,
        /^likelier cause: container train exited with code 1 \(Error\)$/,
      ],
    ],
    ['healthy GPUs and a running container', { containers: [running] }, 'unlikely', [/is healthy/]],
    ['a GPU whose health is unknown', { gpus: [unknownGpu] }, 'unknown', [/^the health of GPU 3 .* is unknown$/]],
    [
      'no GPU lists the pod, even with a critical XID on the node',
      { gpus: [], xidEvents: [xid79Node], containers: [error] },
      'unknown',
      [/^no GPU of node gpu-1 lists this pod/, /container train exited with code 1/],
    ],
    [
      'the node could not be diagnosed',
      { nodeDiagnosed: false, nodeProblem: 'Unreachable — connection refused', gpus: [lostGpu] },
      'unknown',
      [/^node gpu-1 could not be diagnosed: Unreachable — connection refused$/],
    ],
  ];
  it.each(cases)('%s → %s', (_name, over, verdict, evidence) => {
    const result = gpuHardwareVerdict(facts(over));
    expect(result.gpuHardware).toBe(verdict);
    expect(result.evidence).toHaveLength(evidence.length);
    evidence.forEach((pattern, i) => expect(result.evidence[i]).toMatch(pattern));
  });
});

describe('containerLine', () => {
  it.each<[string, ContainerFacts, string | undefined]>([
    [
      'a clean exit says nothing',
      { name: 'c', init: false, restartCount: 0, state: 'terminated', lastTerminated: { exitCode: 0, reason: 'Completed' } },
      undefined,
    ],
    [
      'a signal is named',
      { name: 'c', init: true, restartCount: 0, state: 'terminated', lastTerminated: { exitCode: 139, signal: 11, reason: 'Error' } },
      'init container c exited with code 139, signal 11 (Error)',
    ],
    [
      'a crash loop without a recorded termination',
      { name: 'c', init: false, restartCount: 3, state: 'waiting', waitingReason: 'CrashLoopBackOff' },
      'container c is waiting: CrashLoopBackOff (3 restart(s))',
    ],
    [
      'starting up is no failure',
      { name: 'c', init: false, restartCount: 0, state: 'waiting', waitingReason: 'ContainerCreating' },
      undefined,
    ],
  ])('%s', (_name, c, line) => {
    expect(containerLine(c)).toBe(line);
  });
});
