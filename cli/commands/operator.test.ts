import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { ApiServerConnection } from '../../lib/kube/connection.js';
import { createLogger } from '../../lib/logger.js';
import { loadConnection } from './operator.js';

const logger = createLogger({ silent: true });
let dir: string;

/** A kubeconfig with one context whose user is `user` (YAML flow mappings are JSON). */
async function kubeconfig(name: string, user: Record<string, unknown>): Promise<string> {
  const file = path.join(dir, name);
  const doc = {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'c', cluster: { server: 'https://127.0.0.1:6443', 'insecure-skip-tls-verify': true } }],
    users: [{ name: 'u', user }],
    contexts: [{ name: 'x', context: { cluster: 'c', user: 'u' } }],
    'current-context': 'x',
  };
  await writeFile(file, JSON.stringify(doc), { mode: 0o600 });
  return file;
}

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'gpudiag-operator-connection-'));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("the operator's API server connection (loadConnection)", () => {
  it('reads a token kubeconfig without client-node (the lean connection)', async () => {
    const target = await loadConnection(await kubeconfig('token', { token: 'abc' }), logger);
    expect(target).toBeInstanceOf(ApiServerConnection);
    expect(target.getCurrentCluster()?.server).toBe('https://127.0.0.1:6443');
  });

  it('hands a kubeconfig with an exec plugin to client-node, which runs such plugins', async () => {
    const file = await kubeconfig('exec', { exec: { apiVersion: 'client.authentication.k8s.io/v1', command: 'true' } });
    const target = await loadConnection(file, logger);
    expect(target).not.toBeInstanceOf(ApiServerConnection);
    expect(target.getCurrentCluster()?.server).toBe('https://127.0.0.1:6443');
  });

  it('refuses a broken kubeconfig naming the file and the field, without falling back', async () => {
    const file = await kubeconfig('bad-token', { token: 'two words' });
    const err = await loadConnection(file, logger).then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    expect(err?.message).toBe(`cannot load the kubeconfig ${file}`);
    expect((err?.cause as Error).message).toContain('users[name="u"].user.token holds characters a bearer token cannot have');
  });

  it('outside a pod without --kubeconfig, says what is missing', async () => {
    const saved = { host: process.env['KUBERNETES_SERVICE_HOST'], port: process.env['KUBERNETES_SERVICE_PORT'] };
    delete process.env['KUBERNETES_SERVICE_HOST'];
    delete process.env['KUBERNETES_SERVICE_PORT'];
    try {
      const err = await loadConnection(undefined, logger).then(
        () => undefined,
        (e: unknown) => e as Error,
      );
      expect(err?.message).toBe('cannot load the kubeconfig (in-cluster)');
      expect((err?.cause as Error).message).toContain('KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not set');
    } finally {
      if (saved.host !== undefined) process.env['KUBERNETES_SERVICE_HOST'] = saved.host;
      if (saved.port !== undefined) process.env['KUBERNETES_SERVICE_PORT'] = saved.port;
    }
  });
});
