/**
 * The usual end-to-end setup: a simulated fleet whose agents verify callers with TokenReview
 * (as the gpudiag-agent ServiceAccount) and admit only the namespace's gpudiag-operator, and an
 * operator running as that ServiceAccount, bound by the test to config/rbac/operator.yaml.
 */
import { tokenReviewAuthenticator } from '../../agent/auth/token-reviewer.js';
import { freePort } from '../../dev/control-plane/control-plane.js';
import { SimulatedFleet, uniqueFleetNames, type FleetNodeSpec } from '../../dev/fleet/simulated-fleet.js';
import type { Logger } from '../../lib/logger.js';
import { parseOperatorConfig } from '../../operator/config.js';
import { Operator } from '../../operator/operator.js';
import { testCluster } from './cluster.js';
import { applyRbac } from './rbac.js';

/** The operator's token for agents (TokenRequest, audience gpudiag-agent), requested once and cached. */
export function operatorAgentToken(namespace: string): () => Promise<string> {
  let token: Promise<string> | undefined;
  return () => (token ??= testCluster().serviceAccountToken(namespace, 'gpudiag-operator', ['gpudiag-agent']));
}

/** Starts a simulated fleet in `namespace` whose agents admit only that namespace's gpudiag-operator. */
export async function startTestFleet(namespace: string, nodes: FleetNodeSpec[], port: number, logger: Logger): Promise<SimulatedFleet> {
  const cluster = testCluster();
  return SimulatedFleet.start({
    kc: cluster.admin(),
    namespace,
    nodes,
    port,
    logger,
    auth: {
      authenticator: tokenReviewAuthenticator(await cluster.asServiceAccount(namespace, 'gpudiag-agent'), 'gpudiag-agent'),
      allowedCallers: [`system:serviceaccount:${namespace}:gpudiag-operator`],
    },
  });
}

/**
 * Flags every test operator needs: its own namespace's diagnostics and agents, and only its own
 * shard of the cluster-scoped GPUHealthPolicies (the API server is shared by all test files).
 */
export function testOperatorArgs(namespace: string, agentPort: number): string[] {
  return [
    '--namespaces',
    namespace,
    '--agent-namespace',
    namespace,
    '--policy-selector',
    `gpudiag.io/shard=${namespace}`,
    '--agent-port',
    String(agentPort),
    '--probe-listen',
    '127.0.0.1:0',
  ];
}

/** Starts an operator as the namespace's gpudiag-operator ServiceAccount. */
export async function startTestOperator(
  namespace: string,
  args: string[],
  identity: string,
  logger: Logger,
  tokenProvider: () => Promise<string> = operatorAgentToken(namespace),
): Promise<Operator> {
  return Operator.start(parseOperatorConfig(args, {}, identity), {
    kc: await testCluster().asServiceAccount(namespace, 'gpudiag-operator'),
    logger,
    tokenProvider,
  });
}

/** A simulated node per fleet scenario and an operator over them, from {@link startScenarioEnv}. */
export interface ScenarioEnv {
  fleet: SimulatedFleet;
  operator: Operator;
  /** The node name each scenario got (names are unique on the shared API server). */
  nodeNames: ReadonlyMap<string, string>;
  stop(): Promise<void>;
}

/**
 * Binds the operator and agent RBAC in `namespace`, starts one simulated node per scenario
 * (labelled `label: namespace`, which keeps them apart from other files' nodes on the shared
 * API server) and an operator over them with `operatorArgs` added to the usual flags.
 */
export async function startScenarioEnv(
  namespace: string,
  scenarios: readonly string[],
  options: {
    label: string;
    identity: string;
    logger: Logger;
    operatorArgs?: readonly string[];
    /** A kubelet pod-resources socket for the agent of a scenario's node. */
    podResourcesSockets?: Readonly<Record<string, string>>;
  },
): Promise<ScenarioEnv> {
  await applyRbac('operator.yaml', namespace);
  await applyRbac('agent.yaml', namespace);
  const port = await freePort();
  const nodes = uniqueFleetNames(
    namespace,
    scenarios.map((scenario) => {
      const socket = options.podResourcesSockets?.[scenario];
      return {
        name: scenario,
        scenario,
        labels: { [options.label]: namespace },
        ...(socket !== undefined ? { podResourcesSocket: socket } : {}),
      };
    }),
  );
  const nodeNames = new Map(nodes.map((n, i) => [scenarios[i] ?? n.name, n.name]));
  const fleet = await startTestFleet(namespace, nodes, port, options.logger);
  try {
    const args = [...testOperatorArgs(namespace, port), ...(options.operatorArgs ?? [])];
    // a fresh token per request, as the operator's projected token would be rotated
    const operator = await startTestOperator(namespace, args, options.identity, options.logger, () =>
      testCluster().serviceAccountToken(namespace, 'gpudiag-operator', ['gpudiag-agent']),
    );
    return {
      fleet,
      operator,
      nodeNames,
      stop: async () => {
        await operator.stop();
        await fleet.stop();
      },
    };
  } catch (err) {
    await fleet.stop();
    throw err;
  }
}

/** The agent's sequential system-level NVML reads: at 1.9 s each (under the 2 s call deadline) a snapshot takes about 6 s. */
const SLOW_SYSTEM_CALLS = ['nvmlSystemGetDriverVersion', 'nvmlSystemGetNVMLVersion', 'nvmlSystemGetCudaDriverVersion_v2'];

/** Makes a simulated node's agent slow (about 6 s per snapshot) through its fake NVML library. */
export async function slowDownAgent(fleet: SimulatedFleet, node: string): Promise<void> {
  const controller = fleet.node(node).controller;
  if (controller === undefined) throw new Error(`${node} has no fake NVML controller`);
  for (const call of SLOW_SYSTEM_CALLS) await controller.inject({ kind: 'delay', call, ms: 1_900 });
}

/** Polls `check` every 100 ms until it holds; throws naming `what` after `timeoutMs`. */
export async function waitUntil(what: string, timeoutMs: number, check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
