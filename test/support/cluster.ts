/**
 * Test access to the real control plane: an admin client, a namespace per test file, and
 * clients that authenticate as a chosen user, group or ServiceAccount (for RBAC tests).
 */
import { readFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { afterAll, beforeAll } from '@jest/globals';
import { AuthenticationV1Api, CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { issueClientCertificate, type ClientIdentity } from '../../dev/control-plane/certs.js';
import { kubeConfigForCertificate, kubeConfigForToken } from '../../dev/control-plane/control-plane.js';
import { ENDPOINT_ENV, type TestEndpoint } from './endpoint.js';

/** The shared control plane, seen from a test file. */
export class TestCluster {
  readonly caPem: string;

  constructor(readonly endpoint: TestEndpoint) {
    this.caPem = readFileSync(endpoint.certs.caCert, 'utf8');
  }

  /** The API server URL. */
  get server(): string {
    return this.endpoint.server;
  }

  /** Path of a kubeconfig file for the admin (for kubectl). */
  get adminKubeconfigPath(): string {
    return this.endpoint.adminKubeconfigPath;
  }

  /** A fresh admin KubeConfig (group system:masters). */
  admin(): KubeConfig {
    const kc = new KubeConfig();
    kc.loadFromFile(this.endpoint.adminKubeconfigPath);
    return kc;
  }

  /** A KubeConfig that authenticates with a client certificate as the given user and groups. */
  async as(identity: ClientIdentity): Promise<KubeConfig> {
    const cert = await issueClientCertificate(this.endpoint.certs, identity, path.join(this.endpoint.dir, 'certs'));
    return kubeConfigForCertificate(this.server, this.caPem, cert.certPem, cert.keyPem, identity.user);
  }

  /** Creates the ServiceAccount if needed and returns a bound token for it (TokenRequest). */
  async serviceAccountToken(namespace: string, name: string, audiences?: string[], expirationSeconds = 3600): Promise<string> {
    const core = this.admin().makeApiClient(CoreV1Api);
    await core.createNamespacedServiceAccount({ namespace, body: { metadata: { name } } }).catch((err: unknown) => {
      if ((err as { code?: number }).code !== 409) throw err;
    });
    // Empty audiences mean the API server's own audience (its issuer).
    const res = await core.createNamespacedServiceAccountToken({
      namespace,
      name,
      body: { spec: { audiences: audiences ?? [], expirationSeconds } },
    });
    const token = res.status?.token;
    if (token === undefined) throw new Error(`TokenRequest for ${namespace}/${name} returned no token`);
    return token;
  }

  /** A KubeConfig that authenticates as a ServiceAccount with a bound token. */
  async asServiceAccount(namespace: string, name: string): Promise<KubeConfig> {
    const token = await this.serviceAccountToken(namespace, name);
    return kubeConfigForToken(this.server, this.caPem, token, `system:serviceaccount:${namespace}:${name}`);
  }

  /** Asks the API server who a token belongs to (TokenReview), as the admin. */
  async reviewToken(token: string, audiences?: string[]): Promise<{ authenticated: boolean; username?: string }> {
    const api = this.admin().makeApiClient(AuthenticationV1Api);
    const res = await api.createTokenReview({ body: { spec: audiences === undefined ? { token } : { token, audiences } } });
    const username = res.status?.user?.username;
    return username === undefined
      ? { authenticated: res.status?.authenticated === true }
      : { authenticated: res.status?.authenticated === true, username };
  }

  /** Creates a namespace with a random suffix. */
  async createNamespace(prefix: string): Promise<string> {
    const name = `${prefix}-${randomBytes(3).toString('hex')}`.slice(0, 63);
    await this.admin()
      .makeApiClient(CoreV1Api)
      .createNamespace({ body: { metadata: { name, labels: { 'gpudiag.io/test': 'true' } } } });
    return name;
  }

  /** Deletes a namespace (no controllers run, so it stays Terminating; names are never reused). */
  async deleteNamespace(name: string): Promise<void> {
    await this.admin().makeApiClient(CoreV1Api).deleteNamespace({ name });
  }
}

let cached: TestCluster | undefined;

/** The control plane started by globalSetup; fails clearly when tests run without it. */
export function testCluster(): TestCluster {
  if (cached !== undefined) return cached;
  const file = process.env[ENDPOINT_ENV];
  if (file === undefined)
    throw new Error(`${ENDPOINT_ENV} is not set: run integration tests through \`npm test\` (jest globalSetup starts the control plane)`);
  cached = new TestCluster(JSON.parse(readFileSync(file, 'utf8')) as TestEndpoint);
  return cached;
}

/** Gives the calling test file its own namespace, created before and deleted after its tests. */
export function useTestNamespace(prefix: string): { readonly name: string } {
  const holder = { name: '' };
  beforeAll(async () => {
    holder.name = await testCluster().createNamespace(prefix);
  });
  afterAll(async () => {
    if (holder.name !== '') await testCluster().deleteNamespace(holder.name);
  });
  return holder;
}

/** A short random suffix for cluster-scoped names. */
export function uniqueSuffix(): string {
  return randomBytes(3).toString('hex');
}
