/**
 * Local token verification against the real API server: the default RBAC lets a ServiceAccount
 * read OIDC discovery and the issuer's keys, a real agent verifies TokenRequest tokens with them,
 * and the API server sees zero TokenReviews from it. The count is the API server's own: a
 * FlowSchema per agent identity classifies that identity's TokenReviews, and
 * apiserver_flowcontrol_dispatched_requests_total counts them, whatever other test files do
 * at the same time. An identity that may not read discovery (a certificate user outside
 * system:serviceaccounts: 403) falls back to TokenReview, which the same count then sees.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { KubernetesObject } from '@kubernetes/client-node';
import { applyObjects } from '../../dev/apply.js';
import { kubeGetText, kubeRequest, KubeRequestError } from '../../lib/kube/raw-request.js';
import { isRecord } from '../../lib/records.js';
import { startTestAgent, type TestAgent } from '../support/agents.js';
import { testCluster, useTestNamespace } from '../support/cluster.js';
import { applyRbac } from '../support/rbac.js';
import { boundClaims, signingKey, signToken } from '../support/service-account-tokens.js';

const ns = useTestNamespace('agent-jwt');
const AUDIENCE = 'gpudiag-agent';
const FLOW_SCHEMAS = '/apis/flowcontrol.apiserver.k8s.io/v1/flowschemas';
let dir: string;
let operator: string;
let saKubeconfig: string;
let certKubeconfig: string;
let certUser: string;
const agents: TestAgent[] = [];

/** A FlowSchema that classifies `subject`'s TokenReviews alone, so their dispatch count is this identity's. */
function tokenReviewFlowSchema(name: string, subject: Record<string, unknown>): KubernetesObject & Record<string, unknown> {
  return {
    apiVersion: 'flowcontrol.apiserver.k8s.io/v1',
    kind: 'FlowSchema',
    metadata: { name, labels: { 'gpudiag.io/test': 'true' } },
    spec: {
      priorityLevelConfiguration: { name: 'workload-low' },
      matchingPrecedence: 500,
      distinguisherMethod: { type: 'ByUser' },
      rules: [
        {
          subjects: [subject],
          resourceRules: [{ verbs: ['create'], apiGroups: ['authentication.k8s.io'], resources: ['tokenreviews'], clusterScope: true }],
        },
      ],
    },
  };
}

/** Waits until the API server's priority-and-fairness controller has taken the FlowSchema in. */
async function waitForFlowSchema(name: string): Promise<void> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const fs = await kubeRequest<{ status?: { conditions?: { type: string; status: string }[] } }>(testCluster().admin(), {
      method: 'GET',
      path: `${FLOW_SCHEMAS}/${name}`,
    });
    if ((fs.status?.conditions ?? []).some((c) => c.type === 'Dangling' && c.status === 'False')) return;
    if (Date.now() > deadline) throw new Error(`FlowSchema ${name} was not taken in within 30 s`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** TokenReviews the API server dispatched for the identity `flowSchema` classifies. */
async function tokenReviewsOf(flowSchema: string): Promise<number> {
  const text = await kubeGetText(testCluster().admin(), '/metrics');
  let total = 0;
  for (const line of text.split('\n')) {
    if (line.startsWith('apiserver_flowcontrol_dispatched_requests_total{') && line.includes(`flow_schema="${flowSchema}"`))
      total += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return total;
}

async function status(agent: TestAgent, token?: string): Promise<number> {
  const res = await fetch(
    `${agent.url}/v1/snapshot?checks=xid`,
    token === undefined ? {} : { headers: { Authorization: `Bearer ${token}` } },
  );
  await res.arrayBuffer();
  return res.status;
}

/** The agent's series `name` by label values, e.g. {'local,allowed': 3}. */
async function agentSeries(agent: TestAgent, name: string): Promise<Record<string, number>> {
  const metric = (await agent.agent.metrics.registry.getMetricsAsJSON()).find((m) => m.name === name);
  return Object.fromEntries((metric?.values ?? []).map((v) => [Object.values(v.labels).join(','), v.value]));
}

async function startAgent(kubeconfig: string, tokenVerification?: 'local' | 'auto'): Promise<TestAgent> {
  const agent = await startTestAgent({
    config: {
      auth: 'tokenreview',
      ...(tokenVerification !== undefined ? { tokenVerification } : {}),
      kubeconfig,
      allowedCallers: [`system:serviceaccount:${ns.name}:gpudiag-operator`],
    },
  });
  agents.push(agent);
  return agent;
}

const flowSchemaName = (who: string): string => `gpudiag-${who}-${ns.name}`.slice(0, 63);

beforeAll(async () => {
  const cluster = testCluster();
  await applyRbac('agent.yaml', ns.name);
  dir = await mkdtemp(path.join(os.tmpdir(), 'gpudiag-agent-jwt-'));
  saKubeconfig = path.join(dir, 'sa.kubeconfig');
  await writeFile(saKubeconfig, (await cluster.asServiceAccount(ns.name, 'gpudiag-agent')).exportConfig(), { mode: 0o600 });
  // A certificate user with the agent's TokenReview permission but outside system:serviceaccounts.
  certUser = `gpudiag-agent-cert-${ns.name}`;
  certKubeconfig = path.join(dir, 'cert.kubeconfig');
  await writeFile(certKubeconfig, (await cluster.as({ user: certUser })).exportConfig(), { mode: 0o600 });
  const binding: KubernetesObject & Record<string, unknown> = {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'ClusterRoleBinding',
    metadata: { name: `gpudiag-agent-cert-${ns.name}` },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: `gpudiag-agent-${ns.name}` },
    subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: certUser }],
  };
  await applyObjects(cluster.admin(), [
    binding,
    tokenReviewFlowSchema(flowSchemaName('sa'), { kind: 'ServiceAccount', serviceAccount: { namespace: ns.name, name: 'gpudiag-agent' } }),
    tokenReviewFlowSchema(flowSchemaName('cert'), { kind: 'User', user: { name: certUser } }),
  ]);
  await Promise.all([waitForFlowSchema(flowSchemaName('sa')), waitForFlowSchema(flowSchemaName('cert'))]);
  operator = await cluster.serviceAccountToken(ns.name, 'gpudiag-operator', [AUDIENCE], 600);
});

afterAll(async () => {
  for (const agent of agents) await agent.stop();
  const admin = testCluster().admin();
  for (const who of ['sa', 'cert'])
    await kubeRequest(admin, { method: 'DELETE', path: `${FLOW_SCHEMAS}/${flowSchemaName(who)}` }).catch((err: unknown) => {
      if (!(err instanceof KubeRequestError && err.statusCode === 404)) throw err;
    });
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
});

describe('OIDC discovery on the test control plane', () => {
  it('any ServiceAccount may read discovery and the JWKS (the default issuer-discovery binding), whose issuer signs tokens', async () => {
    const { loadKubeconfig } = await import('../../lib/kube/kubeconfig.js');
    const asAgent = await loadKubeconfig(saKubeconfig);
    const discovery = await kubeRequest<Record<string, unknown>>(asAgent, { method: 'GET', path: '/.well-known/openid-configuration' });
    expect(discovery['issuer']).toBe(testCluster().endpoint.serviceAccountIssuer);
    const jwks = await kubeRequest<{ keys: Record<string, unknown>[] }>(asAgent, {
      method: 'GET',
      path: '/openid/v1/jwks',
      accept: 'application/jwk-set+json',
    });
    expect(jwks.keys).toEqual([expect.objectContaining({ kty: 'RSA', alg: 'RS256', use: 'sig', kid: expect.any(String) })]);
    const claims = JSON.parse(Buffer.from(operator.split('.')[1] ?? '', 'base64url').toString('utf8')) as unknown;
    expect(isRecord(claims) && claims['iss']).toBe(discovery['issuer']);
    // A user outside system:serviceaccounts may not: the fallback case below.
    const asCertUser = await loadKubeconfig(certKubeconfig);
    await expect(kubeRequest(asCertUser, { method: 'GET', path: '/.well-known/openid-configuration' })).rejects.toMatchObject({
      statusCode: 403,
    });
  });
});

describe('an agent verifying tokens locally', () => {
  it.each<['local' | 'auto']>([['local'], ['auto']])(
    '--token-verification %s: allows the operator, refuses others, and makes zero TokenReviews',
    async (mode) => {
      const cluster = testCluster();
      const agent = await startAgent(saKubeconfig, mode);
      const stranger = await cluster.serviceAccountToken(ns.name, 'someone-else', [AUDIENCE], 600);
      const wrongAudience = await cluster.serviceAccountToken(ns.name, 'gpudiag-operator', ['https://kubernetes.default.svc'], 600);
      const forged = signToken(signingKey('RS256'), boundClaims({ issuer: cluster.endpoint.serviceAccountIssuer, namespace: ns.name }));
      const before = await tokenReviewsOf(flowSchemaName('sa'));

      expect(await status(agent, operator)).toBe(200);
      expect(await status(agent, await cluster.serviceAccountToken(ns.name, 'gpudiag-operator', [AUDIENCE], 600))).toBe(200);
      expect(await status(agent, stranger)).toBe(403);
      expect(await status(agent, wrongAudience)).toBe(401);
      expect(await status(agent, forged)).toBe(401);
      expect(await status(agent, 'not-a-token')).toBe(401);
      expect(await status(agent)).toBe(401);

      expect((await tokenReviewsOf(flowSchemaName('sa'))) - before).toBe(0);
      expect(await agentSeries(agent, 'gpudiag_agent_token_verifications_total')).toEqual({ 'local,allowed': 2, 'local,denied': 4 });
      // The forged token's unknown key id cost one refresh at most (none within the rate limit).
      const refreshes = await agentSeries(agent, 'gpudiag_agent_jwks_refreshes_total');
      expect(refreshes).toEqual({ success: expect.any(Number), failure: 0 });
      expect(refreshes['success']).toBeLessThanOrEqual(2);
    },
  );
});

describe('falling back to TokenReview', () => {
  it('auto: an identity that may not read discovery (403) verifies by TokenReview, which the API server counts', async () => {
    const agent = await startAgent(certKubeconfig);
    const before = await tokenReviewsOf(flowSchemaName('cert'));
    expect(await status(agent, operator)).toBe(200);
    expect(await status(agent, await testCluster().serviceAccountToken(ns.name, 'someone-else', [AUDIENCE], 600))).toBe(403);
    expect((await tokenReviewsOf(flowSchemaName('cert'))) - before).toBe(2);
    expect(await agentSeries(agent, 'gpudiag_agent_token_verifications_total')).toEqual({
      'tokenreview,allowed': 1,
      'tokenreview,denied': 1,
    });
    expect(await agentSeries(agent, 'gpudiag_agent_jwks_refreshes_total')).toEqual({ success: 0, failure: 1 });
  });

  it('local: the same identity gets 503 (no keys), never a TokenReview', async () => {
    const agent = await startAgent(certKubeconfig, 'local');
    const before = await tokenReviewsOf(flowSchemaName('cert'));
    expect(await status(agent, operator)).toBe(503);
    expect((await tokenReviewsOf(flowSchemaName('cert'))) - before).toBe(0);
  });
});
