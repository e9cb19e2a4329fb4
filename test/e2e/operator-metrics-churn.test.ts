/**
 * Metric series follow the fleet at scale: 1,000 Nodes are created, diagnosed (twice) and
 * deleted; their node, GPU and XID series appear, the second diagnostic counts no XID
 * occurrence again, and once the Nodes are gone the series count is back at its baseline.
 * The agents are one stub on 127.0.0.1 that answers for any node (the Pods all carry its IP):
 * what is under test is the operator, not 1,000 agent processes.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { CoreV1Api } from '@kubernetes/client-node';
import { AGENT_POD_LABELS } from '../../dev/fleet/simulated-fleet.js';
import { kubeRequest } from '../../lib/kube/raw-request.js';
import { createLogger } from '../../lib/logger.js';
import { runBounded } from '../../operator/fanout/pool.js';
import { sendJson, startStubAgent, type StubAgent } from '../../operator/fanout/test-support.js';
import type { Operator } from '../../operator/operator.js';
import { nodeSnapshot, xidEvent } from '../../operator/scoring/test-fixtures.js';
import { testCluster, useTestNamespace } from '../support/cluster.js';
import { createDiagnostic, waitFinished } from '../support/diagnostics.js';
import { startTestOperator, testOperatorArgs } from '../support/operator-env.js';
import { applyRbac } from '../support/rbac.js';

const ns = useTestNamespace('e2e-churn');
const NODES = 1_000;
const API_CONCURRENCY = 24;
const logger = createLogger({ silent: true });
let stub: StubAgent;
let operator: Operator;
let names: string[];
const seen = new Date(Date.now() - 60_000).toISOString();

/** Series of `metric` whose node label belongs to this test, and all series of it. */
async function seriesOf(metric: string): Promise<{ ours: { labels: Record<string, string | number>; value: number }[]; all: number }> {
  const m = (await operator.metrics.registry.getMetricsAsJSON()).find((x) => x.name === metric) as
    { values: { labels: Record<string, string | number>; value: number }[] } | undefined;
  const values = m?.values ?? [];
  return { ours: values.filter((v) => String(v.labels['node']).startsWith(`${ns.name}-n`)), all: values.length };
}

async function seriesTotal(): Promise<number> {
  let total = 0;
  for (const metric of ['gpudiag_node_health_score', 'gpudiag_gpu_health_score', 'gpudiag_xid_events_total'])
    total += (await seriesOf(metric)).all;
  return total;
}

beforeAll(async () => {
  await applyRbac('operator.yaml', ns.name);
  // One stub agent for every node: the node is the part of X-Request-Id after the first ':'.
  stub = await startStubAgent((req, res) => {
    const id = String(req.headers['x-request-id'] ?? '');
    const node = id.slice(id.indexOf(':') + 1);
    sendJson(
      res,
      200,
      nodeSnapshot({ node, collectedAt: new Date().toISOString(), events: [xidEvent(13, { count: 3, firstSeen: seen, lastSeen: seen })] }),
    );
  });
  operator = await startTestOperator(
    ns.name,
    [...testOperatorArgs(ns.name, stub.port), '--per-node-timeout-seconds', '20'],
    'churn',
    logger,
  );
}, 60_000);

afterAll(async () => {
  await operator?.stop();
  await stub?.close();
});

describe('metric series of 1,000 nodes that come and go', () => {
  it('appear with the nodes, are not recounted, and return to the baseline once the nodes are deleted', async () => {
    const baseline = await seriesTotal();
    const core = testCluster().admin().makeApiClient(CoreV1Api);
    const pool = `churn-${ns.name}`.slice(0, 63);
    names = Array.from({ length: NODES }, (_, i) => `${ns.name}-n${i}`);
    await runBounded(
      names,
      API_CONCURRENCY,
      async (name) => {
        await core.createNode({ body: { metadata: { name, labels: { 'gpudiag.io/pool': pool } } } });
        await core.createNamespacedPod({
          namespace: ns.name,
          body: {
            metadata: { name: `agent-${name}`.slice(0, 63), labels: { ...AGENT_POD_LABELS } },
            spec: { nodeName: name, containers: [{ name: 'agent', image: 'gpudiag/agent:stub' }] },
          },
        });
        await kubeRequest(testCluster().admin(), {
          method: 'PATCH',
          path: `/api/v1/namespaces/${ns.name}/pods/agent-${name}/status`,
          contentType: 'application/merge-patch+json',
          body: {
            status: {
              phase: 'Running',
              podIP: '127.0.0.1',
              podIPs: [{ ip: '127.0.0.1' }],
              conditions: [{ type: 'Ready', status: 'True' }],
            },
          },
        });
      },
      new AbortController().signal,
    );
    // Give the operator's watches a moment to see the last Pods.
    await new Promise((r) => setTimeout(r, 2_000));

    for (const run of ['first', 'second']) {
      await createDiagnostic(ns.name, `churn-${run}`, { nodeSelector: { matchLabels: { 'gpudiag.io/pool': pool } }, timeoutSeconds: 300 });
      const done = await waitFinished(ns.name, `churn-${run}`, { timeoutMs: 120_000, pollMs: 500 });
      expect(done.status?.summary?.nodesSucceeded).toBe(NODES);
    }
    expect((await seriesOf('gpudiag_node_health_score')).ours).toHaveLength(NODES);
    expect((await seriesOf('gpudiag_gpu_health_score')).ours).toHaveLength(8 * NODES);
    const xid = (await seriesOf('gpudiag_xid_events_total')).ours;
    expect(xid).toHaveLength(NODES);
    // Three occurrences per node, reported by both diagnostics, counted once.
    expect(xid.reduce((sum, v) => sum + v.value, 0)).toBe(3 * NODES);

    await runBounded(names, API_CONCURRENCY, async (name) => core.deleteNode({ name }), new AbortController().signal);
    const deadline = Date.now() + 30_000;
    while ((await seriesTotal()) !== baseline && Date.now() < deadline) await new Promise((r) => setTimeout(r, 250));
    expect(await seriesTotal()).toBe(baseline);
    expect((await seriesOf('gpudiag_node_health_score')).ours).toEqual([]);
  }, 240_000);
});
