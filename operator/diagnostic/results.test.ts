import { describe, expect, it } from '@jest/globals';
import { BUILT_IN_POLICY, scoreNode } from '../scoring/index.js';
import { h100, lostGpu, NOW, nodeSnapshot, xidEvent } from '../scoring/test-fixtures.js';
import { buildResults, healthyCondition, STATUS_LIMITS, summarize, type NodeResultInput } from './results.js';

function scored(
  node: string,
  gpus = Array.from({ length: 8 }, (_, i) => h100(i)),
  events: ReturnType<typeof xidEvent>[] = [],
): NodeResultInput {
  const score = scoreNode({ ...nodeSnapshot({ gpus, events }), node }, BUILT_IN_POLICY, NOW);
  return { node, result: 'Succeeded', score, durationMs: 12 };
}

/** A node where every GPU has several findings and XIDs: the worst case for status size. */
function brokenNode(node: string): NodeResultInput {
  const gpus = Array.from({ length: 8 }, (_, i) =>
    h100(i, {
      ecc: { enabled: true, volatileUncorrected: 5, volatileCorrected: 50_000, aggregateUncorrected: 9, aggregateCorrected: 90_000 },
      remappedRows: { corrected: 3, uncorrected: 12, pending: true, failure: true },
      temperature: { gpuCelsius: 90, slowdownCelsius: 87, shutdownCelsius: 92 },
      clockEventReasons: { mask: 0x48, names: ['HwSlowdown', 'HwThermalSlowdown'] },
    }),
  );
  const events = gpus.flatMap((g) => [48, 79, 95, 13].map((x) => xidEvent(x, { count: 100, message: 'x'.repeat(300) }, g)));
  return scored(node, gpus, events);
}

describe('buildResults', () => {
  it('orders nodes worst first and counts every node in the summary', () => {
    const inputs: NodeResultInput[] = [
      scored('gpu-node-a'),
      { node: 'gpu-node-b', result: 'Timeout', message: 'no answer within 20s' },
      scored('gpu-node-c', [h100(0), lostGpu(1)]),
      { node: 'gpu-node-d', result: 'NoAgent', message: 'no ready gpudiag agent pod' },
    ];
    const { summary, nodes, nodesTruncated } = buildResults(inputs, 4);
    expect(nodes?.map((n) => [n.name, n.status])).toEqual([
      ['gpu-node-c', 'critical'],
      ['gpu-node-b', 'unknown'],
      ['gpu-node-d', 'unknown'],
      ['gpu-node-a', 'healthy'],
    ]);
    expect(nodesTruncated).toBe(0);
    expect(summary).toMatchObject({
      nodesTargeted: 4,
      nodesCompleted: 4,
      nodesSucceeded: 2,
      nodesFailed: 2,
      nodesByResult: { Succeeded: 2, NoAgent: 1, Unreachable: 0, Timeout: 1, Error: 0 },
      nodesByStatus: { healthy: 1, degraded: 0, critical: 1, unknown: 2 },
      gpus: { total: 10, healthy: 9, critical: 1 },
      criticalNodes: ['gpu-node-c'],
    });
    expect(nodes?.[0]?.gpus?.[0]).toMatchObject({ index: 1, status: 'critical', findings: [expect.objectContaining({ code: 'GpuLost' })] });
  });

  it('lists every GPU for small diagnostics but only unhealthy GPUs for large fleets', () => {
    const small = buildResults([scored('gpu-node-a')], 1);
    expect(small.nodes?.[0]?.gpus).toHaveLength(8);
    const fleet = Array.from({ length: STATUS_LIMITS.detailedNodeLimit + 1 }, (_, i) => scored(`gpu-node-${i}`));
    const large = buildResults(fleet, fleet.length);
    expect(large.nodes?.[0]).toMatchObject({ gpuCount: 8, gpusTruncated: 8 });
    expect(large.nodes?.[0]?.gpus).toBeUndefined();
  });

  it('stays under 512 KiB at 5,000 nodes x 8 GPUs, all broken, with exact truncation counts', () => {
    const template = brokenNode('template');
    const inputs = Array.from({ length: 5000 }, (_, i) => ({ ...template, node: `gpu-node-${String(i).padStart(4, '0')}` }));
    const results = buildResults(inputs, 5000);
    const bytes = JSON.stringify(results).length;
    expect(bytes).toBeLessThan(512 * 1024);
    expect((results.nodes?.length ?? 0) + (results.nodesTruncated ?? 0)).toBe(5000);
    expect(results.summary?.nodesByStatus?.critical).toBe(5000);
    expect(results.summary?.gpus?.total).toBe(40_000);
    expect(results.summary?.criticalNodes).toHaveLength(STATUS_LIMITS.criticalNodeNames);
    expect(results.summary?.criticalNodesTruncated).toBe(5000 - STATUS_LIMITS.criticalNodeNames);
    const first = results.nodes?.[0];
    expect(first?.xidEvents?.length).toBeLessThanOrEqual(STATUS_LIMITS.xidEventsPerNode);
    expect((first?.xidEvents?.length ?? 0) + (first?.xidEventsTruncated ?? 0)).toBe(template.score?.xidEvents.length);
    for (const gpu of first?.gpus ?? []) expect(gpu.findings?.length ?? 0).toBeLessThanOrEqual(STATUS_LIMITS.findingsPerGpu);
  });
});

describe('healthyCondition', () => {
  it.each([
    [[scored('a')], 'True', 'AllHealthy'],
    [[scored('a'), { node: 'b', result: 'Unreachable' } as NodeResultInput], 'Unknown', 'NodesNotDiagnosed'],
    [[scored('a', [lostGpu(0)])], 'False', 'CriticalNodes'],
  ])('case %#', (inputs, status, reason) => {
    expect(healthyCondition(summarize(inputs, inputs.length))).toMatchObject({ status, reason });
  });

  it('names the critical nodes', () => {
    expect(healthyCondition(summarize([scored('gpu-node-7', [lostGpu(0)])], 1)).message).toContain('gpu-node-7');
  });
});
