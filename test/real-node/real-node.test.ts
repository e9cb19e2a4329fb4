/**
 * A real one-node cluster on this machine (dev/real-node): the node registers and goes Ready, a
 * pod from the local Node base image runs to completion on it and its log reads back through the
 * API server (`kubectl logs`, which the API server proxies to the kubelet), the chart installed
 * with helm and its demo GPU values (the fake NVML library by hostPath, a kernel-log file) serves
 * a diagnostic through the real agent pod and reports an XID appended to that log, and stopping the node
 * leaves nothing: node processes, mounts, links, iptables rules, cgroups and runtime files are
 * counted before and after. Not part of `npm test` (root, built binaries): `npm run test:real-node`.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import {
  BatchV1Api,
  CoordinationV1Api,
  CoreV1Api,
  CustomObjectsApi,
  EventsV1Api,
  type V1Container,
  type V1Pod,
} from '@kubernetes/client-node';
import type { ControlPlane } from '../../dev/control-plane/control-plane.js';
import { startRealCluster, type RealCluster } from '../../dev/real-node/cluster.js';
import { appendFile, readdir, readFile } from 'node:fs/promises';
import { loadScenario } from '../../agent/fake-nvml/scenario.js';
import { toKernelBusId } from '../../agent/nvml/pci-bus-id.js';
import { GPU_DIAGNOSTICS, GPU_HEALTH_POLICIES, type GPUDiagnostic } from '../../api/index.js';
import { prepareDemoGpu, REAL_NODE_SCENARIO, type DemoGpu } from '../../dev/real-node/demo-gpu.js';
import { ensureHelm, helmInstall, REAL_NODE_VALUES } from '../../dev/real-node/helm.js';
import { repoRoot } from '../../dev/control-plane/binaries.js';
import { ensureGpudiagImages, localBaseImage, type GpudiagImages } from '../../dev/real-node/images.js';
import type { RealNode } from '../../dev/real-node/real-node.js';
import { hostCensus, type HostCensus } from '../../dev/real-node/residue.js';
import { startTestDevicePlugin, type TestDevicePlugin } from './device-plugin.js';
import { TokenRotationWatch } from './token-rotation.js';
import { connectStdio } from '../e2e/mcp-harness.js';

const run = promisify(execFile);
const progress = (m: string): void => void process.stderr.write(`[real-node] ${m}\n`);

let before: HostCensus;
let cluster: RealCluster | undefined;
let controlPlane: ControlPlane | undefined;
let node: RealNode | undefined;
let baseImage: string;
let images: GpudiagImages;
let demo: DemoGpu | undefined;
/** The operator pods' projected tokens, watched from helm install on (the rotation test reads it). */
let rotation: TokenRotationWatch | undefined;
/** Both lifetimes set to the least the API server accepts, so the kubelet rotates them every ~8 minutes. */
const TOKEN_SECONDS = 600;
const RELEASE = 'gpudiag';
const RELEASE_NS = 'gpudiag-system';

function kubectlRun(args: readonly string[]): Promise<{ stdout: string }> {
  return run('kubectl', ['--kubeconfig', controlPlane!.endpoint.adminKubeconfigPath, ...args], { timeout: 120_000 });
}

/** Creates a GPUDiagnostic for the real node and returns its node entry once it finished. */
async function diagnose(name: string): Promise<DiagnosticNode> {
  const custom = controlPlane!.adminKubeConfig().makeApiClient(CustomObjectsApi);
  await custom.createNamespacedCustomObject({
    ...GPU_DIAGNOSTICS,
    namespace: 'default',
    body: {
      apiVersion: `${GPU_DIAGNOSTICS.group}/${GPU_DIAGNOSTICS.version}`,
      kind: 'GPUDiagnostic',
      metadata: { name },
      spec: { nodeNames: [node!.name], checks: ['health', 'xid'] },
    },
  });
  const done = await waitFor(
    `GPUDiagnostic ${name} finished`,
    async () => {
      const d = (await custom.getNamespacedCustomObject({ ...GPU_DIAGNOSTICS, namespace: 'default', name })) as GPUDiagnostic;
      return d.status?.phase === 'Completed' || d.status?.phase === 'Failed' ? d : undefined;
    },
    180_000,
  );
  expect(done.status?.phase).toBe('Completed');
  const status = done.status?.nodes?.find((n) => n.name === node!.name);
  if (status === undefined) throw new Error(`no status for ${node!.name}: ${JSON.stringify(done.status)}`);
  return status;
}
type DiagnosticNode = NonNullable<NonNullable<GPUDiagnostic['status']>['nodes']>[number];

async function stopAll(): Promise<void> {
  rotation?.stop();
  const c = cluster;
  cluster = undefined;
  await c?.stop();
}

async function waitFor<T>(what: string, get: () => Promise<T | undefined>, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await get();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

beforeAll(async () => {
  const started = Date.now();
  // Images first (they take long cold, and hold nothing on the machine while they build).
  images = await ensureGpudiagImages(progress);
  const base = await localBaseImage();
  baseImage = base.image;
  before = await hostCensus();
  progress(`before: ${JSON.stringify(before)}`);
  cluster = await startRealCluster({ onProgress: progress });
  ({ controlPlane, node } = cluster);
  await node.importImages([base.archive]);
  progress(`node up in ${Date.now() - started} ms (images included)`);
}, 60 * 60_000);

afterAll(async () => {
  await stopAll();
}, 120_000);

describe('a real node', () => {
  it('registers with its bridge address and goes Ready', async () => {
    const core = controlPlane!.adminKubeConfig().makeApiClient(CoreV1Api);
    const n = await core.readNode({ name: node!.name });
    expect(n.status?.conditions?.find((c) => c.type === 'Ready')?.status).toBe('True');
    expect(n.status?.addresses).toContainEqual({ type: 'InternalIP', address: node!.network.nodeIp });
    expect(n.status?.nodeInfo?.containerRuntimeVersion).toMatch(/^containerd:\/\//);
  });

  it('runs a pod from the local base image, and its log reads back through the API server', async () => {
    const core = controlPlane!.adminKubeConfig().makeApiClient(CoreV1Api);
    await core.createNamespacedPod({
      namespace: 'default',
      body: {
        metadata: { name: 'hello' },
        spec: {
          restartPolicy: 'Never',
          containers: [
            {
              name: 'hello',
              image: baseImage,
              imagePullPolicy: 'Never',
              command: ['node', '-e', 'console.log(`hello from ${process.env.HOSTNAME}`)'],
            },
          ],
        },
      },
    });
    const pod = await waitFor(
      'pod hello Succeeded',
      async () => {
        const p = await core.readNamespacedPod({ namespace: 'default', name: 'hello' });
        if (p.status?.phase === 'Failed') throw new Error(`pod hello failed: ${JSON.stringify(p.status)}`);
        return p.status?.phase === 'Succeeded' ? p : undefined;
      },
      180_000,
    );
    expect(pod.status?.podIP).toMatch(/^10\.244\.0\./);
    expect(pod.spec?.nodeName).toBe(node!.name);
    const { stdout } = await run(
      'kubectl',
      ['--kubeconfig', controlPlane!.endpoint.adminKubeconfigPath, 'logs', '-n', 'default', 'hello'],
      { timeout: 60_000 },
    );
    expect(stdout.trim()).toBe('hello from hello');
  });

  it('keeps a pod running until the node stops (its container, shim, mounts and veth are what stop() must remove)', async () => {
    const core = controlPlane!.adminKubeConfig().makeApiClient(CoreV1Api);
    await core.createNamespacedPod({
      namespace: 'default',
      body: {
        metadata: { name: 'sleeper' },
        spec: {
          containers: [
            { name: 'sleeper', image: baseImage, imagePullPolicy: 'Never', command: ['node', '-e', 'setInterval(() => {}, 1 << 30)'] },
          ],
        },
      },
    });
    await waitFor(
      'pod sleeper Running',
      async () => {
        const p = await core.readNamespacedPod({ namespace: 'default', name: 'sleeper' });
        return p.status?.containerStatuses?.[0]?.state?.running !== undefined ? p : undefined;
      },
      180_000,
    );
    // The census sees a running node (so "nothing after stop" means something).
    const during = await hostCensus();
    progress(`during: ${JSON.stringify(during)}`);
    expect(during.processes).toBeGreaterThan(before.processes);
    expect(during.mounts).toBeGreaterThan(before.mounts);
    expect(during.links).toBeGreaterThan(before.links + 1); // the bridge and the pod's veth
    expect(during.iptablesRules).toBeGreaterThan(before.iptablesRules);
    expect(during.cgroups).toBeGreaterThan(before.cgroups);
  });

  it(
    'helm install: the agent DaemonSet pod and both operator replicas go Ready through their probes, and exactly one operator leads',
    async () => {
      await node!.importImages([images.agentArchive, images.operatorArchive]);
      demo = await prepareDemoGpu(node!.hostPathFor('demo-gpu'), REAL_NODE_SCENARIO);
      // what GPU feature discovery labels a GPU node with; the chart's agent DaemonSet selects on it
      await kubectlRun(['label', 'node', node!.name, 'nvidia.com/gpu.present=true']);
      await helmInstall(await ensureHelm(), {
        kubeconfig: controlPlane!.endpoint.adminKubeconfigPath,
        release: RELEASE,
        namespace: RELEASE_NS,
        valuesFiles: [REAL_NODE_VALUES],
        set: {
          'agent.stateHostPath': node!.hostPathFor('var-lib-gpudiag'),
          // the node's kubelet has a private root directory (the chart's default is /var/lib/kubelet/pod-resources)
          'agent.podResourcesHostPath': node!.podResourcesDir,
          'operator.agentTokenExpirationSeconds': String(TOKEN_SECONDS),
          'operator.apiTokenExpirationSeconds': String(TOKEN_SECONDS),
          ...demo.values,
        },
        timeoutSeconds: 600,
      });
      const core = controlPlane!.adminKubeConfig().makeApiClient(CoreV1Api);
      const ready = async (component: string): Promise<string[]> =>
        (await core.listNamespacedPod({ namespace: RELEASE_NS })).items
          .filter((p) => p.metadata?.labels?.['app.kubernetes.io/component'] === component)
          .filter((p) => p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') === true)
          .map((p) => p.metadata?.name ?? '');
      // helm --wait does not wait for the agent: a DaemonSet on one node with maxUnavailable 1 is
      // "ready" with no pod Ready. The agent's first readiness probe can come before it listens,
      // and the next one a period (10 s) later.
      const agents = await waitFor('the agent pod Ready', async () => ((await ready('agent')).length === 1 ? true : undefined), 60_000);
      expect(agents).toBe(true);
      const operators = await ready('operator');
      expect(operators).toHaveLength(2);
      const leases = controlPlane!.adminKubeConfig().makeApiClient(CoordinationV1Api);
      const holder = await waitFor(
        'an operator holds the Lease',
        async () => {
          try {
            return (
              (await leases.readNamespacedLease({ namespace: RELEASE_NS, name: `${RELEASE}-operator` })).spec?.holderIdentity ?? undefined
            );
          } catch (err) {
            progress(`no operator Lease yet: ${String(err)}`);
            return undefined;
          }
        },
        120_000,
      );
      // the holder identity is `<pod name>_<random>`
      expect(operators.filter((pod) => holder.startsWith(`${pod}_`))).toHaveLength(1);

      // From here on, the rotation test's clock runs: the tokens the kubelet writes for both operators.
      const pods = (await core.listNamespacedPod({ namespace: RELEASE_NS })).items;
      rotation = new TokenRotationWatch(
        pods
          .filter((p) => operators.includes(p.metadata?.name ?? ''))
          .flatMap((p) => [
            {
              name: `${p.metadata?.name ?? ''} agent-token`,
              file: node!.projectedVolumeFile(p.metadata?.uid ?? '', 'agent-token', 'agent-token'),
            },
            { name: `${p.metadata?.name ?? ''} api-access`, file: node!.projectedVolumeFile(p.metadata?.uid ?? '', 'api-access', 'token') },
          ]),
        (file) => readFile(file, 'utf8'),
      );
      await rotation.start(10_000);
      expect(rotation.fewestSeen()).toBe(1);
    },
    20 * 60_000,
  );

  it(
    'diagnoses the node through its agent pod (8 fake H100s), and an XID appended to its kernel log shows up in the next diagnostic',
    async () => {
      const healthy = await diagnose('real-node-healthy');
      if (healthy.status !== 'healthy') {
        const { stdout } = await kubectlRun(['logs', '-n', RELEASE_NS, '-l', 'app.kubernetes.io/component=agent', '--tail', '40']).catch(
          (err: unknown) => ({ stdout: String(err) }),
        );
        throw new Error(`the real node is ${String(healthy.status)}: ${JSON.stringify(healthy)}\nagent log:\n${stdout}`);
      }
      expect(healthy.gpus).toHaveLength((await loadScenario(REAL_NODE_SCENARIO)).gpus.length);

      const pci = toKernelBusId((await loadScenario(REAL_NODE_SCENARIO)).gpus[0]?.pciBusId ?? '') ?? '0000:18:00';
      await appendFile(
        demo!.kmsgPath,
        `3,1001,${Math.round(performance.now() * 1000)},-;NVRM: Xid (PCI:${pci}): 79, pid=0, GPU has fallen off the bus.\n`,
      );
      const faulted = await waitFor(
        'the XID in a diagnostic',
        async () => {
          const n = await diagnose(`real-node-xid-${Date.now()}`);
          return n.xidEvents?.some((e) => e.xid === 79) === true ? n : undefined;
        },
        180_000,
      );
      expect(faulted.status).toBe('critical');
      expect(faulted.xidEvents?.find((e) => e.xid === 79)?.pciBusId?.toLowerCase()).toContain(pci.slice(5));
    },
    10 * 60_000,
  );

  it(
    "the agent pod refuses a token of another ServiceAccount and one with the wrong audience, and reads the kubelet's pod-resources API",
    async () => {
      const core = controlPlane!.adminKubeConfig().makeApiClient(CoreV1Api);
      const agentPod = (await core.listNamespacedPod({ namespace: RELEASE_NS, labelSelector: 'app.kubernetes.io/component=agent' }))
        .items[0];
      const ip = agentPod?.status?.podIP;
      expect(ip).toMatch(/^10\.244\.0\./);
      const token = async (serviceAccount: string, audience: string): Promise<string> =>
        (
          await core.createNamespacedServiceAccountToken({
            namespace: RELEASE_NS,
            name: serviceAccount,
            body: { spec: { audiences: [audience], expirationSeconds: 600 } },
          })
        ).status?.token ?? '';
      const get = (bearer: string): Promise<Response> =>
        fetch(`http://${ip ?? ''}:9440/v1/snapshot?checks=inventory`, {
          headers: { authorization: `Bearer ${bearer}` },
          signal: AbortSignal.timeout(30_000),
        });
      const ask = async (bearer: string): Promise<number> => (await get(bearer)).status;
      const allowed = await get(await token(`${RELEASE}-operator`, 'gpudiag-agent'));
      expect(allowed.status).toBe(200);
      // and the agent reads the real kubelet's pod-resources API (no pod holds a GPU here: no device plugin)
      expect(((await allowed.json()) as { podResources?: unknown }).podResources).toEqual({ status: 'ok' });
      expect(await ask(await token('default', 'gpudiag-agent'))).toBe(403);
      expect(await ask(await token(`${RELEASE}-operator`, 'not-the-agent'))).toBe(401);
    },
    5 * 60_000,
  );

  it(
    'a device plugin of the real API advertises the fake GPUs by UUID; the real kubelet allocates one to the pod of a Job and ' +
      "one to a neighbour pod, and the agent reports each pod on exactly its GPU; an XID on the Job's GPU names the pod in the " +
      'status, tells the pod and its Job in Warning Events and the neighbour nothing, and the MCP tools answer for both pods',
    async () => {
      const kc = controlPlane!.adminKubeConfig();
      const core = kc.makeApiClient(CoreV1Api);
      const gpus = (await loadScenario(REAL_NODE_SCENARIO)).gpus;
      // GPU 0 carries the XID 79 of an earlier test: it is not offered, so no pod lands on a GPU that is already critical.
      const offered = gpus.slice(1).map((g) => g.uuid ?? '');
      const job = 'trainer';
      const neighbour = 'gpu-neighbour';
      const gpuContainer = (name: string): V1Container => ({
        name,
        image: baseImage,
        imagePullPolicy: 'Never',
        command: ['node', '-e', 'setInterval(() => {}, 1 << 30)'],
        resources: { limits: { 'nvidia.com/gpu': '1' } },
      });
      let plugin: TestDevicePlugin | undefined;
      try {
        plugin = await startTestDevicePlugin({ resourceName: 'nvidia.com/gpu', deviceIds: offered, socketName: 'gpudiag-test.sock' });
        await waitFor(
          `the node advertises ${offered.length} nvidia.com/gpu`,
          async () =>
            (await core.readNode({ name: node!.name })).status?.allocatable?.['nvidia.com/gpu'] === String(offered.length)
              ? true
              : undefined,
          120_000,
        );
        // The real Job controller (kube-controller-manager) makes the Job's pod; the real scheduler and kubelet place it.
        await kc.makeApiClient(BatchV1Api).createNamespacedJob({
          namespace: 'default',
          body: {
            metadata: { name: job },
            spec: {
              backoffLimit: 0,
              template: { spec: { restartPolicy: 'Never', terminationGracePeriodSeconds: 1, containers: [gpuContainer('train')] } },
            },
          },
        });
        await core.createNamespacedPod({
          namespace: 'default',
          body: { metadata: { name: neighbour }, spec: { terminationGracePeriodSeconds: 1, containers: [gpuContainer('main')] } },
        });
        const running = async (labelOrName: { label?: string; name?: string }): Promise<V1Pod> =>
          waitFor(
            `pod ${labelOrName.label ?? labelOrName.name ?? ''} Running`,
            async () => {
              const pods =
                labelOrName.label !== undefined
                  ? (await core.listNamespacedPod({ namespace: 'default', labelSelector: labelOrName.label })).items
                  : [await core.readNamespacedPod({ namespace: 'default', name: labelOrName.name ?? '' })];
              return pods.find((p) => p.status?.containerStatuses?.[0]?.state?.running !== undefined);
            },
            180_000,
          );
        const trainerPod = await running({ label: `job-name=${job}` });
        const trainer = trainerPod.metadata?.name ?? '';
        await running({ name: neighbour });
        // what the kubelet allocated, as each container sees it
        const visibleTo = async (pod: string): Promise<string> =>
          (
            await kubectlRun(['exec', '-n', 'default', pod, '--', 'node', '-e', 'console.log(process.env.NVIDIA_VISIBLE_DEVICES)'])
          ).stdout.trim();
        const trainerGpu = await visibleTo(trainer);
        const neighbourGpu = await visibleTo(neighbour);
        expect([...plugin.allocations].map((a) => a.join()).sort()).toEqual([trainerGpu, neighbourGpu].sort());
        expect(offered).toContain(trainerGpu);
        expect(neighbourGpu).not.toBe(trainerGpu);

        const agentPod = (await core.listNamespacedPod({ namespace: RELEASE_NS, labelSelector: 'app.kubernetes.io/component=agent' }))
          .items[0];
        const token =
          (
            await core.createNamespacedServiceAccountToken({
              namespace: RELEASE_NS,
              name: `${RELEASE}-operator`,
              body: { spec: { audiences: ['gpudiag-agent'], expirationSeconds: 600 } },
            })
          ).status?.token ?? '';
        type Gpu = { uuid?: string; pods?: { source: string; namespace?: string; name?: string; container?: string; deviceId?: string }[] };
        const holders = await waitFor(
          'the agent reports both pods on their GPUs',
          async () => {
            const answer = await fetch(`http://${agentPod?.status?.podIP ?? ''}:9440/v1/snapshot?checks=inventory`, {
              headers: { authorization: `Bearer ${token}` },
              signal: AbortSignal.timeout(30_000),
            });
            const found = ((await answer.json()) as { gpus: Gpu[] }).gpus.filter((g) => (g.pods?.length ?? 0) > 0);
            return found.length === 2 ? found : undefined;
          },
          60_000,
        );
        // no deviceId: the kubelet's id is the GPU's UUID itself
        expect(holders.find((g) => g.uuid === trainerGpu)?.pods).toEqual([
          { source: 'pod-resources', namespace: 'default', name: trainer, container: 'train' },
        ]);
        expect(holders.find((g) => g.uuid === neighbourGpu)?.pods).toEqual([
          { source: 'pod-resources', namespace: 'default', name: neighbour, container: 'main' },
        ]);

        // A double-bit ECC error (XID 48, critical) on the Job's GPU.
        const pci = toKernelBusId(gpus.find((g) => g.uuid === trainerGpu)?.pciBusId ?? '') ?? '';
        // Stamped with the host's uptime, as the kernel would: the MCP tools keep only XIDs logged during the pod's life.
        const uptimeUs = Math.round(Number((await readFile('/proc/uptime', 'utf8')).split(' ')[0]) * 1e6);
        await appendFile(
          demo!.kmsgPath,
          `3,1002,${uptimeUs},-;NVRM: Xid (PCI:${pci}): 48, pid=0, An uncorrectable double bit error (DBE) has been detected on ` +
            `GPU in the framebuffer at partition 0, subpartition 0.\n`,
        );
        const faulted = await waitFor(
          'the XID 48 in a diagnostic',
          async () => {
            const n = await diagnose(`real-node-pods-${Date.now()}`);
            return n.xidEvents?.some((e) => e.xid === 48) === true ? n : undefined;
          },
          180_000,
        );
        const jobUid = (await kc.makeApiClient(BatchV1Api).readNamespacedJob({ namespace: 'default', name: job })).metadata?.uid;
        const faultedGpu = faulted.gpus?.find((g) => g.uuid === trainerGpu);
        expect(faultedGpu?.status).toBe('critical');
        expect(faultedGpu?.pods).toEqual([
          {
            namespace: 'default',
            name: trainer,
            uid: trainerPod.metadata?.uid,
            container: 'train',
            source: 'pod-resources',
            controller: `Job/${job}`,
          },
        ]);
        expect(faulted.gpus?.find((g) => g.uuid === neighbourGpu)).toMatchObject({ status: 'healthy', pods: [{ name: neighbour }] });

        const events = kc.makeApiClient(EventsV1Api);
        const warnings = async (name: string): Promise<{ kind: string | undefined; uid: string | undefined; note: string | undefined }[]> =>
          (await events.listNamespacedEvent({ namespace: 'default', fieldSelector: `regarding.name=${name}` })).items
            .filter((e) => e.type === 'Warning' && e.reason === 'GPUCritical')
            .map((e) => ({ kind: e.regarding?.kind, uid: e.regarding?.uid, note: e.note }));
        const onPod = await waitFor(
          'the Warning Event on the pod',
          async () => ((await warnings(trainer)).length > 0 ? warnings(trainer) : undefined),
          30_000,
        );
        expect(onPod).toHaveLength(1);
        expect(onPod[0]).toMatchObject({ kind: 'Pod', uid: trainerPod.metadata?.uid });
        expect(onPod[0]?.note).toContain(
          `${trainerGpu} (GPU ${gpus.findIndex((g) => g.uuid === trainerGpu)}) on node ${node!.name}, used by container "train" ` +
            `of pod default/${trainer}, is critical: XID 48`,
        );
        const onJob = await waitFor(
          'the Warning Event on the Job',
          async () => ((await warnings(job)).length > 0 ? warnings(job) : undefined),
          30_000,
        );
        expect(onJob).toEqual([expect.objectContaining({ kind: 'Job', uid: jobUid })]);
        expect(await warnings(neighbour)).toEqual([]);

        // The assistant's answers, through a real MCP client over stdio (`gpudiag mcp` as the admin).
        const mcp = await connectStdio(controlPlane!.endpoint.adminKubeconfigPath);
        try {
          const ask = async (tool: string, pod: string): Promise<Record<string, unknown>> => {
            const answer = await mcp.client.callTool({
              name: tool,
              arguments: { namespace: 'default', name: pod, diagnosticNamespace: 'default' },
            });
            expect(answer.isError).not.toBe(true);
            return answer.structuredContent as Record<string, unknown>;
          };
          const gpusOfTrainer = await ask('pod_gpus', trainer);
          expect(gpusOfTrainer['gpus']).toEqual([expect.objectContaining({ uuid: trainerGpu, status: 'critical', containers: ['train'] })]);
          expect((gpusOfTrainer['xidEvents'] as { xid: number }[]).map((e) => e.xid)).toContain(48);
          const explained = await ask('explain_pod_failure', trainer);
          expect(explained['gpuHardware']).toBe('likely');
          expect((explained['evidence'] as string[]).join(' ')).toContain(trainerGpu);
          const calm = await ask('explain_pod_failure', neighbour);
          expect(calm['gpus']).toEqual([expect.objectContaining({ uuid: neighbourGpu, status: 'healthy' })]);
          expect(calm['gpuHardware']).toBe('unlikely');
        } finally {
          await mcp.client.close();
        }
      } finally {
        await kc
          .makeApiClient(BatchV1Api)
          .deleteNamespacedJob({ namespace: 'default', name: job, propagationPolicy: 'Background' })
          .catch((err: unknown) => progress(`job ${job} not deleted: ${String(err)}`));
        await core
          .deleteCollectionNamespacedPod({ namespace: 'default', labelSelector: `job-name=${job}`, gracePeriodSeconds: 0 })
          .catch((err: unknown) => progress(`pods of job ${job} not deleted: ${String(err)}`));
        await core
          .deleteNamespacedPod({ namespace: 'default', name: neighbour, gracePeriodSeconds: 0 })
          .catch((err: unknown) => progress(`pod ${neighbour} not deleted: ${String(err)}`));
        await plugin?.stop();
      }
    },
    10 * 60_000,
  );

  it(
    "without a device plugin allocation, the agent finds the pod of a GPU process through the process's cgroup (the fake " +
      "library lists a real container's pid)",
    async () => {
      const core = controlPlane!.adminKubeConfig().makeApiClient(CoreV1Api);
      const pod = 'cgroup-probe';
      const marker = 'gpudiag-cgroup-probe';
      try {
        await core.createNamespacedPod({
          namespace: 'default',
          body: {
            metadata: { name: pod },
            spec: {
              terminationGracePeriodSeconds: 1,
              containers: [
                {
                  name: 'probe',
                  image: baseImage,
                  imagePullPolicy: 'Never',
                  command: ['node', '-e', 'setInterval(() => {}, 1 << 30)', marker],
                },
              ],
            },
          },
        });
        const running = await waitFor(
          `pod ${pod} Running`,
          async () => {
            const p = await core.readNamespacedPod({ namespace: 'default', name: pod });
            return p.status?.containerStatuses?.[0]?.state?.running !== undefined ? p : undefined;
          },
          180_000,
        );
        // the container's process as the host sees it (NVML reports host pids)
        const hostPid = await waitFor(
          `the host pid of ${pod}`,
          async () => {
            for (const entry of await readdir('/proc')) {
              if (!/^\d+$/.test(entry)) continue;
              // a process may end between readdir and read: it is not the one we look for then
              const cmdline = await readFile(`/proc/${entry}/cmdline`, 'utf8').catch((err: unknown) =>
                (err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ESRCH'
                  ? ''
                  : Promise.reject(err),
              );
              if (cmdline.split('\0').includes(marker)) return Number(entry);
            }
            return undefined;
          },
          30_000,
        );
        await demo!.controller.inject({ kind: 'patch-gpu', gpu: 3, patch: { processes: [{ pid: hostPid, usedMemoryBytes: 1 << 30 }] } });

        const agentPod = (await core.listNamespacedPod({ namespace: RELEASE_NS, labelSelector: 'app.kubernetes.io/component=agent' }))
          .items[0];
        const token =
          (
            await core.createNamespacedServiceAccountToken({
              namespace: RELEASE_NS,
              name: `${RELEASE}-operator`,
              body: { spec: { audiences: ['gpudiag-agent'], expirationSeconds: 600 } },
            })
          ).status?.token ?? '';
        const gpu3 = await waitFor(
          'the agent maps the process to its pod',
          async () => {
            const answer = await fetch(`http://${agentPod?.status?.podIP ?? ''}:9440/v1/snapshot?checks=processes`, {
              headers: { authorization: `Bearer ${token}` },
              signal: AbortSignal.timeout(30_000),
            });
            const gpu = ((await answer.json()) as { gpus: { index: number; pods?: Array<{ source?: string }> }[] }).gpus.find(
              (g) => g.index === 3,
            );
            // the device-plugin test's neighbour pod may hold GPU 3 too (the kubelet picks its GPU): only the cgroup entries count here
            const fromCgroup = gpu?.pods?.filter((p) => p.source === 'process-cgroup') ?? [];
            return fromCgroup.length > 0 ? fromCgroup : undefined;
          },
          60_000,
        );
        const containerId = (running.status?.containerStatuses?.[0]?.containerID ?? '').replace(/^containerd:\/\//, '');
        expect(gpu3).toEqual([{ source: 'process-cgroup', uid: running.metadata?.uid, containerId, pids: [hostPid] }]);
      } finally {
        await core
          .deleteNamespacedPod({ namespace: 'default', name: pod, gracePeriodSeconds: 0 })
          .catch((err: unknown) => progress(`pod ${pod} not deleted: ${String(err)}`));
        await demo?.controller.load(REAL_NODE_SCENARIO);
      }
    },
    10 * 60_000,
  );

  it(
    "the operator's root filesystem is read-only",
    async () => {
      const core = controlPlane!.adminKubeConfig().makeApiClient(CoreV1Api);
      const operator =
        (await core.listNamespacedPod({ namespace: RELEASE_NS, labelSelector: 'app.kubernetes.io/component=operator' })).items[0]?.metadata
          ?.name ?? '';
      const attempt = await kubectlRun([
        'exec',
        '-n',
        RELEASE_NS,
        operator,
        '--',
        'node',
        '-e',
        "try { require('fs').writeFileSync('/app/probe', 'x'); console.log('written') } catch (e) { console.log(e.code) }",
      ]);
      expect(attempt.stdout.trim()).toBe('EROFS');
    },
    5 * 60_000,
  );

  it(
    'a policy with the taint action taints the node while a GPU overheats: the real scheduler keeps a pod that needs the node ' +
      'Pending, and schedules it once the GPU cools and the taint goes',
    async () => {
      const core = controlPlane!.adminKubeConfig().makeApiClient(CoreV1Api);
      const custom = controlPlane!.adminKubeConfig().makeApiClient(CustomObjectsApi);
      const key = 'gpudiag.io/gpu-unhealthy';
      const policy = 'real-node-taint';
      const pod = 'needs-the-node';
      const tainted = async (): Promise<boolean> =>
        (await core.readNode({ name: node!.name })).spec?.taints?.some((t) => t.key === key) === true;
      const scheduled = async (): Promise<{
        nodeName: string | undefined;
        condition: { status: string; reason?: string | undefined; message?: string | undefined } | undefined;
      }> => {
        const p = await core.readNamespacedPod({ namespace: 'default', name: pod });
        return { nodeName: p.spec?.nodeName, condition: p.status?.conditions?.find((c) => c.type === 'PodScheduled') };
      };
      try {
        // GPU 2 runs past its slowdown temperature: critical, and it clears by itself once the GPU cools
        await demo!.controller.inject({ kind: 'temperature', gpu: 2, celsius: 95, hwThermalSlowdown: true });
        await custom.createClusterCustomObject({
          ...GPU_HEALTH_POLICIES,
          body: {
            apiVersion: `${GPU_HEALTH_POLICIES.group}/${GPU_HEALTH_POLICIES.version}`,
            kind: 'GPUHealthPolicy',
            metadata: { name: policy },
            // the XIDs 79 and 48 read earlier stay in the node's history (health includes recent
            // XIDs): this policy ignores them, so the temperature alone decides
            spec: {
              nodeSelector: { matchLabels: { 'kubernetes.io/hostname': node!.name } },
              interval: '30s',
              checks: ['health'],
              xid: { ignore: [79, 48] },
              actions: { taint: { enabled: true, key, effect: 'NoSchedule', maxTaintedPercent: 100 } },
            },
          },
        });
        await waitFor('the policy taints the node', async () => ((await tainted()) ? true : undefined), 180_000);
        await core.createNamespacedPod({
          namespace: 'default',
          body: {
            metadata: { name: pod },
            spec: {
              nodeSelector: { 'kubernetes.io/hostname': node!.name },
              terminationGracePeriodSeconds: 1,
              containers: [
                { name: 'work', image: baseImage, imagePullPolicy: 'Never', command: ['node', '-e', 'setInterval(() => {}, 1 << 30)'] },
              ],
            },
          },
        });
        const refused = await waitFor(
          'the scheduler turns the pod away',
          async () => {
            const s = await scheduled();
            return s.condition?.status === 'False' ? s : undefined;
          },
          120_000,
        );
        expect(refused.nodeName).toBeUndefined();
        expect(refused.condition?.reason).toBe('Unschedulable');
        expect(refused.condition?.message).toContain(key);

        await demo!.controller.load(REAL_NODE_SCENARIO);
        await waitFor('the taint goes once the GPU cooled', async () => ((await tainted()) ? undefined : true), 180_000);
        const placed = await waitFor(
          'the pod scheduled on the node',
          async () => {
            const s = await scheduled();
            return s.nodeName !== undefined ? s : undefined;
          },
          180_000,
        );
        expect(placed.nodeName).toBe(node!.name);
        expect(placed.condition?.status).toBe('True');
      } catch (err) {
        const status = await custom.getClusterCustomObject({ ...GPU_HEALTH_POLICIES, name: policy }).then(
          (p) => JSON.stringify((p as { status?: unknown }).status),
          (e: unknown) => String(e),
        );
        throw new Error(`${String(err)}\npolicy ${policy} status: ${status}`, { cause: err });
      } finally {
        // best effort: an earlier failure may have left either uncreated
        await core
          .deleteNamespacedPod({ namespace: 'default', name: pod, gracePeriodSeconds: 0 })
          .catch((err: unknown) => progress(`pod ${pod} not deleted: ${String(err)}`));
        await custom
          .deleteClusterCustomObject({ ...GPU_HEALTH_POLICIES, name: policy })
          .catch((err: unknown) => progress(`policy ${policy} not deleted: ${String(err)}`));
        await demo?.controller.load(REAL_NODE_SCENARIO);
      }
    },
    10 * 60_000,
  );

  it(
    'helm upgrade with a changed agent value rolls the DaemonSet, and the new agent pod still reports the XID the old one read',
    async () => {
      const core = controlPlane!.adminKubeConfig().makeApiClient(CoreV1Api);
      const agentPods = async (): Promise<string[]> =>
        (await core.listNamespacedPod({ namespace: RELEASE_NS, labelSelector: 'app.kubernetes.io/component=agent' })).items
          .filter(
            (p) =>
              p.metadata?.deletionTimestamp === undefined &&
              p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') === true,
          )
          .map((p) => p.metadata?.name ?? '');
      const [old] = await agentPods();
      const helm = await ensureHelm();
      await run(
        helm,
        [
          'upgrade',
          RELEASE,
          `${repoRoot}/charts/gpudiag`,
          '--namespace',
          RELEASE_NS,
          '--kubeconfig',
          controlPlane!.endpoint.adminKubeconfigPath,
          '--reuse-values',
          '--set',
          'agent.logLevel=debug',
          '--wait',
          '--timeout',
          '300s',
        ],
        { timeout: 400_000 },
      );
      const rolled = await waitFor(
        'a new agent pod Ready',
        async () => {
          const pods = await agentPods();
          return pods.length === 1 && pods[0] !== old ? pods[0] : undefined;
        },
        300_000,
      );
      expect(rolled).not.toBe(old);
      const after = await diagnose(`real-node-after-upgrade-${Date.now()}`);
      expect(after.xidEvents?.some((e) => e.xid === 79)).toBe(true);
    },
    10 * 60_000,
  );

  it(
    "SIGTERM ends the agent and the operator containers with exit code 0 within their grace period (the restarted container's last state)",
    async () => {
      const core = controlPlane!.adminKubeConfig().makeApiClient(CoreV1Api);
      for (const component of ['agent', 'operator']) {
        const pod = (
          await core.listNamespacedPod({ namespace: RELEASE_NS, labelSelector: `app.kubernetes.io/component=${component}` })
        ).items.find((p) => p.metadata?.deletionTimestamp === undefined && p.status?.containerStatuses?.[0]?.ready === true);
        const name = pod?.metadata?.name ?? '';
        const restarts = pod?.status?.containerStatuses?.[0]?.restartCount ?? 0;
        const sentAt = Date.now();
        // the same signal the kubelet sends on pod deletion, to the container's PID 1; the kubelet then restarts it
        await kubectlRun(['exec', '-n', RELEASE_NS, name, '--', 'node', '-e', "process.kill(1, 'SIGTERM')"]);
        const terminated = await waitFor(
          `${component} container restarted after SIGTERM`,
          async () => {
            const status = (await core.readNamespacedPod({ namespace: RELEASE_NS, name })).status?.containerStatuses?.[0];
            return (status?.restartCount ?? 0) > restarts ? status?.lastState?.terminated : undefined;
          },
          120_000,
        );
        // 0, not 137: it exited by itself before the kubelet's SIGKILL at the end of the grace period
        expect({ exitCode: terminated.exitCode, signal: terminated.signal }).toEqual({ exitCode: 0, signal: undefined });
        expect(new Date(terminated.finishedAt ?? 0).getTime()).toBeGreaterThanOrEqual(sentAt - 1_000);
      }
    },
    10 * 60_000,
  );

  it(
    'logs of every gpudiag container read back through the API server',
    async () => {
      const core = controlPlane!.adminKubeConfig().makeApiClient(CoreV1Api);
      // a container the SIGTERM test ended may still be restarting
      const pods = await waitFor(
        'the agent and two operators Ready',
        async () => {
          const ready = (await core.listNamespacedPod({ namespace: RELEASE_NS })).items.filter(
            (p) =>
              p.metadata?.deletionTimestamp === undefined &&
              p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') === true,
          );
          return ready.length === 3 ? ready : undefined;
        },
        180_000,
      );
      for (const pod of pods) {
        const { stdout } = await kubectlRun(['logs', '-n', RELEASE_NS, pod.metadata?.name ?? '', '--tail', '5']);
        expect(stdout.trim().length).toBeGreaterThan(0);
      }
    },
    5 * 60_000,
  );

  it(
    'the operator keeps authenticating to the agent and the API server across two rotations of its projected tokens',
    async () => {
      const watch = rotation!;
      for (const rotated of [1, 2]) {
        // every operator token was replaced `rotated` times and the token replaced last has expired:
        // only a client that re-reads the rotated files still authenticates
        await waitFor(
          `rotation ${rotated} of both operators' agent and API server tokens, and the replaced tokens expired`,
          async () => {
            const expired = watch.allExpired(rotated);
            return watch.fewestSeen() > rotated && expired !== undefined && Date.now() > expired + 5_000 ? true : undefined;
          },
          // the kubelet replaces a token at 80% of its lifetime (plus up to a minute until its next sync of the pod)
          (2 * TOKEN_SECONDS + 180) * 1000,
        );
        progress(
          `tokens after rotation ${rotated}: ${JSON.stringify(Object.fromEntries(watch.issued()))} (last failed read: ` +
            `${watch.lastReadError ?? 'none'})`,
        );
        const diagnosed = await diagnose(`real-node-rotated-${rotated}-${Date.now()}`);
        expect(diagnosed.gpus).toHaveLength((await loadScenario(REAL_NODE_SCENARIO)).gpus.length);
      }
      const core = controlPlane!.adminKubeConfig().makeApiClient(CoreV1Api);
      for (const pod of (await core.listNamespacedPod({ namespace: RELEASE_NS, labelSelector: 'app.kubernetes.io/component=operator' }))
        .items) {
        const { stdout } = await kubectlRun(['logs', '-n', RELEASE_NS, pod.metadata?.name ?? '']);
        expect(stdout).not.toContain('Unauthorized');
      }
    },
    30 * 60_000,
  );

  it(
    'deleting the leading operator pod hands the lead to another replica, which finishes a diagnostic created meanwhile',
    async () => {
      const core = controlPlane!.adminKubeConfig().makeApiClient(CoreV1Api);
      const leases = controlPlane!.adminKubeConfig().makeApiClient(CoordinationV1Api);
      const holder = async (): Promise<string> =>
        (await leases.readNamespacedLease({ namespace: RELEASE_NS, name: `${RELEASE}-operator` })).spec?.holderIdentity ?? '';
      const leader = (await holder()).split('_')[0] ?? '';
      const others = (await core.listNamespacedPod({ namespace: RELEASE_NS, labelSelector: 'app.kubernetes.io/component=operator' })).items
        .map((p) => p.metadata?.name ?? '')
        .filter((name) => name !== leader);
      expect(others).toHaveLength(1);
      await core.deleteNamespacedPod({ namespace: RELEASE_NS, name: leader });
      const during = diagnose(`real-node-failover-${Date.now()}`);
      const next = await waitFor(
        'another operator leads',
        async () => {
          const h = (await holder()).split('_')[0] ?? '';
          return h !== '' && h !== leader ? h : undefined;
        },
        120_000,
      );
      // the other replica, or the Deployment's replacement for the deleted one if it was quicker
      const live = (await core.listNamespacedPod({ namespace: RELEASE_NS, labelSelector: 'app.kubernetes.io/component=operator' })).items
        .filter((p) => p.metadata?.deletionTimestamp === undefined)
        .map((p) => p.metadata?.name ?? '');
      expect(live).toContain(next);
      expect((await during).status).toBe('critical');
    },
    10 * 60_000,
  );

  it(
    'helm uninstall leaves no gpudiag object but the CRDs',
    async () => {
      const helm = await ensureHelm();
      await run(
        helm,
        [
          'uninstall',
          RELEASE,
          '--namespace',
          RELEASE_NS,
          '--kubeconfig',
          controlPlane!.endpoint.adminKubeconfigPath,
          '--wait',
          '--timeout',
          '300s',
        ],
        { timeout: 400_000 },
      );
      // the pods go after their owners, through the garbage collector and their grace period
      const left = await waitFor(
        'no gpudiag object left',
        async () => {
          const { stdout } = await kubectlRun([
            'get',
            'all,serviceaccounts,roles,rolebindings,clusterroles,clusterrolebindings,networkpolicies',
            '-A',
            '-l',
            `app.kubernetes.io/instance=${RELEASE}`,
            '-o',
            'name',
          ]);
          return stdout.trim() === '' ? stdout : undefined;
        },
        180_000,
      );
      expect(left.trim()).toBe('');
      const crds = await kubectlRun(['get', 'crds', '-o', 'name']);
      expect(crds.stdout).toContain('gpudiagnostics.gpudiag.io');
    },
    10 * 60_000,
  );

  it('stops leaving nothing behind', async () => {
    await stopAll();
    const after = await hostCensus();
    progress(`after: ${JSON.stringify(after)}`);
    // The machine-wide totals are for the record: other work on the machine may change them.
    expect({ ...after, machine: undefined }).toEqual({ ...before, machine: undefined });
  });
});
