/**
 * A real one-node cluster member on this machine, for `gpudiag dev up --real-node` and the
 * real-node tests: containerd (private root, state and socket), a bridge CNI network on a bridge
 * of its own, kube-controller-manager, kube-scheduler, kube-proxy (iptables) and a kubelet, all
 * against a running ControlPlane started with `realNode`. Pods run for real; `stop()` undoes every
 * change it made to the machine (processes, mounts, links, iptables, cgroups, kernel settings).
 *
 * Order: `NodeNetwork.create()` first (the API server listens on the node's address), then
 * `ControlPlane.start({ realNode: { address: network.nodeIp } })`, then `RealNode.start()`, which
 * owns the network from then on.
 */
import { randomBytes } from 'node:crypto';
import { lstat, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { CoreV1Api } from '@kubernetes/client-node';
import { freePort, SERVICE_CIDR, type ControlPlane } from '../control-plane/control-plane.js';
import { startOrphanWatchdog, startProcess, type ManagedProcess } from '../control-plane/processes.js';
import { ensureRealNodeBinaries, PAUSE_IMAGE, type RealNodeBinaries } from './binaries.js';
import {
  cgroupPids,
  createBridge,
  createCgroupRoot,
  deleteBridge,
  iptablesRestore,
  iptablesSnapshot,
  killAndWait,
  linkExists,
  isGone,
  linkTargetIfPresent,
  listIfPresent,
  pidsWithArgument,
  readSysctls,
  removeCgroupRoot,
  sh,
  TOUCHED_SYSCTLS,
  unmountUnder,
  writeSysctls,
  type IptablesSnapshot,
} from './host.js';

/** The node's name unless told otherwise (dev/real-node/values.yaml selects it for the agent). */
export const REAL_NODE_NAME = 'gpudiag-node';
const NOT_READY_TAINT = 'node.kubernetes.io/not-ready';
/** The test-only bridge: pods hang off it, and its address is the node's (and the API server's). */
export const DEFAULT_BRIDGE = 'gpudiag-br0';
/** The CNI network's name (libcni names its cached results after it). */
const CNI_NETWORK = 'gpudiag';
/** Pod addresses; they exist only on the bridge. */
export const DEFAULT_POD_CIDR = '10.244.0.0/24';
/**
 * A range local to this machine (a `local` route on lo, as 127/8 is) for a simulated fleet beside
 * the real node: pods reach its agents through their gateway, unlike loopback addresses.
 */
export const FLEET_CIDR = '10.245.0.0/16';

/** The i-th simulated agent's address in FLEET_CIDR (0-based): 10.245.0.1, 10.245.0.2, ... */
export function fleetAddressBesideRealNode(i: number): string {
  const n = i + 1;
  return `10.245.${Math.floor(n / 256)}.${n % 256}`;
}
/** Where the kubelet writes its container-log symlinks (fixed in the kubelet). */
const KUBELET_CONTAINER_LOG_LINKS = '/var/log/containers';
/** Where containerd 1.6 puts its shims' sockets, whatever its state directory (fixed in containerd). */
const SHIM_SOCKET_DIR = '/run/containerd/s';
/** Where libcni caches each attachment's result. */
const CNI_RESULTS_DIR = '/var/lib/cni/results';
/**
 * Directories the components create at fixed paths whatever they are told: the shim sockets, the
 * kubelet's log links and device-plugin socket, libcni's result cache (used by containerd). Those
 * that did not exist before the node are removed with it.
 */
export const FIXED_NODE_DIRS = [
  '/run/containerd',
  SHIM_SOCKET_DIR,
  KUBELET_CONTAINER_LOG_LINKS,
  '/var/lib/kubelet',
  '/var/lib/kubelet/device-plugins',
  '/var/lib/cni',
  '/var/lib/cni/results',
] as const;

function firstHost(cidr: string): string {
  const [net] = cidr.split('/');
  const parts = (net ?? '').split('.').map(Number);
  parts[3] = (parts[3] ?? 0) + 1;
  return parts.join('.');
}

async function listOrEmpty(dir: string): Promise<string[]> {
  return ((await listIfPresent(dir)) ?? []).map((e) => e.name);
}

async function exists(p: string): Promise<boolean> {
  try {
    await lstat(p);
    return true;
  } catch (err) {
    if (isGone(err)) return false;
    throw err;
  }
}

/** What the machine looked like before the node touched it; restored on stop. */
interface HostBaseline {
  sysctls: Map<string, string>;
  iptables: IptablesSnapshot;
  ip6tables: IptablesSnapshot;
  shimSockets: Set<string>;
  /** libcni's cached results before the node started (the loopback plugin's too). */
  cniResults: Set<string>;
  createdDirs: string[];
}

/**
 * The node's bridge (its address is the node IP and the pods' gateway) plus what has to hold before
 * anything else starts: bridged traffic through iptables, forwarding on, a rule that keeps pod
 * traffic on the bridge. The baseline it records is what `delete()` restores.
 */
export class NodeNetwork {
  private localRange: string | undefined;

  private constructor(
    readonly bridge: string,
    readonly podCidr: string,
    readonly nodeIp: string,
    readonly baseline: HostBaseline,
  ) {}

  /** Makes FLEET_CIDR local to this machine (for SimulatedFleet's addressOf: fleetAddressBesideRealNode). */
  async addFleetRange(): Promise<void> {
    if (this.localRange !== undefined) return;
    await sh('ip', ['route', 'add', 'local', FLEET_CIDR, 'dev', 'lo', 'table', 'local']);
    this.localRange = FLEET_CIDR;
  }

  static async create(options: { bridge?: string; podCidr?: string } = {}): Promise<NodeNetwork> {
    if (process.getuid?.() !== 0) throw new Error('a real node needs root (bridges, iptables, mounts, cgroups)');
    const bridge = options.bridge ?? DEFAULT_BRIDGE;
    const podCidr = options.podCidr ?? DEFAULT_POD_CIDR;
    if (await linkExists(bridge)) {
      throw new Error(
        `link ${bridge} exists: another real node runs, or one was killed before it could stop (delete it with: ip link delete ${bridge})`,
      );
    }
    const createdDirs: string[] = [];
    for (const d of FIXED_NODE_DIRS) if (!(await exists(d))) createdDirs.push(d);
    const baseline: HostBaseline = {
      sysctls: await readSysctls(TOUCHED_SYSCTLS),
      iptables: await iptablesSnapshot('iptables'),
      ip6tables: await iptablesSnapshot('ip6tables'),
      shimSockets: new Set(await listOrEmpty(SHIM_SOCKET_DIR)),
      cniResults: new Set(await listOrEmpty(CNI_RESULTS_DIR)),
      createdDirs,
    };
    const network = new NodeNetwork(bridge, podCidr, firstHost(podCidr), baseline);
    try {
      await createBridge(bridge, `${network.nodeIp}/${podCidr.split('/')[1] ?? '24'}`);
      await writeSysctls(
        new Map([
          ['net/ipv4/ip_forward', '1'],
          ['net/bridge/bridge-nf-call-iptables', '1'],
        ]),
      );
      // Pod traffic stays on this machine: nothing from the pod range is forwarded off the bridge.
      const chain = 'CNI-GPUDIAG-LOCAL';
      await sh('iptables', ['-N', chain]);
      await sh('iptables', ['-A', chain, '-j', 'DROP']);
      await sh('iptables', ['-I', 'FORWARD', '-s', podCidr, '!', '-o', bridge, '-j', chain]);
    } catch (err) {
      await network.delete();
      throw err;
    }
    return network;
  }

  /** Deletes the bridge with its veths, removes the node's iptables rules and restores the kernel settings. */
  async delete(): Promise<void> {
    const errors: unknown[] = [];
    const attempt = async (step: () => Promise<void>): Promise<void> => step().catch((err: unknown) => void errors.push(err));
    await attempt(() => deleteBridge(this.bridge));
    const range = this.localRange;
    if (range !== undefined)
      await attempt(async () => void (await sh('ip', ['route', 'del', 'local', range, 'dev', 'lo', 'table', 'local'])));
    await attempt(() => iptablesRestore('iptables', this.baseline.iptables));
    await attempt(() => iptablesRestore('ip6tables', this.baseline.ip6tables));
    await attempt(() => writeSysctls(this.baseline.sysctls));
    await attempt(async () => {
      for (const s of await listOrEmpty(SHIM_SOCKET_DIR))
        if (!this.baseline.shimSockets.has(s)) await rm(path.join(SHIM_SOCKET_DIR, s), { force: true });
      // libcni keeps a result per attachment (our bridge network's and the loopback plugin's); the
      // kill-based stop runs no CNI DEL. Ours go whenever they were made; any other that appeared
      // while the node ran is the node's too.
      for (const f of await listOrEmpty(CNI_RESULTS_DIR))
        if (f.startsWith(`${CNI_NETWORK}-`) || !this.baseline.cniResults.has(f)) await rm(path.join(CNI_RESULTS_DIR, f), { force: true });
      for (const d of this.baseline.createdDirs) await rm(d, { recursive: true, force: true });
    });
    if (errors.length > 0) throw new AggregateError(errors, `removing the node network ${this.bridge} left something behind`);
  }
}

/** Options for a real node. */
export interface RealNodeOptions {
  controlPlane: ControlPlane;
  /** Created before the control plane; the node owns it from here on (stop deletes it). */
  network: NodeNetwork;
  /** The Node's name (the kubelet's --hostname-override). */
  name?: string;
  /** Labels the kubelet registers the Node with. */
  labels?: Record<string, string>;
  /** Private directory for the runtime, the kubelet and the CNI state; a fresh one under /tmp when omitted. */
  dir?: string;
  /** Where the components log; `<dir>/logs` when omitted (and then removed with it). */
  logDir?: string;
  /**
   * Leave out kube-controller-manager's node-lifecycle controller: simulated nodes beside the real
   * one send no heartbeats, and it would taint them unreachable and evict their pods.
   */
  withoutNodeLifecycle?: boolean;
  onProgress?: (message: string) => void;
  signal?: AbortSignal;
  /** Give up waiting for the node to be Ready after this long. */
  readyTimeoutMs?: number;
}

/** A running kubelet with its runtime and the cluster's controllers. */
export class RealNode {
  private readonly processes: ManagedProcess[] = [];
  private stopWatchdog: () => void = () => undefined;
  private stopped = false;

  private constructor(
    readonly name: string,
    readonly network: NodeNetwork,
    readonly dir: string,
    readonly logDir: string,
    readonly containerdSocket: string,
    private readonly cgroupRoot: string,
    private readonly binaries: RealNodeBinaries,
    private readonly progress: (message: string) => void,
  ) {}

  /** Starts containerd, the controllers, kube-proxy and the kubelet; resolves once the Node is Ready. */
  static async start(options: RealNodeOptions): Promise<RealNode> {
    const progress = options.onProgress ?? ((): void => undefined);
    const signal = options.signal ?? new AbortController().signal;
    let binaries: RealNodeBinaries;
    try {
      binaries = await ensureRealNodeBinaries(progress);
    } catch (err) {
      await options.network.delete();
      throw err;
    }
    const dir = options.dir ?? (await mkdtemp(path.join(os.tmpdir(), 'gpudiag-node-')));
    const logDir = options.logDir ?? path.join(dir, 'logs');
    const name = options.name ?? REAL_NODE_NAME;
    const cgroupRoot = `gpudiag-node-${randomBytes(4).toString('hex')}`;
    const node = new RealNode(
      name,
      options.network,
      dir,
      logDir,
      path.join(dir, 'containerd', 'containerd.sock'),
      cgroupRoot,
      binaries,
      progress,
    );
    try {
      await node.startAll(options, progress, signal);
      return node;
    } catch (err) {
      await node.stop().catch((stopErr: unknown) => progress(`cleanup after a failed start: ${(stopErr as Error).message}`));
      throw err;
    }
  }

  private async startAll(options: RealNodeOptions, progress: (m: string) => void, signal: AbortSignal): Promise<void> {
    const { controlPlane, network } = options;
    const cp = controlPlane.endpoint;
    for (const d of ['containerd', 'cni/net.d', 'cni/ipam', 'kubelet', 'pod-logs', 'volume-plugins', 'kubeconfigs'])
      await mkdir(path.join(this.dir, d), { recursive: true });
    await mkdir(this.logDir, { recursive: true });
    await createCgroupRoot(this.cgroupRoot);
    const start = async (name: string, command: string, args: string[]): Promise<void> => {
      signal.throwIfAborted();
      progress(`starting ${name}`);
      this.processes.push(await startProcess(name, command, args, path.join(this.logDir, `${name}.log`)));
      this.stopWatchdog();
      this.stopWatchdog = startOrphanWatchdog(
        process.pid,
        this.processes.map((p) => p.pid),
      );
    };
    const kubeconfig = async (file: string, user: string, groups: string[] = []): Promise<string> => {
      const kc = await controlPlane.kubeConfigFor({ user, groups });
      const p = path.join(this.dir, 'kubeconfigs', `${file}.kubeconfig`);
      await writeFile(p, kc.exportConfig(), { mode: 0o600 });
      return p;
    };

    // containerd: everything private but the shim sockets (containerd 1.6 fixes those in /run/containerd/s).
    await writeFile(
      path.join(this.dir, 'cni', 'net.d', '10-gpudiag.conflist'),
      JSON.stringify(cniConfig(network, path.join(this.dir, 'cni', 'ipam')), null, 2),
    );
    const containerdConfig = path.join(this.dir, 'containerd', 'config.toml');
    await writeFile(containerdConfig, containerdToml(this.dir, this.containerdSocket));
    await start('containerd', 'containerd', ['--config', containerdConfig]);
    await this.waitFor('containerd', async () => (await this.ctr(['version'])) !== '', 30_000, signal);
    await this.importImages([this.binaries.pauseArchive]);

    await start('kube-controller-manager', this.binaries.kubeControllerManager, [
      `--kubeconfig=${await kubeconfig('kube-controller-manager', 'system:kube-controller-manager')}`,
      '--bind-address=127.0.0.1',
      `--secure-port=${String(await freePort())}`,
      '--leader-elect=false',
      '--use-service-account-credentials',
      `--service-account-private-key-file=${cp.certs.serviceAccountKey}`,
      `--root-ca-file=${cp.certs.caCert}`,
      `--cluster-signing-cert-file=${cp.certs.caCert}`,
      `--cluster-signing-key-file=${cp.certs.caKey}`,
      `--cluster-cidr=${network.podCidr}`,
      `--service-cluster-ip-range=${SERVICE_CIDR}`,
      '--allocate-node-cidrs=false',
      `--flex-volume-plugin-dir=${path.join(this.dir, 'volume-plugins')}`,
      `--controllers=${options.withoutNodeLifecycle === true ? '*,-node-lifecycle-controller' : '*'}`,
      '--v=1',
    ]);
    await start('kube-scheduler', this.binaries.kubeScheduler, [
      `--kubeconfig=${await kubeconfig('kube-scheduler', 'system:kube-scheduler')}`,
      '--bind-address=127.0.0.1',
      `--secure-port=${String(await freePort())}`,
      '--leader-elect=false',
      '--v=1',
    ]);
    await start('kube-proxy', this.binaries.kubeProxy, [
      `--kubeconfig=${await kubeconfig('kube-proxy', 'system:kube-proxy')}`,
      `--hostname-override=${this.name}`,
      '--proxy-mode=iptables',
      `--cluster-cidr=${network.podCidr}`,
      `--bind-address=${network.nodeIp}`,
      `--healthz-bind-address=127.0.0.1:${await freePort()}`,
      `--metrics-bind-address=127.0.0.1:${await freePort()}`,
      // Leave the machine's conntrack and route_localnet settings as they are.
      '--conntrack-max-per-core=0',
      '--conntrack-tcp-timeout-established=0',
      '--conntrack-tcp-timeout-close-wait=0',
      '--iptables-localhost-nodeports=false',
      `--nodeport-addresses=${network.nodeIp}/32`,
      '--v=1',
    ]);

    const kubeletConfig = path.join(this.dir, 'kubelet', 'config.yaml');
    await writeFile(
      kubeletConfig,
      JSON.stringify(
        kubeletConfiguration({
          address: network.nodeIp,
          port: await freePort(),
          healthzPort: await freePort(),
          caFile: cp.certs.caCert,
          socket: this.containerdSocket,
          cgroupRoot: `/${this.cgroupRoot}`,
          podLogsDir: path.join(this.dir, 'pod-logs'),
          volumePluginDir: path.join(this.dir, 'volume-plugins'),
        }),
        null,
        2,
      ),
    );
    const labels = Object.entries(options.labels ?? {})
      .map(([k, v]) => `${k}=${v}`)
      .join(',');
    await start('kubelet', this.binaries.kubelet, [
      `--config=${kubeletConfig}`,
      `--kubeconfig=${await kubeconfig('kubelet', `system:node:${this.name}`, ['system:nodes'])}`,
      `--root-dir=${this.kubeletRoot}`,
      `--cert-dir=${path.join(this.dir, 'kubelet', 'pki')}`,
      `--hostname-override=${this.name}`,
      `--node-ip=${network.nodeIp}`,
      ...(labels === '' ? [] : ['--node-labels', labels]),
      '--v=1',
    ]);
    const core = controlPlane.adminKubeConfig().makeApiClient(CoreV1Api);
    progress(`waiting for node ${this.name} to be Ready`);
    await this.waitFor(
      `node ${this.name} Ready`,
      async () => {
        const n = await core.readNode({ name: this.name });
        return n.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') === true;
      },
      options.readyTimeoutMs ?? 120_000,
      signal,
    );
    if (options.withoutNodeLifecycle === true) {
      // The kubelet registers with the not-ready taint and leaves its removal to the node-lifecycle
      // controller, which does not run here: do its one step for the real node.
      await this.waitFor(
        `node ${this.name} untainted`,
        async () => {
          const n = await core.readNode({ name: this.name });
          const taints = n.spec?.taints ?? [];
          if (!taints.some((t) => t.key === NOT_READY_TAINT)) return true;
          await core.replaceNode({
            name: this.name,
            body: { ...n, spec: { ...n.spec, taints: taints.filter((t) => t.key !== NOT_READY_TAINT) } },
          });
          return false;
        },
        30_000,
        signal,
      );
    }
    // Pods need their namespace's ServiceAccount, which kube-controller-manager creates.
    await this.waitFor(
      'ServiceAccount default/default',
      async () => (await core.readNamespacedServiceAccount({ namespace: 'default', name: 'default' })).metadata !== undefined,
      60_000,
      signal,
    );
    progress(`node ${this.name} Ready at ${network.nodeIp}`);
  }

  /** Polls `check` until it says yes; a check that throws counts as "not yet" (its last error is reported on timeout). */
  private async waitFor(what: string, check: () => Promise<boolean>, timeoutMs: number, signal: AbortSignal): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let exited: string | undefined;
    let lastError = '';
    for (const p of this.processes) void p.exited.then((how) => (exited ??= `${p.name} exited (${how}); see ${p.logFile}`));
    while (Date.now() < deadline) {
      signal.throwIfAborted();
      if (exited !== undefined && !this.stopped) throw new Error(`${exited} (while waiting for ${what})`);
      try {
        if (await check()) return;
      } catch (err) {
        lastError = `; last error: ${(err as Error).message}`;
      }
      await new Promise((r) => setTimeout(r, 250));
    }
    throw new Error(`${what}: not after ${timeoutMs} ms${lastError}; logs in ${this.logDir}`);
  }

  /** A directory for a pod's hostPath that goes with the node (so a chart's host state is not left on the machine). */
  hostPathFor(name: string): string {
    return path.join(this.dir, 'host-paths', name);
  }

  private get kubeletRoot(): string {
    return path.join(this.dir, 'kubelet', 'root');
  }

  /**
   * Where this node's kubelet serves its pod-resources API (`<root-dir>/pod-resources/kubelet.sock`), for the chart's
   * `agent.podResourcesHostPath`.
   */
  get podResourcesDir(): string {
    return path.join(this.kubeletRoot, 'pod-resources');
  }

  /** A file of a pod's projected volume as the kubelet writes it on the host (e.g. a ServiceAccount token it rotates). */
  projectedVolumeFile(podUid: string, volume: string, file: string): string {
    return path.join(this.kubeletRoot, 'pods', podUid, 'volumes', 'kubernetes.io~projected', volume, file);
  }

  /** Runs `ctr` against this node's containerd, in the CRI's namespace. */
  ctr(args: readonly string[]): Promise<string> {
    return sh('ctr', ['--address', this.containerdSocket, '--namespace', 'k8s.io', ...args]);
  }

  /** Loads OCI archives (e.g. dev/images/build.sh's) into the node's image store. */
  async importImages(archives: readonly string[]): Promise<void> {
    for (const archive of archives) await this.ctr(['images', 'import', '--no-unpack=false', archive]);
  }

  /** The PIDs of the node's own processes (containers and shims not included). */
  get pids(): number[] {
    return this.processes.map((p) => p.pid);
  }

  /** Stops the pods' containers and shims, containerd and the kube processes, and undoes every change to the machine. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    const errors: unknown[] = [];
    const attempt = async (what: string, step: () => Promise<void>): Promise<void> => {
      const started = Date.now();
      try {
        await step();
      } catch (err) {
        errors.push(new Error(`${what}: ${(err as Error).message}`, { cause: err }));
      }
      this.progress(`${what}: ${Date.now() - started} ms`);
    };
    // The kubelet first, so it restarts nothing; then the controllers.
    for (const name of ['kubelet', 'kube-proxy', 'kube-scheduler', 'kube-controller-manager']) {
      const p = this.processes.find((x) => x.name === name);
      if (p !== undefined) await attempt(`stopping ${name}`, () => p.stop(10_000));
    }
    // Every container process lives in the kubelet's cgroup tree; the shims do not, they are found by the socket they serve.
    await attempt('killing containers', async () => killAndWait(await cgroupPids(this.cgroupRoot)));
    await attempt('killing shims', async () => killAndWait(await pidsWithArgument(this.containerdSocket)));
    const containerd = this.processes.find((x) => x.name === 'containerd');
    if (containerd !== undefined) await attempt('stopping containerd', () => containerd.stop(10_000));
    this.stopWatchdog();
    // Rootfs overlays, shm, network namespaces (under containerd's state) and volume tmpfs (under the kubelet's root).
    await attempt('unmounting', () => unmountUnder(this.dir));
    await attempt('removing cgroups', () => removeCgroupRoot(this.cgroupRoot));
    await attempt('removing the network', () => this.network.delete());
    await attempt('removing log links', async () => {
      for (const entry of await listOrEmpty(KUBELET_CONTAINER_LOG_LINKS)) {
        const link = path.join(KUBELET_CONTAINER_LOG_LINKS, entry);
        const target = (await linkTargetIfPresent(link)) ?? '';
        if (target.startsWith(`${this.dir}/`)) await rm(link, { force: true });
      }
    });
    // A logDir outside the node's directory (dev up keeps its logs) survives.
    await attempt('removing the node directory', () => rm(this.dir, { recursive: true, force: true }));
    if (errors.length > 0)
      throw new AggregateError(
        errors,
        `stopping node ${this.name} left something behind: ${errors.map((e) => (e as Error).message).join('; ')}`,
      );
  }
}

/** A bridge network on the node's bridge, host-local addresses from the pod range, state in the node's directory. */
function cniConfig(network: NodeNetwork, ipamDir: string): object {
  return {
    cniVersion: '0.4.0',
    name: CNI_NETWORK,
    plugins: [
      {
        type: 'bridge',
        bridge: network.bridge,
        isGateway: true,
        // No masquerade: pod traffic has nowhere to go but the bridge (NodeNetwork drops the rest).
        ipMasq: false,
        hairpinMode: true,
        ipam: {
          type: 'host-local',
          ranges: [[{ subnet: network.podCidr, gateway: network.nodeIp }]],
          routes: [{ dst: '0.0.0.0/0' }],
          dataDir: ipamDir,
        },
      },
    ],
  };
}

/** containerd 1.6 (config v2) with every path in the node's directory. */
function containerdToml(dir: string, socket: string): string {
  const q = (s: string): string => JSON.stringify(s);
  const cri = '[plugins."io.containerd.grpc.v1.cri"]';
  return `version = 2
root = ${q(path.join(dir, 'containerd', 'root'))}
state = ${q(path.join(dir, 'containerd', 'state'))}
disabled_plugins = [
  "io.containerd.internal.v1.tracing",
  "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.devmapper",
]

[grpc]
  address = ${q(socket)}

[ttrpc]
  address = ${q(`${socket}.ttrpc`)}

[debug]
  address = ""

[metrics]
  address = ""

[plugins."io.containerd.internal.v1.opt"]
  path = ${q(path.join(dir, 'containerd', 'opt'))}

${cri}
  sandbox_image = ${q(PAUSE_IMAGE)}
  # This VM refuses negative oom_score_adj (the kubelet asks -998 for sandboxes); without this every
  # sandbox fails with "can't get final child's PID from pipe: EOF".
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  enable_selinux = false
  disable_apparmor = true

${cri.slice(0, -1)}.containerd]
  snapshotter = "overlayfs"
  default_runtime_name = "runc"

${cri.slice(0, -1)}.containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"

${cri.slice(0, -1)}.containerd.runtimes.runc.options]
  SystemdCgroup = false
  Root = ${q(path.join(dir, 'containerd', 'runc'))}

${cri.slice(0, -1)}.cni]
  bin_dir = "/usr/lib/cni"
  conf_dir = ${q(path.join(dir, 'cni', 'net.d'))}
`;
}

interface KubeletConfigInputs {
  address: string;
  port: number;
  healthzPort: number;
  caFile: string;
  socket: string;
  cgroupRoot: string;
  podLogsDir: string;
  volumePluginDir: string;
}

/** The kubelet's configuration: cgroupfs under a cgroup root of its own, webhook authn/authz, no image GC or disk eviction. */
function kubeletConfiguration(c: KubeletConfigInputs): object {
  return {
    apiVersion: 'kubelet.config.k8s.io/v1beta1',
    kind: 'KubeletConfiguration',
    address: c.address,
    port: c.port,
    readOnlyPort: 0,
    healthzBindAddress: '127.0.0.1',
    healthzPort: c.healthzPort,
    containerRuntimeEndpoint: `unix://${c.socket}`,
    cgroupDriver: 'cgroupfs',
    cgroupRoot: c.cgroupRoot,
    failSwapOn: false,
    // The API server calls the kubelet (logs, exec) with its client certificate; others are refused.
    authentication: { anonymous: { enabled: false }, webhook: { enabled: true }, x509: { clientCAFile: c.caFile } },
    authorization: { mode: 'Webhook' },
    podLogsDir: c.podLogsDir,
    volumePluginDir: c.volumePluginDir,
    // A development machine's disk is not the node's to manage: no image GC, eviction only near full.
    imageGCHighThresholdPercent: 100,
    imageGCLowThresholdPercent: 99,
    evictionHard: { 'memory.available': '100Mi', 'nodefs.available': '1%', 'imagefs.available': '1%', 'nodefs.inodesFree': '1%' },
    serializeImagePulls: false,
    resolvConf: '/etc/resolv.conf',
    staticPodPath: '',
    syncFrequency: '10s',
    fileCheckFrequency: '10s',
    nodeStatusUpdateFrequency: '5s',
  };
}
