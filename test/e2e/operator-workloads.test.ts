/**
 * End to end: a GPU fault reaches the workloads on it. The simulated node's agent reads a
 * stand-in kubelet pod-resources server (grpc-js) that says which containers hold which GPU;
 * the Pods and their Job exist in the real API server, bound to the simulated node. Pod
 * trainer-0 (owned by Job trainer) holds GPU 3 and bystander GPU 0; then GPU 3 falls off the
 * bus. A lost GPU no longer tells NVML its UUID, so this also proves the agent keeps the UUID
 * it saw before, which is what the kubelet allocated.
 * The operator runs as its ServiceAccount with exactly config/rbac/operator.yaml, so every
 * read and write below is proven to need no more.
 */
import { readFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { AppsV1Api, AuthorizationV1Api, BatchV1Api, CoreV1Api, CustomObjectsApi, EventsV1Api, type V1Pod } from '@kubernetes/client-node';
import { GPU_HEALTH_POLICIES, type GPUDiagnostic, type GPUHealthPolicy } from '../../api/index.js';
import { createLogger } from '../../lib/logger.js';
import { POLICY_SHARD_LABEL } from '../../operator/config.js';
import { POD_GPU_HEALTHY_CONDITION } from '../../operator/workloads/index.js';
import { testCluster, useTestNamespace } from '../support/cluster.js';
import { createDiagnostic, waitFinished } from '../support/diagnostics.js';
import { socketDir, startFakePodResourcesServer, type FakePodResourcesServer } from '../support/pod-resources-server.js';
import { startScenarioEnv, waitUntil, type ScenarioEnv } from '../support/operator-env.js';

const ns = useTestNamespace('e2e-workloads');
const logger = createLogger({ silent: true });
const FLEET_LABEL = 'gpudiag.io/e2e-workloads';
const SCENARIO = 'h100-sxm-8x-healthy';

let env: ScenarioEnv | undefined;
let sockets: { dir: string; remove: () => Promise<void> } | undefined;
const servers: FakePodResourcesServer[] = [];
let before: GPUDiagnostic;
let toldWhileHealthy: unknown[] = [];
let first: GPUDiagnostic;
let lostUuid = '';
let gpu0 = '';
let nodeName = '';
const uids = new Map<string, string>();
let jobUid = '';
let policyName = '';

async function uuidsOf(scenario: string): Promise<string[]> {
  const parsed = JSON.parse(await readFile(new URL(`../../../agent/fake-nvml/scenarios/${scenario}.json`, import.meta.url), 'utf8')) as {
    gpus: { uuid: string }[];
  };
  return parsed.gpus.map((g) => g.uuid);
}

function podResources(pods: { name: string; container: string; gpu: string }[]): () => { message: Record<string, unknown> } {
  return () => ({
    message: {
      pod_resources: pods.map((p) => ({
        name: p.name,
        namespace: ns.name,
        containers: [{ name: p.container, devices: [{ resource_name: 'nvidia.com/gpu', device_ids: [p.gpu] }] }],
      })),
    },
  });
}

function core(): CoreV1Api {
  return testCluster().admin().makeApiClient(CoreV1Api);
}

async function createPod(
  name: string,
  node: string,
  container: string,
  owner?: { apiVersion: string; kind: string; name: string; uid: string },
): Promise<void> {
  const pod = await core().createNamespacedPod({
    namespace: ns.name,
    body: {
      metadata: { name, ...(owner !== undefined ? { ownerReferences: [{ ...owner, controller: true }] } : {}) },
      spec: { nodeName: node, restartPolicy: 'Never', containers: [{ name: container, image: 'example.com/train:1' }] },
    },
  });
  uids.set(name, pod.metadata?.uid ?? '');
}

async function warningsAbout(name: string): Promise<{ kind: string; reason: string; note: string }[]> {
  const list = await testCluster()
    .admin()
    .makeApiClient(EventsV1Api)
    .listNamespacedEvent({ namespace: ns.name, fieldSelector: `regarding.name=${name}` });
  return list.items
    .filter((e) => e.type === 'Warning')
    .map((e) => ({ kind: e.regarding?.kind ?? '', reason: e.reason ?? '', note: e.note ?? '' }));
}

function gpuCondition(pod: V1Pod): { status: string; reason?: string } | undefined {
  const c = pod.status?.conditions?.find((x) => x.type === POD_GPU_HEALTHY_CONDITION);
  return c === undefined ? undefined : { status: c.status, ...(c.reason !== undefined ? { reason: c.reason } : {}) };
}

function diagnose(name: string): Promise<GPUDiagnostic> {
  return createDiagnostic(ns.name, name, { checks: ['health', 'xid'], nodeNames: [nodeName] }).then(() =>
    waitFinished(ns.name, name, { timeoutMs: 60_000, pollMs: 250 }),
  );
}

beforeAll(async () => {
  const uuids = await uuidsOf(SCENARIO);
  lostUuid = uuids[3] ?? '';
  gpu0 = uuids[0] ?? '';
  sockets = await socketDir();
  servers.push(
    await startFakePodResourcesServer(sockets.dir, {
      list: podResources([
        { name: 'trainer-0', container: 'pytorch', gpu: lostUuid },
        { name: 'web-0', container: 'server', gpu: lostUuid },
        { name: 'bystander', container: 'main', gpu: gpu0 },
      ]),
    }),
  );
  env = await startScenarioEnv(ns.name, [SCENARIO], {
    label: FLEET_LABEL,
    identity: 'e2e-workloads-operator',
    logger,
    operatorArgs: ['--per-node-timeout-seconds', '10', '--policy-max-interval-seconds', '1'],
    podResourcesSockets: { [SCENARIO]: servers[0]?.socketPath ?? '' },
  });
  nodeName = env.nodeNames.get(SCENARIO) ?? '';
  // Suspended: no Job controller makes pods of its own; trainer-0 is "its" pod by ownerReference.
  const job = await testCluster()
    .admin()
    .makeApiClient(BatchV1Api)
    .createNamespacedJob({
      namespace: ns.name,
      body: {
        metadata: { name: 'trainer' },
        spec: {
          suspend: true,
          template: { spec: { restartPolicy: 'Never', containers: [{ name: 'pytorch', image: 'example.com/train:1' }] } },
        },
      },
    });
  jobUid = job.metadata?.uid ?? '';
  await createPod('trainer-0', nodeName, 'pytorch', { apiVersion: 'batch/v1', kind: 'Job', name: 'trainer', uid: jobUid });
  // A Deployment's pod: owned by a ReplicaSet that the Deployment controls (no controller runs here, so both are made by hand).
  const apps = testCluster().admin().makeApiClient(AppsV1Api);
  const labels = { app: 'web' };
  const template = { metadata: { labels }, spec: { containers: [{ name: 'server', image: 'example.com/web:1' }] } };
  const deployment = await apps.createNamespacedDeployment({
    namespace: ns.name,
    body: { metadata: { name: 'web' }, spec: { replicas: 0, selector: { matchLabels: labels }, template } },
  });
  const replicaSet = await apps.createNamespacedReplicaSet({
    namespace: ns.name,
    body: {
      metadata: {
        name: 'web-7d9f',
        ownerReferences: [
          { apiVersion: 'apps/v1', kind: 'Deployment', name: 'web', uid: deployment.metadata?.uid ?? '', controller: true },
        ],
      },
      spec: { replicas: 0, selector: { matchLabels: labels }, template },
    },
  });
  uids.set('web', deployment.metadata?.uid ?? '');
  await createPod('web-0', nodeName, 'server', {
    apiVersion: 'apps/v1',
    kind: 'ReplicaSet',
    name: 'web-7d9f',
    uid: replicaSet.metadata?.uid ?? '',
  });
  await createPod('bystander', nodeName, 'main');
  before = await diagnose('workloads-healthy');
  toldWhileHealthy = [...(await warningsAbout('trainer-0')), ...(await warningsAbout('bystander')), ...(await warningsAbout('trainer'))];
  await env.fleet.node(nodeName).controller?.inject({ kind: 'fall-off-bus', gpu: 3 });
  // Past the agent's snapshot cache (1 s), so the next diagnostic sees the lost GPU.
  await new Promise((r) => setTimeout(r, 1_500));
  first = await diagnose('workloads');
}, 120_000);

afterAll(async () => {
  // Left only when its test failed half-way.
  if (policyName !== '')
    await testCluster()
      .admin()
      .makeApiClient(CustomObjectsApi)
      .deleteClusterCustomObject({ ...GPU_HEALTH_POLICIES, name: policyName });
  await env?.stop();
  for (const s of servers) await s.close();
  await sockets?.remove();
});

describe('operator: the pods on a failing GPU', () => {
  it("names each GPU's pods in the diagnostic, completed with UID and controller; while healthy, no one is told", async () => {
    const trainer = {
      namespace: ns.name,
      name: 'trainer-0',
      uid: uids.get('trainer-0'),
      container: 'pytorch',
      source: 'pod-resources',
      controller: 'Job/trainer',
    };
    const bystander = { namespace: ns.name, name: 'bystander', uid: uids.get('bystander'), container: 'main', source: 'pod-resources' };
    // One node is a small diagnostic: healthy GPUs name their pods too.
    const web = {
      namespace: ns.name,
      name: 'web-0',
      uid: uids.get('web-0'),
      container: 'server',
      source: 'pod-resources',
      controller: 'ReplicaSet/web-7d9f of Deployment/web',
    };
    expect(before.status?.nodes?.[0]?.gpus?.find((g) => g.index === 3)?.pods).toEqual([trainer, web]);
    expect(before.status?.nodes?.[0]?.gpus?.find((g) => g.index === 0)?.pods).toEqual([bystander]);
    expect(toldWhileHealthy).toEqual([]);

    const node = first.status?.nodes?.[0];
    expect(node?.status).toBe('critical');
    const gpu3 = node?.gpus?.find((g) => g.index === 3);
    // NVML cannot name a lost GPU; the agent remembered its UUID.
    expect(gpu3).toMatchObject({ uuid: lostUuid, status: 'critical' });
    expect(gpu3?.pods).toEqual([trainer, web]);
    expect(node?.gpus?.find((g) => g.uuid === gpu0)).toMatchObject({ status: 'healthy', pods: [bystander] });
  });

  it('tells the pod and its Job in a Warning Event naming node, GPU, fault and consequence; no one else', async () => {
    await waitUntil(
      'the Events on trainer-0 and Job trainer',
      20_000,
      async () => (await warningsAbout('trainer-0')).length > 0 && (await warningsAbout('trainer')).some((e) => e.kind === 'Job'),
    );
    const onPod = await warningsAbout('trainer-0');
    expect(onPod).toHaveLength(1);
    expect(onPod[0]).toMatchObject({ kind: 'Pod', reason: 'GPUCritical' });
    expect(onPod[0]?.note).toContain(
      `${lostUuid} (GPU 3) on node ${nodeName}, used by container "pytorch" of pod ${ns.name}/trainer-0, is critical`,
    );
    expect(onPod[0]?.note).toContain("Your container's GPU is gone");
    const onJob = (await warningsAbout('trainer')).filter((e) => e.kind === 'Job');
    expect(onJob).toHaveLength(1);
    expect(onJob[0]?.note).toContain(`used by its pod ${ns.name}/trainer-0`);
    expect(await warningsAbout('bystander')).toEqual([]);
    // A Deployment's pod: the pod, its ReplicaSet and the Deployment are each told once.
    await waitUntil('the Event on Deployment web', 20_000, async () => (await warningsAbout('web')).length > 0);
    expect((await warningsAbout('web-0')).map((e) => e.kind)).toEqual(['Pod']);
    expect((await warningsAbout('web-7d9f')).map((e) => e.kind)).toEqual(['ReplicaSet']);
    expect((await warningsAbout('web')).map((e) => e.kind)).toEqual(['Deployment']);
  });

  it(
    'RBAC grew only by what this needs: list pods and patch pods/status anywhere, get ReplicaSets and Jobs; never read, change or ' +
      'delete pods otherwise',
    async () => {
      const authz = testCluster().admin().makeApiClient(AuthorizationV1Api);
      const may = async (
        verb: string,
        resource: string,
        extra: { group?: string; subresource?: string; namespace?: string } = {},
      ): Promise<boolean> =>
        (
          await authz.createSubjectAccessReview({
            body: {
              spec: {
                user: `system:serviceaccount:${ns.name}:gpudiag-operator`,
                groups: ['system:serviceaccounts', `system:serviceaccounts:${ns.name}`, 'system:authenticated'],
                resourceAttributes: {
                  verb,
                  resource,
                  group: extra.group ?? '',
                  namespace: extra.namespace ?? 'ml-elsewhere',
                  ...(extra.subresource !== undefined ? { subresource: extra.subresource } : {}),
                },
              },
            },
          })
        ).status?.allowed === true;
      expect(await may('list', 'pods')).toBe(true);
      expect(await may('patch', 'pods', { subresource: 'status' })).toBe(true);
      expect(await may('get', 'replicasets', { group: 'apps' })).toBe(true);
      expect(await may('get', 'jobs', { group: 'batch' })).toBe(true);
      for (const verb of ['get', 'watch', 'patch', 'update', 'delete', 'create'])
        expect([verb, await may(verb, 'pods')]).toEqual([verb, false]);
      expect(await may('create', 'pods', { subresource: 'eviction' })).toBe(false);
      expect(await may('create', 'pods', { subresource: 'exec' })).toBe(false);
      expect(await may('list', 'replicasets', { group: 'apps' })).toBe(false);
      expect(await may('get', 'deployments', { group: 'apps' })).toBe(false);
      expect(await may('get', 'secrets')).toBe(false);
    },
  );

  it('a second diagnostic finding the same fault tells no one again', async () => {
    const again = await diagnose('workloads-again');
    expect(again.status?.phase).toBe('Completed');
    expect(await warningsAbout('trainer-0')).toHaveLength(1);
    expect((await warningsAbout('trainer')).filter((e) => e.kind === 'Job')).toHaveLength(1);
  });

  it(
    'a policy lists the affected pods and, with podCondition, marks only the pods on the critical GPU; deleting it marks the pod ' +
      'True again',
    async () => {
      policyName = `${ns.name}-pods`;
      const custom = testCluster().admin().makeApiClient(CustomObjectsApi);
      await custom.createClusterCustomObject({
        ...GPU_HEALTH_POLICIES,
        body: {
          apiVersion: 'gpudiag.io/v1alpha1',
          kind: 'GPUHealthPolicy',
          metadata: { name: policyName, labels: { [POLICY_SHARD_LABEL]: ns.name } },
          spec: { interval: '1m', nodeSelector: { matchLabels: { [FLEET_LABEL]: ns.name } }, actions: { podCondition: { enabled: true } } },
        },
      });
      await waitUntil(
        'trainer-0 marked GPUHealthy=False',
        30_000,
        async () => gpuCondition(await core().readNamespacedPod({ namespace: ns.name, name: 'trainer-0' }))?.status === 'False',
      );
      expect(gpuCondition(await core().readNamespacedPod({ namespace: ns.name, name: 'trainer-0' }))).toEqual({
        status: 'False',
        reason: 'GpuLost',
      });
      await waitUntil(
        'web-0 marked GPUHealthy=False',
        30_000,
        async () => gpuCondition(await core().readNamespacedPod({ namespace: ns.name, name: 'web-0' }))?.status === 'False',
      );
      expect(gpuCondition(await core().readNamespacedPod({ namespace: ns.name, name: 'bystander' }))).toBeUndefined();
      const policy = (await custom.getClusterCustomObject({ ...GPU_HEALTH_POLICIES, name: policyName })) as GPUHealthPolicy;
      const worst = policy.status?.worstNodes?.find((n) => n.name === nodeName);
      expect(worst?.affectedPods).toEqual([
        {
          gpu: lostUuid,
          gpuStatus: 'critical',
          namespace: ns.name,
          name: 'trainer-0',
          uid: uids.get('trainer-0'),
          container: 'pytorch',
          source: 'pod-resources',
          controller: 'Job/trainer',
        },
        {
          gpu: lostUuid,
          gpuStatus: 'critical',
          namespace: ns.name,
          name: 'web-0',
          uid: uids.get('web-0'),
          container: 'server',
          source: 'pod-resources',
          controller: 'ReplicaSet/web-7d9f of Deployment/web',
        },
      ]);
      const metrics = await env?.operator.metrics.registry.getSingleMetricAsString('gpudiag_affected_pods');
      expect(metrics).toMatch(/^gpudiag_affected_pods\{fault="GpuLost",gpu_status="critical"\} 2$/m);

      await custom.deleteClusterCustomObject({ ...GPU_HEALTH_POLICIES, name: policyName });
      policyName = '';
      await waitUntil(
        'trainer-0 marked GPUHealthy=True after the policy is deleted',
        30_000,
        async () => gpuCondition(await core().readNamespacedPod({ namespace: ns.name, name: 'trainer-0' }))?.status === 'True',
      );
    },
  );
});
