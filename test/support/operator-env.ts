/**
 * The usual end-to-end setup: a simulated fleet whose agents verify callers with TokenReview
 * (as the gpudiag-agent ServiceAccount) and admit only the namespace's gpudiag-operator, and an
 * operator running as that ServiceAccount, bound by the test to config/rbac/operator.yaml.
 */
import { tokenReviewAuthenticator } from '../../agent/auth/token-reviewer.js';
import { SimulatedFleet, type FleetNodeSpec } from '../../dev/fleet/simulated-fleet.js';
import type { Logger } from '../../lib/logger.js';
import { parseOperatorConfig } from '../../operator/config.js';
import { Operator } from '../../operator/operator.js';
import { testCluster } from './cluster.js';

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
  return ['--namespaces', namespace, '--agent-namespace', namespace, '--policy-selector', `gpudiag.io/shard=${namespace}`, '--agent-port', String(agentPort), '--probe-listen', '127.0.0.1:0'];
}

/** Starts an operator as the namespace's gpudiag-operator ServiceAccount. */
export async function startTestOperator(namespace: string, args: string[], identity: string, logger: Logger, tokenProvider: () => Promise<string> = operatorAgentToken(namespace)): Promise<Operator> {
  return Operator.start(parseOperatorConfig(args, {}, identity), {
    kc: await testCluster().asServiceAccount(namespace, 'gpudiag-operator'),
    logger,
    tokenProvider,
  });
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
