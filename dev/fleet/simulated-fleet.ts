/**
 * A simulated GPU fleet for `gpudiag dev up --nodes N`, end-to-end tests and benchmarks: Node
 * and agent Pod objects in the API server (with pod IPs and Ready conditions, as a kubelet would
 * report, and the GPUs NVIDIA's device plugin would advertise), each backed by a real agent
 * process-local instance listening on its own loopback address (127.1.x.y) with its own copy of
 * the fake NVML library, so faults on one node never leak into another. Large fleets (benchmarks)
 * may share one library copy per scenario instead (`sharedLibrary`), trading per-node fault
 * injection for one dlopen per scenario.
 */
import { copyFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { KubeConfig } from '@kubernetes/client-node';
import * as koffi from 'koffi';
import { Agent } from '../../agent/agent.js';
import type { AgentConfig } from '../../agent/config.js';
import type { TokenAuthenticator } from '../../agent/auth/token-reviewer.js';
import { buildFakeNvml } from '../../agent/fake-nvml/build.js';
import { FakeNvmlLibrary } from '../../agent/fake-nvml/fake-library.js';
import {
  FakeNvmlController,
  fakeNvmlEraOf,
  loadScenario,
  scenarioKmsgRecords,
  type FakeNvmlScenario,
} from '../../agent/fake-nvml/scenario.js';
import type { Logger } from '../../lib/logger.js';
import { SCENARIO_LABEL, SIMULATED_NODE_LABELS, createAgentPod, createSimulatedNode } from './fleet-objects.js';
import { GPU_COUNT_LABEL, GPU_RESOURCE } from '../../operator/scoring/advertised-gpus.js';

export { AGENT_POD_LABELS, SCENARIO_LABEL, SIMULATED_NODE_LABELS } from './fleet-objects.js';

/** One simulated node. */
export interface FleetNodeSpec {
  name: string;
  /** A scenario in agent/fake-nvml/scenarios/. */
  scenario: string;
  labels?: Record<string, string>;
  /** Give the node a Node object but no agent pod (to exercise NoAgent). */
  withoutAgent?: boolean;
  /** A kubelet pod-resources socket for the node's agent (tests serve one); default none. */
  podResourcesSocket?: string;
}

/**
 * The default mix: the first ten mostly healthy, with the critical and degraded faults SREs meet
 * most; from node 11 on, the kernel-log scenarios (real XID, SXid and bus-loss lines).
 */
export const DEFAULT_SCENARIO_CYCLE: readonly string[] = Object.freeze([
  'h100-sxm-8x-healthy',
  'gpu-lost-xid79',
  'h100-sxm-8x-healthy',
  'a100-dbe-remap-pending',
  'h100-sxm-8x-healthy',
  'thermal-hw-slowdown',
  'nvlink-down',
  'h100-sxm-8x-healthy',
  'mig-enabled',
  't4-legacy',
  'nvlink5-storm',
  'xid154-recovered',
  'xid45-after-149',
  'xid74-ignorable',
  'bus-loss-no-xid',
  'nvswitch-sxid',
]);

/** koffi's ceiling on queued async native calls per process (its default is 256; this is its maximum). */
const KOFFI_MAX_ASYNC_CALLS = 4096;
/** NVML calls one agent may have queued at once: its collector reads GPUs in parallel (up to 8 here), each GPU's fields in order. */
const NVML_CALLS_PER_AGENT = 8;

/**
 * Every agent of a fleet shares this process's koffi, which refuses async calls beyond
 * max_async_calls (default 256): a fleet-wide diagnostic over a few dozen nodes would make NVML
 * reads fail with UNKNOWN (999). koffi takes a new ceiling only before the process loads its first
 * native library, so the first fleet of a process raises it to the maximum, for itself and for
 * any larger fleet started later. The memory is only used while calls are queued.
 */
function raiseNativeCallCeiling(agents: number, logger: Logger): void {
  if ((koffi.config().max_async_calls ?? 0) >= KOFFI_MAX_ASYNC_CALLS) return;
  try {
    koffi.config({ max_async_calls: KOFFI_MAX_ASYNC_CALLS });
  } catch (err) {
    const ceiling = koffi.config().max_async_calls ?? 0;
    if (agents * NVML_CALLS_PER_AGENT <= ceiling) return;
    logger.warn(
      'cannot raise koffi max_async_calls for the simulated fleet: a native library was loaded first; NVML reads may fail with ' +
        'UNKNOWN (999) when many agents collect at once',
      {
        agents,
        maxAsyncCalls: ceiling,
        error: err instanceof Error ? err.message : String(err),
      },
    );
  }
}

/**
 * N nodes named gpu-node-1..N cycling through `scenarios`; by default node 1 healthy, node 2 with
 * a lost GPU (XID 79), then a mix (DEFAULT_SCENARIO_CYCLE).
 */
export function defaultFleet(count: number, scenarios: readonly string[] = DEFAULT_SCENARIO_CYCLE): FleetNodeSpec[] {
  const cycle = scenarios.length > 0 ? scenarios : DEFAULT_SCENARIO_CYCLE;
  return Array.from({ length: count }, (_, i) => ({
    name: `gpu-node-${i + 1}`,
    scenario: cycle[i % cycle.length] ?? 'h100-sxm-8x-healthy',
  }));
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
  /**
   * Nodes with the same scenario share one copy of the fake library and one state file (one
   * dlopen per scenario instead of one per node; for 1,000-node benchmarks). Their `controller`
   * is then shared too: a fault injected through it reaches every node of that scenario.
   * Default false: every node has a private copy and private state.
   */
  sharedLibrary?: boolean;
  /** How long each agent reuses a snapshot (default 1000 ms). Benchmarks pre-collect with a long cache. */
  snapshotCacheMs?: number;
  /**
   * The i-th node's address (default fleetAddress: 127.1.x.y). Beside a real node the agents take
   * addresses in a range local to this machine that pods can reach (RealNode's fleet range).
   */
  addressOf?: (index: number) => string;
  /**
   * Labels added to the agent pods (e.g. the Helm release's instance label its operator selects
   * on). Pods given labels are controlled by their Node (an ownerReference), so a DaemonSet whose
   * selector matches them does not adopt them and delete them from nodes it does not run on.
   */
  podLabels?: Record<string, string>;
  onProgress?: (message: string) => void;
}

/** A running simulated node. */
export interface FleetNode {
  spec: FleetNodeSpec;
  address: string;
  agent?: Agent;
  /** The node's fake NVML state (shared by every node of its scenario with `sharedLibrary`). */
  controller?: FakeNvmlController;
}

/** One loaded copy of the fake library and the state it reads. */
interface LibraryCopy {
  path: string;
  controller: FakeNvmlController;
}

/** How far back the stand-in kernel log starts: inside any look-back, however long the host has been up. */
const KMSG_AGE_US = 60_000_000n;
/** Between consecutive records: far above the wall clock's 1 ms resolution, so their order survives it. */
const KMSG_STEP_US = 10_000n;

/**
 * The node's kernel log: the lines its scenario's XID events would have produced, then the
 * scenario's own `kmsg` text, as /dev/kmsg records. kmsg timestamps are microseconds of
 * CLOCK_MONOTONIC (since boot); the records start a minute ago.
 */
export async function kmsgLinesFor(scenario: string): Promise<string[]> {
  return scenarioKmsgRecords(await loadScenario(scenario), {
    startUs: process.hrtime.bigint() / 1000n - KMSG_AGE_US,
    stepUs: KMSG_STEP_US,
  });
}

/** What NVIDIA's device plugin and GPU feature discovery would put on the Node: the scenario's GPU count, or its `advertisedGpus`. */
export function deviceAdvertisement(scenario: FakeNvmlScenario): { labels: Record<string, string>; resources: Record<string, string> } {
  const gpus = scenario.advertisedGpus ?? scenario.gpus.length;
  if (gpus === 0) return { labels: {}, resources: {} };
  return { labels: { [GPU_COUNT_LABEL]: String(gpus) }, resources: { [GPU_RESOURCE]: String(gpus) } };
}

/** Where and how one simulated agent runs. */
export interface SimulatedAgentSpec {
  nodeName: string;
  address: string;
  port: number;
  /** Callers allowed through TokenReview-style auth; undefined turns auth off. */
  allowedCallers: string[] | undefined;
  nvmlLibraryPath: string;
  kmsgPath: string;
  podResourcesSocket: string;
  snapshotCacheMs: number;
}

/** The configuration of an agent that shares its process with many others (NVML on the libuv pool, no event waits). */
export function simulatedAgentConfig(spec: SimulatedAgentSpec): AgentConfig {
  return {
    nodeName: spec.nodeName,
    listenHost: spec.address,
    listenPort: spec.port,
    auth: spec.allowedCallers === undefined ? 'none' : 'tokenreview',
    allowedCallers: spec.allowedCallers ?? [],
    tokenAudience: 'gpudiag-agent',
    nvmlLibraryPath: spec.nvmlLibraryPath,
    nvmlNoFallback: true,
    nvmlCallTimeoutMs: 2000,
    // Hundreds of agents share this process: NVML stays on its libuv pool (no threads per agent).
    nvmlThreads: false,
    // Many agents share this process: NVML event waits would each hold one of libuv's
    // pool threads. The scenario's XIDs reach the agent through its kmsg file instead.
    nvmlEvents: false,
    kmsgPath: spec.kmsgPath,
    kmsgPollMs: 500,
    // Simulated nodes have no kubelet, and the scenarios' pids are not this machine's processes.
    podResourcesSocket: spec.podResourcesSocket,
    procRoot: '',
    snapshotCacheMs: spec.snapshotCacheMs,
    requestTimeoutMs: 30_000,
    shutdownGraceMs: 5_000,
    logLevel: 'warn',
  };
}

/** A fleet of simulated GPU nodes backed by real agents. */
export class SimulatedFleet {
  private constructor(
    readonly nodes: FleetNode[],
    private readonly dir: string,
    private readonly options: FleetOptions,
    /** Library copies by scenario (sharedLibrary) or by node name. */
    private readonly libraries = new Map<string, LibraryCopy>(),
  ) {}

  /** The library copy for `spec` (its scenario's driver-era build): a private one per node, or one per scenario when shared. */
  private async libraryFor(spec: FleetNodeSpec): Promise<LibraryCopy> {
    const shared = this.options.sharedLibrary === true;
    const key = shared ? `scenario:${spec.scenario}` : `node:${spec.name}`;
    const existing = this.libraries.get(key);
    if (existing !== undefined) return existing;
    const copyDir = path.join(this.dir, shared ? `scenario-${spec.scenario}` : spec.name);
    await mkdir(copyDir, { recursive: true });
    const controller = new FakeNvmlController({ stateFile: path.join(copyDir, 'state.txt') });
    const copy: LibraryCopy = { path: path.join(copyDir, 'libnvidia-ml.so.1'), controller };
    this.libraries.set(key, copy);
    await controller.load(spec.scenario);
    // A copy of the library at its own path is a separate dlopen, hence its own fake-GPU state
    // in this process.
    await copyFile(await buildFakeNvml({ era: fakeNvmlEraOf(await loadScenario(spec.scenario)) }), copy.path);
    FakeNvmlLibrary.open(copy.path).setStatePath(controller.stateFile);
    return copy;
  }

  /** Creates the Node and Pod objects, starts one agent per node, and marks the pods Ready. */
  static async start(options: FleetOptions): Promise<SimulatedFleet> {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'gpudiag-fleet-'));
    raiseNativeCallCeiling(options.nodes.filter((n) => n.withoutAgent !== true).length, options.logger);
    const fleet = new SimulatedFleet([], dir, options);
    try {
      for (const [i, spec] of options.nodes.entries()) {
        const address = (options.addressOf ?? fleetAddress)(i);
        const advertised = deviceAdvertisement(await loadScenario(spec.scenario));
        const labels = { ...SIMULATED_NODE_LABELS, [SCENARIO_LABEL]: spec.scenario, ...advertised.labels, ...spec.labels };
        const nodeUid = await createSimulatedNode(options.kc, spec.name, labels, advertised);
        const node: FleetNode = { spec, address };
        fleet.nodes.push(node);
        if (spec.withoutAgent === true) continue;
        await mkdir(path.join(dir, spec.name), { recursive: true });
        const copy = await fleet.libraryFor(spec);
        node.controller = copy.controller;
        const nodeLibrary = copy.path;
        const kmsgFile = path.join(dir, spec.name, 'kmsg');
        await writeFile(kmsgFile, (await kmsgLinesFor(spec.scenario)).map((l) => `${l}\n`).join(''));
        const config = simulatedAgentConfig({
          nodeName: spec.name,
          address,
          port: options.port,
          allowedCallers: options.auth === 'none' ? undefined : options.auth.allowedCallers,
          nvmlLibraryPath: nodeLibrary,
          kmsgPath: kmsgFile,
          podResourcesSocket: spec.podResourcesSocket ?? '',
          snapshotCacheMs: options.snapshotCacheMs ?? 1000,
        });
        node.agent = await Agent.start(config, {
          logger: options.logger,
          // Process metrics would be the same for every agent here, and their monitors never stop.
          processMetrics: false,
          ...(options.auth === 'none' ? {} : { authenticator: options.auth.authenticator }),
        });
        await createAgentPod(options.kc, {
          namespace: options.namespace,
          nodeName: spec.name,
          nodeUid,
          address,
          ...(options.podLabels !== undefined ? { podLabels: options.podLabels } : {}),
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
    await Promise.all(this.nodes.map(async (n) => n.agent?.stop()));
    await Promise.all([...this.libraries.values()].map((l) => l.controller.dispose()));
    await rm(this.dir, { recursive: true, force: true });
    this.options.onProgress?.('simulated fleet stopped');
  }
}
