/** The simulated fleet: Node and agent Pod objects in the API server, each backed by a real agent. */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { CoreV1Api } from '@kubernetes/client-node';
import type { NodeSnapshotDocument } from '../../agent/api/snapshot-document.js';
import { freePort } from '../../dev/control-plane/control-plane.js';
import { SimulatedFleet, uniqueFleetNames } from '../../dev/fleet/simulated-fleet.js';
import { createLogger } from '../../lib/logger.js';
import { testCluster, useTestNamespace } from '../support/cluster.js';

const ns = useTestNamespace('fleet');
let fleet: SimulatedFleet;

beforeAll(async () => {
  fleet = await SimulatedFleet.start({
    kc: testCluster().admin(),
    namespace: ns.name,
    nodes: uniqueFleetNames(ns.name, [
      { name: 'healthy', scenario: 'h100-sxm-8x-healthy' },
      { name: 'lost', scenario: 'gpu-lost-xid79' },
      { name: 'bare', scenario: 'h100-sxm-8x-healthy', withoutAgent: true },
    ]),
    port: await freePort(),
    logger: createLogger({ silent: true }),
    auth: 'none',
  });
});
afterAll(async () => {
  await fleet?.stop();
});

describe('simulated fleet', () => {
  it('registers nodes and Ready agent pods with their loopback IPs', async () => {
    const core = testCluster().admin().makeApiClient(CoreV1Api);
    const pods = await core.listNamespacedPod({ namespace: ns.name, labelSelector: 'app.kubernetes.io/component=agent' });
    expect(
      pods.items.map((p) => [p.spec?.nodeName, p.status?.podIP, p.status?.conditions?.find((c) => c.type === 'Ready')?.status]).sort(),
    ).toEqual(
      fleet.nodes
        .filter((n) => n.agent !== undefined)
        .map((n) => [n.spec.name, n.address, 'True'])
        .sort(),
    );
    const node = await core.readNode({ name: fleet.nodes[2]?.spec.name ?? '' });
    expect(node.metadata?.labels?.['gpudiag.io/simulated']).toBe('true');
  });

  it('serves each node its own scenario, including the XID from both sources', async () => {
    const lost = fleet.nodes[1];
    const agent = lost?.agent;
    const res = await fetch(`http://${lost?.address}:${agent?.address.port}/v1/snapshot?xidSince=2000-01-01T00:00:00Z`);
    const doc = (await res.json()) as NodeSnapshotDocument;
    expect(doc.node).toBe(lost?.spec.name);
    expect(doc.gpus.filter((g) => g.lost)).toHaveLength(1);
    expect(doc.xid.events.map((e) => e.xid)).toContain(79);
    const healthy = fleet.nodes[0];
    const healthyDoc = (await (
      await fetch(`http://${healthy?.address}:${healthy?.agent?.address.port}/v1/snapshot`)
    ).json()) as NodeSnapshotDocument;
    expect(healthyDoc.gpus.some((g) => g.lost)).toBe(false);
  });
});
