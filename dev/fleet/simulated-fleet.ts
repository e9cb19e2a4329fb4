/**
 * A simulated GPU fleet for `gpudiag dev up --nodes N`, end-to-end tests and benchmarks: Node
 * and agent Pod objects in the API server (with pod IPs and Ready conditions, as a kubelet would
 * report), each backed by a real agent process-local instance listening on its own loopback
 * address (127.1.x.y) with its own copy of the fake NVML library, so faults on one node never
 * leak into another.
 */
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import { Agent } from '../../agent/agent.js';
import type { AgentConfig } from '../../agent/config.js';
import type { TokenAuthenticator } from '../../agent/auth/token-reviewer.js';
import { buildFakeNvml } from '../../agent/fake-nvml/build.js';
import { FakeNvmlLibrary } from '../../agent/fake-nvml/fake-library.js';
import { FakeNvmlController, scenariosDir } from '../../agent/fake-nvml/scenario.js';
import { kubeRequest } from '../../lib/kube/raw-request.js';
import type { Logger } from '../../lib/logger.js';

/** Labels that mark the simulated agent pods (the operator's default agent selector matches them). */
export const AGENT_POD_LABELS = { 'app.kubernetes.io/name': 'gpudiag', 'app.kubernetes.io/component': 'agent' } as const;
/** Labels on every simulated node. */
export const SIMULATED_NODE_LABELS = { 'gpudiag.io/simulated': 'true', 'nvidia.com/gpu.present': 'true', 'gpudiag.io/pool': 'training' } as const;

/** One simulated node. */
export interface FleetNodeSpec {
  name: string;
  /** A scenario in agent/fake-nvml/scenarios/. */
  scenario: string;
  labels?: Record<string, string>;
  /** Give the node a Node object but no agent pod (to exercise NoAgent). */
  withoutAgent?: boolean;
}

/** The default mix: mostly healthy, with the critical and degraded faults SREs meet most. */
const DEFAULT_SCENARIO_CYCLE = ['h100-sxm-8x-healthy', 'gpu-lost-xid79', 'h100-sxm-8x-healthy', 'a100-dbe-remap-pending', 'h100-sxm-8x-healthy', 'thermal-hw-slowdown', 'nvlink-down', 'h100-sxm-8x-healthy', 'mig-enabled', 't4-legacy'];

/** N nodes named gpu-node-1..N: node 1 healthy, node 2 with a lost GPU (XID 79), then a mix. */
export function defaultFleet(count: number): FleetNodeSpec[] {
  return Array.from({ length: count }, (_, i) => ({ name: `gpu-node-${i + 1}`, scenario: DEFAULT_SCENARIO_CYCLE[i % DEFAULT_SCENARIO_CYCLE.length] ?? 'h100-sxm-8x-healthy' }));
}

/** Prefixes node names (tests share one API server, where Node names are cluster-wide). */
export function uniqueFleetNames(prefix: string, nodes: FleetNodeSpec[]): FleetNodeSpec[] {
  return nodes.map((n) => ({ ...n, name: `${prefix}-${n.name}` }));
}

/** The loopback address of the i-th simulated node (0-based): 127.1.0.1, 127.1.0.2, ... */
export function fleetAddress(i: number): string {
  const n = i + 1;
  return `127.1.${Math.floor(n / 256)}.${n % 256}`;
}

/** Options of a simulated fleet. */
export interface FleetOptions {
  kc: KubeConfig;
  /** Namespace of the agent pods. */
  namespace: string;
  nodes: FleetNodeSpec[];
  /** The port every agent listens on (each on its own address, as pods would). */
  port: number;
  logger: Logger;
  /** TokenReview-backed caller check shared by all agents; `none` disables auth (local demos). */
  auth: { authenticator: TokenAuthenticator; allowedCallers: string[] } | 'none';
  onProgress?: (message: string) => void;
}

/** A running simulated node. */
export interface FleetNode {
  spec: FleetNodeSpec;
  address: string;
  agent?: Agent;
  controller?: FakeNvmlController;
}

/** Kernel-log lines a scenario's XID events would have produced, so kmsg and NVML both report them. */
async function kmsgLinesFor(scenario: string): Promise<string[]> {
  const data = JSON.parse(await readFile(path.join(scenariosDir(), `${scenario}.json`), 'utf8')) as {
    gpus?: { pciBusId?: string }[];
    events?: { gpu: number; type: string; data?: number }[];
  };
  const lines: string[] = [];
  let seq = 1;
  for (const e of data.events ?? []) {
    const bus = data.gpus?.[e.gpu]?.pciBusId;
    if (e.type !== 'xid' || bus === undefined || e.data === undefined) continue;
    const kernelBus = bus.replace(/^0000/, '').toLowerCase().replace(/\.\d$/, '');
    lines.push(`4,${seq++},${5_000_000 + seq * 1000},-;NVRM: Xid (PCI:${kernelBus}): ${e.data}, pid=4242, name=python3, simulated fault from scenario ${scenario}`);
  }
  return lines;
}

function now(): string {
  return new Date().toISOString().replace(/\.\d+Z$/, 'Z');
}

/** A fleet of simulated GPU nodes backed by real agents. */
export class SimulatedFleet {
  private constructor(
    readonly nodes: FleetNode[],
    private readonly dir: string,
    private readonly options: FleetOptions,
  ) {}

  /** Creates the Node and Pod objects, starts one agent per node, and marks the pods Ready. */
  static async start(options: FleetOptions): Promise<SimulatedFleet> {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'gpudiag-fleet-'));
    const core = options.kc.makeApiClient(CoreV1Api);
    const library = await buildFakeNvml();
    const fleet = new SimulatedFleet([], dir, options);
    try {
      for (const [i, spec] of options.nodes.entries()) {
        const address = fleetAddress(i);
        await core.createNode({ body: { metadata: { name: spec.name, labels: { ...SIMULATED_NODE_LABELS, ...spec.labels } } } });
        await kubeRequest(options.kc, {
          method: 'PATCH',
          path: `/api/v1/nodes/${spec.name}/status`,
          contentType: 'application/merge-patch+json',
          body: { status: { conditions: [{ type: 'Ready', status: 'True', reason: 'SimulatedKubelet', message: 'simulated by gpudiag dev', lastHeartbeatTime: now(), lastTransitionTime: now() }], capacity: { 'nvidia.com/gpu': '8' }, allocatable: { 'nvidia.com/gpu': '8' } } },
        });
        const node: FleetNode = { spec, address };
        fleet.nodes.push(node);
        if (spec.withoutAgent === true) continue;
        node.controller = new FakeNvmlController({ stateFile: path.join(dir, spec.name, 'state.txt') });
        await mkdir(path.join(dir, spec.name), { recursive: true });
        await node.controller.load(spec.scenario);
        // A private copy of the library gives this node its own fake-GPU state in this process.
        const nodeLibrary = path.join(dir, spec.name, 'libnvidia-ml.so.1');
        await copyFile(library, nodeLibrary);
        FakeNvmlLibrary.open(nodeLibrary).setStatePath(node.controller.stateFile);
        const kmsgFile = path.join(dir, spec.name, 'kmsg');
        await writeFile(kmsgFile, (await kmsgLinesFor(spec.scenario)).map((l) => `${l}\n`).join(''));
        const config: AgentConfig = {
          nodeName: spec.name,
          listenHost: address,
          listenPort: options.port,
          auth: options.auth === 'none' ? 'none' : 'tokenreview',
          allowedCallers: options.auth === 'none' ? [] : options.auth.allowedCallers,
          tokenAudience: 'gpudiag-agent',
          nvmlLibraryPath: nodeLibrary,
          nvmlNoFallback: true,
          nvmlCallTimeoutMs: 2000,
          // Many agents share this process: NVML event waits would each hold one of libuv's
          // pool threads. The scenario's XIDs reach the agent through its kmsg file instead.
          nvmlEvents: false,
          kmsgPath: kmsgFile,
          kmsgPollMs: 500,
          snapshotCacheMs: 1000,
          requestTimeoutMs: 30_000,
          logLevel: 'warn',
        };
        node.agent = await Agent.start(config, {
          logger: options.logger,
          ...(options.auth === 'none' ? {} : { authenticator: options.auth.authenticator }),
        });
        const podName = `gpudiag-agent-${spec.name}`.slice(0, 63).replace(/-+$/, '');
        await core.createNamespacedPod({
          namespace: options.namespace,
          body: {
            metadata: { name: podName, labels: { ...AGENT_POD_LABELS } },
            spec: { nodeName: spec.name, containers: [{ name: 'agent', image: 'gpudiag/agent:dev' }] },
          },
        });
        await kubeRequest(options.kc, {
          method: 'PATCH',
          path: `/api/v1/namespaces/${options.namespace}/pods/${podName}/status`,
          contentType: 'application/merge-patch+json',
          body: {
            status: {
              phase: 'Running',
              podIP: address,
              podIPs: [{ ip: address }],
              hostIP: address,
              conditions: [{ type: 'Ready', status: 'True', lastTransitionTime: now() }],
              containerStatuses: [{ name: 'agent', ready: true, started: true, restartCount: 0, image: 'gpudiag/agent:dev', imageID: '', state: { running: { startedAt: now() } } }],
            },
          },
        });
        options.onProgress?.(`simulated node ${spec.name} (${spec.scenario}) on ${address}:${options.port}`);
      }
      return fleet;
    } catch (err) {
      await fleet.stop();
      throw err;
    }
  }

  /** The simulated node by name. */
  node(name: string): FleetNode {
    const found = this.nodes.find((n) => n.spec.name === name);
    if (found === undefined) throw new Error(`no simulated node ${name}`);
    return found;
  }

  /** Stops every agent and removes the fleet's files (API objects die with the control plane). */
  async stop(): Promise<void> {
    await Promise.all(this.nodes.map(async (n) => {
      await n.agent?.stop();
      await n.controller?.dispose();
    }));
    await rm(this.dir, { recursive: true, force: true });
    this.options.onProgress?.('simulated fleet stopped');
  }
}
