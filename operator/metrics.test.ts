/**
 * Per-node metric series follow the fleet: a GPU that disappears from a node loses its series,
 * a deleted node loses all of its series, and an XID occurrence reported again and again by
 * later diagnostics and checks is counted once.
 */
import { describe, expect, it } from '@jest/globals';
import { OperatorMetrics } from './metrics.js';
import { resolvePolicy, scoreNode } from './scoring/index.js';
import { NOW, h100, nodeSnapshot, xidEvent } from './scoring/test-fixtures.js';

const policy = resolvePolicy();

async function series(metrics: OperatorMetrics, name: string): Promise<{ labels: Record<string, string | number>; value: number }[]> {
  const metric = (await metrics.registry.getMetricsAsJSON()).find((m) => m.name === name) as
    { values: { labels: Record<string, string | number>; value: number }[] } | undefined;
  return metric?.values ?? [];
}

function score(node: string, gpuCount: number, events = [xidEvent(13, { count: 1 })]): ReturnType<typeof scoreNode> {
  return scoreNode(nodeSnapshot({ node, gpus: Array.from({ length: gpuCount }, (_, i) => h100(i)), events }), policy, NOW);
}

describe('OperatorMetrics per-node series', () => {
  it('replaces the GPU series of a node with the GPUs it reports now', async () => {
    const metrics = new OperatorMetrics();
    metrics.recordNodeScore(score('gpu-node-1', 8));
    expect(await series(metrics, 'gpudiag_gpu_health_score')).toHaveLength(8);
    metrics.recordNodeScore(score('gpu-node-1', 6));
    expect(await series(metrics, 'gpudiag_gpu_health_score')).toHaveLength(6);
  });

  it('removes every series of a node that is gone, and only that node', async () => {
    const metrics = new OperatorMetrics();
    metrics.recordNodeScore(score('gpu-node-1', 8));
    metrics.recordNodeScore(score('gpu-node-2', 8));
    metrics.forgetNode('gpu-node-1');
    for (const name of ['gpudiag_node_health_score', 'gpudiag_gpu_health_score', 'gpudiag_xid_events_total']) {
      const nodes = new Set((await series(metrics, name)).map((v) => v.labels['node']));
      expect({ name, nodes: [...nodes] }).toEqual({ name, nodes: ['gpu-node-2'] });
    }
    expect(metrics.nodesWithSeries).toBe(1);
    metrics.forgetNode('gpu-node-never-seen');
  });

  it('counts an XID occurrence once however often it is reported, and new occurrences as they come', async () => {
    const metrics = new OperatorMetrics();
    const total = async (): Promise<number> => (await series(metrics, 'gpudiag_xid_events_total')).reduce((sum, v) => sum + v.value, 0);
    const first = xidEvent(13, { count: 2 });
    for (let i = 0; i < 5; i++) metrics.recordNodeScore(score('gpu-node-1', 1, [first]));
    expect(await total()).toBe(2);
    metrics.recordNodeScore(score('gpu-node-1', 1, [{ ...first, count: 5 }]));
    expect(await total()).toBe(5);
    // The same code on another GPU, or a new episode (later first sighting), is another occurrence.
    metrics.recordNodeScore(
      score('gpu-node-1', 2, [
        { ...first, count: 5 },
        xidEvent(13, { count: 1 }, h100(1)),
        xidEvent(13, { count: 1, firstSeen: NOW.toISOString() }),
      ]),
    );
    expect(await total()).toBe(7);
  });

  it("labels each XID occurrence with NVIDIA's action bucket, so alerts can page on resets and reboots", async () => {
    const metrics = new OperatorMetrics();
    metrics.recordNodeScore(score('gpu-node-1', 1, [xidEvent(13, { count: 1 }), xidEvent(79, { count: 1 }), xidEvent(119, { count: 2 })]));
    const byXid = Object.fromEntries(
      (await series(metrics, 'gpudiag_xid_events_total')).map((v) => [v.labels['xid'], [v.labels['action'], v.value]]),
    );
    expect(byXid).toEqual({ '13': ['RESTART_APP', 1], '79': ['RESTART_BM', 1], '119': ['RESET_GPU', 2] });
    metrics.forgetNode('gpu-node-1');
    expect(await series(metrics, 'gpudiag_xid_events_total')).toEqual([]);
  });
});
