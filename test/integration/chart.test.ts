/**
 * The Helm chart, rendered by a real helm (built from the Go module proxy, cached by version):
 * with any release name the operator's agent selector matches the agent DaemonSet's pods, the
 * RBAC equals config/rbac/, every container has limits, a NetworkPolicy guards the agents, and
 * the API server accepts every manifest (server-side dry run).
 */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from '@jest/globals';
import type { KubernetesObject } from '@kubernetes/client-node';
import { parseAllDocuments } from 'yaml';
import { readManifests } from '../../dev/apply.js';
import { repoRoot } from '../../dev/control-plane/binaries.js';
import { matchesSelector } from '../../operator/fanout/label-selector.js';
import { testCluster, useTestNamespace } from '../support/cluster.js';
import { kubectl } from '../support/kubectl.js';

const run = promisify(execFile);
const ns = useTestNamespace('chart');
let helm: string;

interface Container {
  name: string;
  args?: string[];
  env?: { name: string; value?: string }[];
  resources?: { limits?: Record<string, string> };
  volumeMounts?: { name: string; mountPath: string; readOnly?: boolean }[];
}
interface PodSpec {
  serviceAccountName?: string;
  automountServiceAccountToken?: boolean;
  terminationGracePeriodSeconds?: number;
  containers: Container[];
  volumes?: { name: string; projected?: { sources: { serviceAccountToken?: { audience?: string; expirationSeconds?: number } }[] } }[];
}
interface Rendered extends KubernetesObject {
  spec?: {
    template?: {
      metadata?: { labels?: Record<string, string> };
      spec?: PodSpec;
    };
    podSelector?: { matchLabels?: Record<string, string> };
    ingress?: {
      from?: { podSelector?: { matchLabels?: Record<string, string> }; namespaceSelector?: { matchLabels?: Record<string, string> } }[];
      ports?: { port: number }[];
    }[];
  };
  rules?: unknown[];
}

async function render(release: string, namespace: string, ...set: string[]): Promise<Rendered[]> {
  // `key=value` goes to --set, `key:=json` to --set-json.
  const flags = set.flatMap((s) => (s.includes(':=') ? ['--set-json', s.replace(':=', '=')] : ['--set', s]));
  const { stdout } = await run(helm, ['template', release, path.join(repoRoot, 'charts', 'gpudiag'), '--namespace', namespace, ...flags], {
    maxBuffer: 16 << 20,
  });
  return parseAllDocuments(stdout)
    .map((d) => d.toJS() as Rendered)
    .filter((o) => o !== null);
}

function find(objects: Rendered[], kind: string, nameSuffix: string): Rendered {
  const found = objects.find((o) => o.kind === kind && (o.metadata?.name ?? '').endsWith(nameSuffix));
  if (found === undefined) throw new Error(`no ${kind} *${nameSuffix} rendered`);
  return found;
}

function arg(container: Container | undefined, flag: string): string {
  const value = container?.args?.find((a) => a.startsWith(`${flag}=`))?.slice(flag.length + 1);
  if (value === undefined) throw new Error(`${container?.name ?? '?'} has no ${flag}`);
  return value;
}

function selectorFromArg(value: string): { matchLabels: Record<string, string> } {
  return { matchLabels: Object.fromEntries(value.split(',').map((kv) => kv.split('=') as [string, string])) };
}

beforeAll(async () => {
  // Cached by version; a cold build takes a few minutes (CI builds it before the tests).
  const { stdout } = await run('bash', [path.join(repoRoot, 'dev', 'tools', 'build-helm.sh')], { timeout: 15 * 60_000 });
  helm = stdout.trim().split('\n').at(-1) ?? '';
}, 15 * 60_000);

describe('Helm chart', () => {
  it.each([['gpudiag'], ['my-custom-release']])(
    'with release name %s, the operator finds its agents and the agents accept its identity',
    async (release) => {
      const objects = await render(release, 'gpu-ops');
      const daemonSet = find(objects, 'DaemonSet', '-agent');
      const deployment = find(objects, 'Deployment', '-operator');
      const agent = daemonSet.spec?.template?.spec?.containers[0];
      const operator = deployment.spec?.template?.spec?.containers[0];
      expect(daemonSet.metadata?.namespace).toBe('gpu-ops');
      expect(arg(operator, '--agent-namespace')).toBe('gpu-ops');
      expect(matchesSelector(daemonSet.spec?.template?.metadata?.labels, selectorFromArg(arg(operator, '--agent-selector')))).toBe(true);
      expect(arg(agent, '--listen').endsWith(`:${arg(operator, '--agent-port')}`)).toBe(true);
      expect(arg(agent, '--allowed-callers')).toBe(
        `system:serviceaccount:gpu-ops:${deployment.spec?.template?.spec?.serviceAccountName ?? ''}`,
      );
      const audience = deployment.spec?.template?.spec?.volumes
        ?.flatMap((v) => v.projected?.sources ?? [])
        .find((s) => s.serviceAccountToken)?.serviceAccountToken?.audience;
      expect(audience).toBe(arg(agent, '--token-audience'));
    },
  );

  it("two releases never select each other's agents", async () => {
    const a = await render('fleet-a', 'gpu-ops');
    const b = await render('fleet-b', 'gpu-ops');
    const selectorA = selectorFromArg(arg(find(a, 'Deployment', '-operator').spec?.template?.spec?.containers[0], '--agent-selector'));
    expect(matchesSelector(find(b, 'DaemonSet', '-agent').spec?.template?.metadata?.labels, selectorA)).toBe(false);
  });

  it('grants exactly the RBAC of config/rbac/', async () => {
    const objects = await render('gpudiag', 'gpu-ops');
    const operatorRbac = (await readManifests([path.join(repoRoot, 'config', 'rbac', 'operator.yaml')])) as Rendered[];
    const agentRbac = (await readManifests([path.join(repoRoot, 'config', 'rbac', 'agent.yaml')])) as Rendered[];
    expect(find(objects, 'ClusterRole', '-operator').rules).toEqual(find(operatorRbac, 'ClusterRole', 'gpudiag-operator').rules);
    expect(find(objects, 'Role', '-operator').rules).toEqual(find(operatorRbac, 'Role', 'gpudiag-operator').rules);
    expect(find(objects, 'ClusterRole', '-agent').rules).toEqual(find(agentRbac, 'ClusterRole', 'gpudiag-agent').rules);
  });

  it('sets memory limits on every container and lets only the operator reach the agents', async () => {
    const objects = await render('gpudiag', 'gpu-ops');
    for (const workload of objects.filter((o) => o.kind === 'Deployment' || o.kind === 'DaemonSet')) {
      for (const c of workload.spec?.template?.spec?.containers ?? []) expect(c.resources?.limits?.['memory']).toBeDefined();
    }
    // V8 must collect before the container limit: the operator's heap cap stays well below it.
    const operator = find(objects, 'Deployment', '-operator').spec?.template?.spec?.containers[0];
    const heapMiB = Number(/--max-old-space-size=(\d+)/.exec(operator?.env?.find((e) => e.name === 'NODE_OPTIONS')?.value ?? '')?.[1]);
    expect(heapMiB).toBeLessThanOrEqual(0.7 * Number(/^(\d+)Mi$/.exec(operator?.resources?.limits?.['memory'] ?? '')?.[1]));
    const policy = find(objects, 'NetworkPolicy', '-agent');
    expect(policy.spec?.podSelector?.matchLabels).toEqual(find(objects, 'DaemonSet', '-agent').spec?.template?.metadata?.labels);
    expect(policy.spec?.ingress?.[0]?.from?.[0]?.podSelector?.matchLabels).toEqual(
      find(objects, 'Deployment', '-operator').spec?.template?.metadata?.labels,
    );
  });

  it(
    'loads the host driver and reads /dev/kmsg by default; the demo values swap in the fake NVML library and a kernel-log file, ' +
      'read-only',
    async () => {
      type AgentPod = { containers: Container[]; volumes?: { name: string; hostPath?: { path: string; type?: string } }[] };
      const agentPod = (objects: Rendered[]): AgentPod => find(objects, 'DaemonSet', '-agent').spec?.template?.spec as unknown as AgentPod;
      const production = agentPod(await render('gpudiag', 'gpu-ops'));
      const prodAgent = production.containers[0];
      expect(prodAgent?.args?.filter((a) => /^--(nvml-library|nvml-no-fallback|kmsg-path)/.test(a))).toEqual([]);
      expect(prodAgent?.env?.map((e) => e.name)).not.toContain('GPUDIAG_FAKE_NVML_STATE');
      expect(production.volumes?.map((v) => [v.name, v.hostPath?.path, v.hostPath?.type])).toEqual([
        ['kmsg', '/dev/kmsg', 'CharDevice'],
        ['state', '/var/lib/gpudiag', 'DirectoryOrCreate'],
        ['pod-resources', '/var/lib/kubelet/pod-resources', 'DirectoryOrCreate'],
        ['host-proc', '/proc', 'Directory'],
      ]);

      const demo = agentPod(
        await render(
          'gpudiag',
          'gpu-ops',
          'agent.demo.fakeNvml.hostDir=/srv/gpudiag/fake-nvml',
          'agent.demo.kmsgHostPath=/srv/gpudiag/kmsg',
        ),
      );
      const demoAgent = demo.containers[0];
      expect(arg(demoAgent, '--nvml-library')).toBe('/opt/gpudiag/fake-nvml/libnvidia-ml.so.1');
      expect(demoAgent?.args).toContain('--nvml-no-fallback');
      expect(arg(demoAgent, '--kmsg-path')).toBe('/var/run/gpudiag/kmsg');
      expect(demoAgent?.env?.find((e) => e.name === 'GPUDIAG_FAKE_NVML_STATE')?.value).toBe('/opt/gpudiag/fake-nvml/state.txt');
      expect(demoAgent?.volumeMounts?.filter((m) => m.name !== 'state').map((m) => [m.name, m.mountPath, m.readOnly])).toEqual([
        ['kmsg', '/var/run/gpudiag/kmsg', true],
        ['pod-resources', '/var/lib/kubelet/pod-resources', true],
        ['host-proc', '/host/proc', true],
        ['fake-nvml', '/opt/gpudiag/fake-nvml', true],
      ]);
      expect(demo.volumes?.map((v) => [v.name, v.hostPath?.path, v.hostPath?.type])).toEqual([
        ['kmsg', '/srv/gpudiag/kmsg', 'File'],
        ['state', '/var/lib/gpudiag', 'DirectoryOrCreate'],
        ['pod-resources', '/var/lib/kubelet/pod-resources', 'DirectoryOrCreate'],
        ['host-proc', '/proc', 'Directory'],
        ['fake-nvml', '/srv/gpudiag/fake-nvml', 'Directory'],
      ]);
    },
  );

  it(
    "mounts the kubelet's pod-resources directory and the host's /proc read-only " + 'where the agent\'s flags look; "" turns each off',
    async () => {
      type AgentPod = { containers: Container[]; volumes?: { name: string; hostPath?: { path: string; type?: string } }[] };
      const agentPod = (objects: Rendered[]): AgentPod => find(objects, 'DaemonSet', '-agent').spec?.template?.spec as unknown as AgentPod;
      const mounts = (pod: AgentPod): (string | boolean | undefined)[][] =>
        (pod.containers[0]?.volumeMounts ?? [])
          .filter((m) => m.name === 'pod-resources' || m.name === 'host-proc')
          .map((m) => [m.name, m.mountPath, m.readOnly]);

      const byDefault = agentPod(await render('gpudiag', 'gpu-ops'));
      const agent = byDefault.containers[0];
      expect(mounts(byDefault)).toEqual([
        ['pod-resources', '/var/lib/kubelet/pod-resources', true],
        ['host-proc', '/host/proc', true],
      ]);
      // The socket flag points into the mounted directory, the proc root at the mounted /proc.
      const socket = arg(agent, '--pod-resources-socket');
      expect(path.dirname(socket)).toBe(agent?.volumeMounts?.find((m) => m.name === 'pod-resources')?.mountPath);
      expect(path.basename(socket)).toBe('kubelet.sock');
      expect(arg(agent, '--proc-root')).toBe('/host/proc');

      // A kubelet with another --root-dir: the host path moves, the agent's flags stay.
      const moved = agentPod(await render('gpudiag', 'gpu-ops', 'agent.podResourcesHostPath=/var/lib/k0s/kubelet/pod-resources'));
      expect(moved.volumes?.find((v) => v.name === 'pod-resources')?.hostPath?.path).toBe('/var/lib/k0s/kubelet/pod-resources');
      expect(arg(moved.containers[0], '--pod-resources-socket')).toBe(socket);

      const off = agentPod(await render('gpudiag', 'gpu-ops', 'agent.podResourcesHostPath=', 'agent.hostProcPath='));
      expect(mounts(off)).toEqual([]);
      expect(off.volumes?.map((v) => v.name)).toEqual(['kmsg', 'state']);
      expect(off.containers[0]?.args).toEqual(expect.arrayContaining(['--pod-resources-socket=', '--proc-root=']));
    },
  );

  it('keeps each shutdown grace period below the pod termination grace period, and refuses values that do not', async () => {
    const objects = await render('gpudiag', 'gpu-ops');
    for (const [kind, suffix] of [
      ['DaemonSet', '-agent'],
      ['Deployment', '-operator'],
    ] as const) {
      const pod = find(objects, kind, suffix).spec?.template?.spec;
      expect(Number(arg(pod?.containers[0], '--shutdown-grace-seconds'))).toBeLessThan(pod?.terminationGracePeriodSeconds ?? 0);
    }
    await expect(render('gpudiag', 'gpu-ops', 'agent.shutdownGraceSeconds=30')).rejects.toThrow(
      'agent.shutdownGraceSeconds (30) must be below agent.terminationGracePeriodSeconds (30)',
    );
    await expect(render('gpudiag', 'gpu-ops', 'operator.terminationGracePeriodSeconds=10')).rejects.toThrow(
      'operator.shutdownGraceSeconds (20) must be below operator.terminationGracePeriodSeconds (10)',
    );
  });

  it("mounts the operator's tokens with the lifetimes in values, and refuses lifetimes the API server would", async () => {
    const pod = (objects: Rendered[]): PodSpec => find(objects, 'Deployment', '-operator').spec?.template?.spec ?? { containers: [] };
    const tokens = (spec: PodSpec): Record<string, number | undefined> =>
      Object.fromEntries(
        (spec.volumes ?? []).flatMap((v) =>
          (v.projected?.sources ?? []).flatMap((s) => (s.serviceAccountToken ? [[v.name, s.serviceAccountToken.expirationSeconds]] : [])),
        ),
      );
    // by default the agent token lives the 10 minutes the API server allows at least (agents verify it
    // locally, so a deleted pod's token is refused only once it expires), and the API server token is the automounted one
    const byDefault = pod(await render('gpudiag', 'gpu-ops'));
    expect(byDefault.automountServiceAccountToken).toBeUndefined();
    expect(tokens(byDefault)).toEqual({ 'agent-token': 600 });
    expect(tokens(pod(await render('gpudiag', 'gpu-ops', 'operator.agentTokenExpirationSeconds=3600')))).toEqual({ 'agent-token': 3600 });
    const short = pod(
      await render('gpudiag', 'gpu-ops', 'operator.agentTokenExpirationSeconds=600', 'operator.apiTokenExpirationSeconds=600'),
    );
    expect(short.automountServiceAccountToken).toBe(false);
    expect(tokens(short)).toEqual({ 'agent-token': 600, 'api-access': 600 });
    // what the automounted volume holds: the token, the cluster CA and the namespace, where in-cluster clients look
    expect(short.containers[0]?.volumeMounts).toContainEqual({
      name: 'api-access',
      mountPath: '/var/run/secrets/kubernetes.io/serviceaccount',
      readOnly: true,
    });
    expect(short.volumes?.find((v) => v.name === 'api-access')?.projected?.sources.map((s) => Object.keys(s)[0])).toEqual([
      'serviceAccountToken',
      'configMap',
      'downwardAPI',
    ]);
    await expect(render('gpudiag', 'gpu-ops', 'operator.apiTokenExpirationSeconds=599')).rejects.toThrow(
      'operator.apiTokenExpirationSeconds (599) must be a whole number of seconds from 600',
    );
    await expect(render('gpudiag', 'gpu-ops', 'operator.agentTokenExpirationSeconds=1h')).rejects.toThrow(
      'operator.agentTokenExpirationSeconds (1h) must be a whole number of seconds from 600',
    );
  });

  it('sets how agents verify tokens from values (auto by default), and refuses a mode the agent does not have', async () => {
    const agent = (objects: Rendered[]): Container | undefined => find(objects, 'DaemonSet', '-agent').spec?.template?.spec?.containers[0];
    expect(arg(agent(await render('gpudiag', 'gpu-ops')), '--token-verification')).toBe('auto');
    expect(arg(agent(await render('gpudiag', 'gpu-ops', 'agent.tokenVerification=tokenreview')), '--token-verification')).toBe(
      'tokenreview',
    );
    await expect(render('gpudiag', 'gpu-ops', 'agent.tokenVerification=jwt')).rejects.toThrow(
      'agent.tokenVerification (jwt) must be auto, local or tokenreview',
    );
  });

  it("admits Prometheus to the agents' /metrics port, from the peers set in values", async () => {
    const agentPolicy = (objects: Rendered[]): Rendered => find(objects, 'NetworkPolicy', '-agent');
    const byDefault = agentPolicy(await render('gpudiag', 'gpu-ops'));
    expect(byDefault.spec?.ingress?.[1]).toEqual({
      from: [
        {
          namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'monitoring' } },
          podSelector: { matchLabels: { 'app.kubernetes.io/name': 'prometheus' } },
        },
      ],
      ports: [{ protocol: 'TCP', port: 9440 }],
    });
    const custom = agentPolicy(
      await render('gpudiag', 'gpu-ops', 'networkPolicy.prometheus:=[{"namespaceSelector":{"matchLabels":{"team":"obs"}}}]'),
    );
    expect(custom.spec?.ingress?.[1]?.from).toEqual([{ namespaceSelector: { matchLabels: { team: 'obs' } } }]);
    const none = agentPolicy(await render('gpudiag', 'gpu-ops', 'networkPolicy.prometheus:=[]'));
    expect(none.spec?.ingress).toHaveLength(1);
  });

  it('gives the MCP endpoint its own NetworkPolicy: MCP port from the listed clients, probe port from Prometheus', async () => {
    expect((await render('gpudiag', 'gpu-ops')).filter((o) => o.kind === 'NetworkPolicy').map((o) => o.metadata?.name)).toEqual([
      'gpudiag-agent',
    ]);
    const on = await render(
      'gpudiag',
      'gpu-ops',
      'operator.mcp.enabled=true',
      'networkPolicy.mcpClients:=[{"namespaceSelector":{"matchLabels":{"team":"ai"}}}]',
    );
    const policy = find(on, 'NetworkPolicy', '-mcp');
    expect(policy.spec?.podSelector?.matchLabels).toEqual(find(on, 'Deployment', '-operator').spec?.template?.metadata?.labels);
    expect(policy.spec?.ingress?.[0]).toEqual({
      from: [{ namespaceSelector: { matchLabels: { team: 'ai' } } }],
      ports: [{ protocol: 'TCP', port: 8443 }],
    });
    expect(policy.spec?.ingress?.[1]?.ports).toEqual([{ protocol: 'TCP', port: 8081 }]);
  });

  it('exposes the MCP endpoint only when enabled, with the RBAC of config/rbac/operator-mcp.yaml', async () => {
    const off = await render('gpudiag', 'gpu-ops');
    expect(off.filter((o) => (o.metadata?.name ?? '').includes('mcp'))).toEqual([]);
    expect(find(off, 'Deployment', '-operator').spec?.template?.spec?.containers[0]?.args?.some((a) => a.startsWith('--mcp-'))).toBe(false);

    const on = await render('gpudiag', 'gpu-ops', 'operator.mcp.enabled=true');
    const operator = find(on, 'Deployment', '-operator').spec?.template?.spec?.containers[0];
    expect(arg(operator, '--mcp-listen')).toBe('0.0.0.0:8443');
    expect(arg(operator, '--mcp-allowed-hosts').split(',')).toContain('gpudiag-mcp.gpu-ops.svc');
    const service = find(on, 'Service', '-mcp') as Rendered & { spec?: { selector?: Record<string, string> } };
    expect(
      matchesSelector(find(on, 'Deployment', '-operator').spec?.template?.metadata?.labels, { matchLabels: service.spec?.selector ?? {} }),
    ).toBe(true);
    const mcpRbac = (await readManifests([path.join(repoRoot, 'config', 'rbac', 'operator-mcp.yaml')])) as Rendered[];
    expect(find(on, 'ClusterRole', '-operator-mcp').rules).toEqual(find(mcpRbac, 'ClusterRole', 'gpudiag-operator-mcp').rules);
  });

  it('renders manifests the API server accepts (server-side dry run)', async () => {
    const { stdout } = await run(
      helm,
      [
        'template',
        'gpudiag',
        path.join(repoRoot, 'charts', 'gpudiag'),
        '--namespace',
        ns.name,
        '--include-crds',
        '--set',
        'operator.mcp.enabled=true',
      ],
      { maxBuffer: 16 << 20 },
    );
    const res = await kubectl(testCluster().adminKubeconfigPath, ['apply', '--dry-run=server', '-f', '-'], stdout);
    expect(res.stderr).not.toMatch(/error/i);
    expect(res.code).toBe(0);
    expect(res.stdout).toContain('daemonset.apps/gpudiag-agent created (server dry run)');
    expect(res.stdout).toContain('deployment.apps/gpudiag-operator created (server dry run)');
  });
});
