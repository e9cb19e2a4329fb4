import { describe, expect, it } from '@jest/globals';
import type { V1Node, V1Pod } from '@kubernetes/client-node';
import { InvalidSelectorError } from './label-selector.js';
import { InvalidTargetInputError, resolveTargets, type NodeTarget, type ResolveTargetsInput } from './targets.js';

function node(name: string, labels: Record<string, string> = {}): V1Node {
  return { metadata: { name, labels } };
}

interface PodOptions {
  ready?: boolean;
  ip?: string;
  terminating?: boolean;
  created?: string;
}

function pod(name: string, nodeName: string | undefined, o: PodOptions = {}): V1Pod {
  return {
    metadata: {
      name,
      creationTimestamp: new Date(o.created ?? '2025-06-01T10:00:00Z'),
      ...(o.terminating === true ? { deletionTimestamp: new Date('2025-06-01T11:00:00Z') } : {}),
    },
    spec: { containers: [], ...(nodeName !== undefined ? { nodeName } : {}) },
    status: {
      ...(o.ip !== '' ? { podIP: o.ip ?? `10.0.0.${name.length}` } : {}),
      conditions: [{ type: 'Ready', status: o.ready === false ? 'False' : 'True' }],
    },
  };
}

const nodes = [
  node('gpu-node-2', { pool: 'h100' }),
  node('gpu-node-1', { pool: 'h100' }),
  node('gpu-node-3', { pool: 'a100' }),
  node('cpu-node-1', { pool: 'cpu' }),
];
const pods = [
  pod('agent-a', 'gpu-node-1', { ip: '10.0.0.1' }),
  pod('agent-b', 'gpu-node-2', { ip: '10.0.0.2' }),
  pod('agent-c', 'gpu-node-3', { ready: false, ip: '10.0.0.3' }),
  pod('agent-orphan', undefined, { ip: '10.0.0.9' }),
];

const ok = (n: string, podName: string, ip: string): NodeTarget => ({ node: n, agent: { podName, ip } });

describe('resolveTargets', () => {
  const cases: [string, Partial<ResolveTargetsInput>, NodeTarget[]][] = [
    [
      'no names, no selector: every node that has an agent pod, sorted',
      {},
      [
        ok('gpu-node-1', 'agent-a', '10.0.0.1'),
        ok('gpu-node-2', 'agent-b', '10.0.0.2'),
        { node: 'gpu-node-3', missingReason: 'no ready gpudiag agent pod on gpu-node-3 (pod agent-c is not Ready)' },
      ],
    ],
    [
      'an empty selector counts as no selector',
      { nodeSelector: {}, nodeNames: [] },
      [
        ok('gpu-node-1', 'agent-a', '10.0.0.1'),
        ok('gpu-node-2', 'agent-b', '10.0.0.2'),
        { node: 'gpu-node-3', missingReason: 'no ready gpudiag agent pod on gpu-node-3 (pod agent-c is not Ready)' },
      ],
    ],
    [
      'selector: every matching node, NoAgent for those without an agent',
      { nodeSelector: { matchExpressions: [{ key: 'pool', operator: 'In', values: ['h100', 'cpu'] }] } },
      [
        { node: 'cpu-node-1', missingReason: 'no gpudiag agent pod on cpu-node-1' },
        ok('gpu-node-1', 'agent-a', '10.0.0.1'),
        ok('gpu-node-2', 'agent-b', '10.0.0.2'),
      ],
    ],
    [
      'names: missing and agent-less nodes are targets with a reason',
      { nodeNames: ['gpu-node-9', 'gpu-node-2', 'cpu-node-1', 'gpu-node-2'] },
      [
        { node: 'cpu-node-1', missingReason: 'no gpudiag agent pod on cpu-node-1' },
        ok('gpu-node-2', 'agent-b', '10.0.0.2'),
        { node: 'gpu-node-9', missingReason: 'node gpu-node-9 not found' },
      ],
    ],
    [
      'names AND selector: a named node outside the selector is not a target',
      { nodeNames: ['gpu-node-1', 'gpu-node-3'], nodeSelector: { matchLabels: { pool: 'h100' } } },
      [ok('gpu-node-1', 'agent-a', '10.0.0.1')],
    ],
    ['selector matching nothing', { nodeSelector: { matchLabels: { pool: 'tpu' } } }, []],
  ];
  it.each(cases)('%s', (_name, input, expected) => {
    expect(resolveTargets({ nodes, agentPods: pods, ...input })).toEqual(expected);
  });

  it('picks the newest ready, non-terminating pod with an IP', () => {
    const agentPods = [
      pod('old', 'n1', { ip: '10.1.0.1', created: '2025-06-01T08:00:00Z' }),
      pod('newest-not-ready', 'n1', { ready: false, ip: '10.1.0.2', created: '2025-06-01T12:00:00Z' }),
      pod('new', 'n1', { ip: '10.1.0.3', created: '2025-06-01T10:00:00Z' }),
      pod('newest-terminating', 'n1', { terminating: true, ip: '10.1.0.4', created: '2025-06-01T13:00:00Z' }),
      pod('newest-no-ip', 'n1', { ip: '', created: '2025-06-01T14:00:00Z' }),
    ];
    expect(resolveTargets({ nodes: [node('n1')], agentPods })).toEqual([{ node: 'n1', agent: { podName: 'new', ip: '10.1.0.3' } }]);
  });

  it('explains every unusable pod (bounded)', () => {
    const agentPods = [
      pod('p1', 'n1', { terminating: true }),
      pod('p2', 'n1', { ip: '' }),
      pod('p3', 'n1', { ip: 'not-an-ip' }),
      pod('p4', 'n1', { ready: false }),
    ];
    expect(resolveTargets({ nodes: [node('n1')], agentPods })).toEqual([
      {
        node: 'n1',
        missingReason:
          'no ready gpudiag agent pod on n1 (pod p1 is terminating; pod p2 has no Pod IP yet; pod p3 has an invalid Pod IP; 1 more)',
      },
    ]);
  });

  it('reads creation timestamps given as strings', () => {
    const a = pod('a', 'n1', { ip: '10.0.0.1' });
    const b = pod('b', 'n1', { ip: '10.0.0.2' });
    (a.metadata as { creationTimestamp: unknown }).creationTimestamp = '2025-06-01T09:00:00Z';
    (b.metadata as { creationTimestamp: unknown }).creationTimestamp = '2025-06-01T11:00:00Z';
    expect(resolveTargets({ nodes: [node('n1')], agentPods: [a, b] })[0]?.agent?.podName).toBe('b');
  });

  const badInputs: [string, Partial<ResolveTargetsInput>, new (...args: never[]) => Error, string][] = [
    ['upper-case node name', { nodeNames: ['GPU-1'] }, InvalidTargetInputError, 'nodeNames[0]: "GPU-1" is not a DNS-1123 subdomain'],
    ['empty node name', { nodeNames: ['ok', ''] }, InvalidTargetInputError, 'nodeNames[1]: must not be empty'],
    [
      'log-injection attempt',
      { nodeNames: ['a\nlevel=error'] },
      InvalidTargetInputError,
      'nodeNames[0]: "a\\nlevel=error" is not a DNS-1123 subdomain',
    ],
    ['too long', { nodeNames: ['a'.repeat(254)] }, InvalidTargetInputError, 'nodeNames[0]: must be at most 253 characters'],
    [
      'invalid selector',
      { nodeSelector: { matchExpressions: [{ key: 'pool', operator: 'In', values: [] }] } },
      InvalidSelectorError,
      'nodeSelector.matchExpressions[0].values',
    ],
  ];
  it.each(badInputs)('rejects %s naming the field', (_name, input, type, message) => {
    expect(() => resolveTargets({ nodes, agentPods: pods, ...input })).toThrow(type);
    expect(() => resolveTargets({ nodes, agentPods: pods, ...input })).toThrow(message);
  });
});
