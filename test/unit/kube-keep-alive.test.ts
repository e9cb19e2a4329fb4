import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import { ApiClient } from '../../lib/kube/api-client.js';
import { ApiServerConnection } from '../../lib/kube/connection.js';
import { KubeClient } from '../../operator/mcp/kube.js';

// A TLS server standing in for the API server: it counts the connections its clients open.
let server: https.Server;
let connections = 0;
let dropsReusedRequests = 0;
let caPem = '';
const dir = mkdtempSync(path.join(os.tmpdir(), 'gpudiag-keepalive-'));

beforeAll(async () => {
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-days',
      '1',
      '-subj',
      '/CN=127.0.0.1',
      '-addext',
      'subjectAltName=IP:127.0.0.1',
      '-keyout',
      path.join(dir, 'key.pem'),
      '-out',
      path.join(dir, 'cert.pem'),
    ],
    { stdio: 'ignore' },
  );
  caPem = readFileSync(path.join(dir, 'cert.pem'), 'utf8');
  const answered = new WeakMap<object, number>();
  server = https.createServer({ key: readFileSync(path.join(dir, 'key.pem')), cert: caPem }, (req, res) => {
    const onThisConnection = (answered.get(req.socket) ?? 0) + 1;
    answered.set(req.socket, onThisConnection);
    // As an API server that closed an idle kept-alive connection just as the client reused it.
    if (req.url === '/drops-reused') dropsReusedRequests += 1;
    if (req.url === '/drops-reused' && onThisConnection > 1) {
      req.socket.destroy();
      return;
    }
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify({ kind: 'Namespace', apiVersion: 'v1', metadata: { name: 'default' } }));
  });
  server.on('secureConnection', () => (connections += 1));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
  rmSync(dir, { recursive: true, force: true });
});

function kubeConfig(): KubeConfig {
  const kc = new KubeConfig();
  const server_ = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
  kc.loadFromOptions({
    clusters: [{ name: 'c', server: server_, caData: Buffer.from(caPem).toString('base64'), skipTLSVerify: false }],
    users: [{ name: 'u', token: 't' }],
    contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
    currentContext: 'x',
  });
  return kc;
}

async function callsOpenConnections(kc: KubeConfig, calls: number): Promise<number> {
  const before = connections;
  const client = new KubeClient(kc, { user: 'alice', groups: [], impersonate: false });
  for (let i = 0; i < calls; i++) await client.request({ method: 'GET', path: '/api/v1/namespaces/default' });
  return connections - before;
}

describe("the MCP facade's API calls (KubeClient)", () => {
  it('share one keep-alive connection instead of a TLS handshake per call', async () => {
    expect(await callsOpenConnections(kubeConfig(), 5)).toBe(1);
  });

  it('share it across clients of the same credentials (one per MCP caller on the HTTP transport)', async () => {
    const kc = kubeConfig();
    const first = await callsOpenConnections(kc, 2);
    expect(first + (await callsOpenConnections(kc, 3))).toBeLessThanOrEqual(1);
  });
});

describe("the operator's API calls (ApiClient over the lean connection)", () => {
  const client = (): ApiClient =>
    new ApiClient(
      new ApiServerConnection({ server: `https://127.0.0.1:${(server.address() as AddressInfo).port}`, ca: caPem, token: 't' }),
    );

  it('share one keep-alive connection', async () => {
    const api = client();
    const before = connections;
    for (let i = 0; i < 5; i++) await api.request({ method: 'GET', path: '/api/v1/namespaces/default' });
    expect(connections - before).toBeLessThanOrEqual(1);
  });

  it('send once more on a new connection when the server closed the reused one before answering', async () => {
    const api = client();
    // A fresh TLS setting (another CA string) gets its own agent, so the first call opens a connection of its own.
    const fresh = new ApiClient(
      new ApiServerConnection({ server: `https://127.0.0.1:${(server.address() as AddressInfo).port}`, ca: `${caPem}\n`, token: 't' }),
    );
    const before = connections;
    await fresh.request({ method: 'GET', path: '/drops-reused' });
    await expect(fresh.request({ method: 'GET', path: '/drops-reused' })).resolves.toMatchObject({ kind: 'Namespace' });
    // One answered, one dropped on the reused connection, and the same request again on a new one.
    expect(dropsReusedRequests).toBe(3);
    expect(connections - before).toBe(2);
    await expect(api.request({ method: 'GET', path: '/api/v1/namespaces/default' })).resolves.toMatchObject({ kind: 'Namespace' });
  });
});
