/**
 * An API server that stops answering (frozen behind a TCP proxy, connections held open):
 * reconciles end at their call deadline and retry with backoff instead of wedging the work
 * queue; an agent whose TokenReview cannot be answered replies 503/504 within its deadline;
 * once the API returns, the queue serves every key (the running diagnostic, one created during
 * the freeze, one created after); and stopping with the API frozen still ends within the grace.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { tokenReviewAuthenticator } from '../../agent/auth/token-reviewer.js';
import { freePort } from '../../dev/control-plane/control-plane.js';
import { uniqueFleetNames, type SimulatedFleet } from '../../dev/fleet/simulated-fleet.js';
import { createLogger } from '../../lib/logger.js';
import { settlesWithin } from '../../lib/settle.js';
import { parseOperatorConfig } from '../../operator/config.js';
import { Operator } from '../../operator/operator.js';
import { startTestAgent, type TestAgent } from '../support/agents.js';
import { testCluster, useTestNamespace } from '../support/cluster.js';
import { createDiagnostic, readDiagnostic, waitFinished } from '../support/diagnostics.js';
import { operatorAgentToken, slowDownAgent, startTestFleet, testOperatorArgs, waitUntil } from '../support/operator-env.js';
import { applyRbac } from '../support/rbac.js';
import { FlakyProxy, kubeConfigVia } from '../support/tcp-proxy.js';

const ns = useTestNamespace('e2e-freeze');
const logger = createLogger({ silent: true });
const API_TIMEOUT_SECONDS = 2;
let proxy: FlakyProxy;
let fleet: SimulatedFleet;
let operator: Operator;
let frozenAgent: TestAgent;
const nodes = { slow: '', fast: '' };

async function retries(): Promise<number> {
  const values = (await operator.metrics.reconciles.get()).values;
  return values
    .filter((v) => v.labels['controller'] === 'gpudiagnostic' && v.labels['outcome'] === 'retry')
    .reduce((sum, v) => sum + v.value, 0);
}

/** Reconciles that took longer than `seconds` (from the duration histogram's buckets). */
async function reconcilesLongerThan(seconds: number): Promise<number> {
  const values = (await operator.metrics.reconcileDuration.get()).values.filter((v) => v.labels['controller'] === 'gpudiagnostic');
  const count = values.find((v) => v.metricName?.endsWith('_count'))?.value ?? 0;
  const within =
    values.find((v) => v.metricName?.endsWith('_bucket') && (v.labels as Record<string, unknown>)['le'] === seconds)?.value ?? 0;
  return count - within;
}

beforeAll(async () => {
  await applyRbac('operator.yaml', ns.name);
  await applyRbac('agent.yaml', ns.name);
  proxy = new FlakyProxy(new URL(testCluster().server));
  const proxyUrl = `https://127.0.0.1:${await proxy.start()}`;
  const port = await freePort();
  const specs = uniqueFleetNames(ns.name, [
    { name: 'slow', scenario: 'h100-sxm-8x-healthy' },
    { name: 'fast', scenario: 'h100-sxm-8x-healthy' },
  ]);
  nodes.slow = specs[0]?.name ?? '';
  nodes.fast = specs[1]?.name ?? '';
  fleet = await startTestFleet(ns.name, specs, port, logger);
  await slowDownAgent(fleet, nodes.slow);
  const args = [
    ...testOperatorArgs(ns.name, port),
    '--api-timeout-seconds',
    String(API_TIMEOUT_SECONDS),
    '--leader-election',
    'false',
    '--shutdown-grace-seconds',
    '6',
  ];
  operator = await Operator.start(parseOperatorConfig(args, {}, 'freeze'), {
    kc: kubeConfigVia(proxyUrl, await testCluster().asServiceAccount(ns.name, 'gpudiag-operator')),
    logger,
    tokenProvider: operatorAgentToken(ns.name),
  });
  // An agent whose TokenReviews go through the proxy too.
  frozenAgent = await startTestAgent({
    scenario: 'h100-sxm-8x-healthy',
    authenticator: tokenReviewAuthenticator(
      kubeConfigVia(proxyUrl, await testCluster().asServiceAccount(ns.name, 'gpudiag-agent')),
      'gpudiag-agent',
    ),
    config: { auth: 'tokenreview', allowedCallers: [`system:serviceaccount:${ns.name}:gpudiag-operator`], requestTimeoutMs: 2_000 },
  });
  await waitUntil(
    'the operator is ready',
    20_000,
    async () => (await fetch(`http://127.0.0.1:${operator.probeAddress?.port ?? 0}/readyz`)).status === 200,
  );
}, 90_000);

afterAll(async () => {
  proxy?.thaw();
  await operator?.stop();
  await frozenAgent?.stop();
  await fleet?.stop();
  await proxy?.stop();
});

describe('the API server stops answering', () => {
  it('reconciles time out and retry, agents answer 503/504 in time, and all work completes once the API returns', async () => {
    await createDiagnostic(ns.name, 'before-freeze', { nodeNames: [nodes.fast] });
    expect((await waitFinished(ns.name, 'before-freeze', { timeoutMs: 20_000, pollMs: 150 })).status?.phase).toBe('Completed');

    // A diagnostic whose slow agent answers while the API is frozen.
    await createDiagnostic(ns.name, 'running', { nodeNames: [nodes.slow] });
    await waitUntil('running is Running', 20_000, async () => (await readDiagnostic(ns.name, 'running')).status?.phase === 'Running');
    const retriesBefore = await retries();
    proxy.freeze();
    await createDiagnostic(ns.name, 'created-while-frozen', { nodeNames: [nodes.fast] });

    const token = await operatorAgentToken(ns.name)();
    const asked = Date.now();
    const refused = await fetch(`${frozenAgent.url}/v1/snapshot`, { headers: { Authorization: `Bearer ${token}` } });
    expect([503, 504]).toContain(refused.status);
    expect(Date.now() - asked).toBeLessThan(5_000);

    // The slow fan-out ends about 6 s in; its status writes hang until their 2 s deadline, then retry.
    await waitUntil('reconciles retry with backoff while the API is frozen', 20_000, async () => (await retries()) - retriesBefore >= 2);
    expect(await reconcilesLongerThan(5)).toBe(0);

    proxy.thaw();
    for (const name of ['running', 'created-while-frozen']) {
      const done = await waitFinished(ns.name, name, { timeoutMs: 30_000, pollMs: 200 });
      expect({ name, phase: done.status?.phase, succeeded: done.status?.summary?.nodesSucceeded }).toEqual({
        name,
        phase: 'Completed',
        succeeded: 1,
      });
    }
    await createDiagnostic(ns.name, 'after-thaw', { nodeNames: [nodes.fast, nodes.slow] });
    expect((await waitFinished(ns.name, 'after-thaw', { timeoutMs: 30_000, pollMs: 200 })).status?.summary?.nodesSucceeded).toBe(2);
    expect((await fetch(`${frozenAgent.url}/v1/snapshot`, { headers: { Authorization: `Bearer ${token}` } })).status).toBe(200);

    // Stopping while the API is frozen again still ends: nothing waits on a call without a deadline.
    proxy.freeze();
    expect(await settlesWithin(operator.stop(), 10_000)).toBe(true);
  }, 120_000);
});
