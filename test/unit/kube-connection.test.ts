/**
 * The lean API server connection (lib/kube/connection.ts): the in-cluster configuration, the
 * token file re-read as it rotates, and TokenReview over it against a local HTTPS stand-in for
 * the API server (what is sent, deadlines, answer size).
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type RequestOptions, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { readTokenReviewStatus, tokenReviewAuthenticator } from '../../agent/auth/token-reviewer.js';
import { createControlPlaneCerts } from '../../dev/control-plane/certs.js';
import { ApiServerConnection, inClusterConnection, MAX_TOKEN_BYTES, TokenFile } from '../../lib/kube/connection.js';
import { kubeRequest } from '../../lib/kube/raw-request.js';
import { readFileUpTo } from '../../lib/read-bounded.js';

let dir: string;
let caPem: string;
let serving: { cert: string; key: string };

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'gpudiag-kube-connection-'));
  const certs = await createControlPlaneCerts(dir);
  caPem = await readFile(certs.caCert, 'utf8');
  serving = { cert: await readFile(certs.servingCert, 'utf8'), key: await readFile(certs.servingKey, 'utf8') };
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('TokenFile', () => {
  let file: string;
  let now: number;
  let tokens: TokenFile;
  beforeEach(async () => {
    file = path.join(dir, `token-${Math.random().toString(36).slice(2)}`);
    await writeFile(file, 'first\n');
    now = 0;
    tokens = new TokenFile(file, 60_000, () => now);
  });

  it('keeps the token it read until the re-read is due, then reads the rotated one', async () => {
    expect(await tokens.current()).toBe('first');
    await writeFile(file, 'second');
    now = 59_999;
    expect(await tokens.current()).toBe('first');
    now = 60_000;
    expect(await tokens.current()).toBe('second');
  });

  it('shares one read among concurrent callers', async () => {
    const all = await Promise.all([tokens.current(), tokens.current(), tokens.current()]);
    expect(all).toEqual(['first', 'first', 'first']);
  });

  it('fails naming the file when it is missing, empty, too large or not a token; a later good read recovers', async () => {
    await rm(file);
    await expect(tokens.current()).rejects.toThrow(`cannot read the token file ${file}`);
    await writeFile(file, '  \n');
    await expect(tokens.current()).rejects.toThrow(`the token file ${file} is empty`);
    await writeFile(file, 'x'.repeat(MAX_TOKEN_BYTES + 1));
    await expect(tokens.current()).rejects.toMatchObject({
      cause: expect.objectContaining({ message: `${file} is larger than ${MAX_TOKEN_BYTES} bytes` }),
    });
    await writeFile(file, 'abc\r\nX-Injected: yes');
    await expect(tokens.current()).rejects.toThrow('holds characters a bearer token cannot have');
    await writeFile(file, 'back');
    expect(await tokens.current()).toBe('back');
  });
});

describe('readFileUpTo', () => {
  it('returns files up to the bound and refuses larger ones', async () => {
    const file = path.join(dir, 'bounded');
    await writeFile(file, Buffer.alloc(200_000, 1));
    expect((await readFileUpTo(file, 200_000)).length).toBe(200_000);
    await expect(readFileUpTo(file, 199_999)).rejects.toThrow(`${file} is larger than 199999 bytes`);
  });
});

describe('inClusterConnection', () => {
  async function serviceAccountDir(files: Record<string, string>): Promise<string> {
    const sa = await mkdtemp(path.join(dir, 'sa-'));
    for (const [name, text] of Object.entries(files)) await writeFile(path.join(sa, name), text);
    return sa;
  }

  it('uses the kubernetes Service address, the mounted CA and the mounted token', async () => {
    const sa = await serviceAccountDir({ 'ca.crt': caPem, token: 'sa-token\n' });
    const connection = await inClusterConnection({ service: { host: '10.96.0.1', port: '443' }, serviceAccountDir: sa });
    const options: RequestOptions = {};
    await connection.applyToHTTPSOptions(options);
    expect(connection.getCurrentCluster()).toEqual({ server: 'https://10.96.0.1:443' });
    expect(options).toEqual({ ca: caPem, headers: { Authorization: 'Bearer sa-token' } });
    const v6 = await inClusterConnection({ service: { host: 'fd00::1', port: '443' }, serviceAccountDir: sa });
    expect(v6.server).toBe('https://[fd00::1]:443');
  });

  it.each<[string, Record<string, string> | undefined, Record<string, string>, string]>([
    ['outside a pod', undefined, { 'ca.crt': 'x', token: 't' }, 'KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not set'],
    ['without the CA', { host: 'h', port: '443' }, { token: 't' }, 'cannot read the ServiceAccount CA'],
    [
      'with a CA that is no certificate',
      { host: 'h', port: '443' },
      { 'ca.crt': 'garbage', token: 't' },
      'ca.crt holds no PEM certificate',
    ],
    ['without the token', { host: 'h', port: '443' }, { 'ca.crt': '' }, 'cannot read the token file'],
  ])('%s: fails saying what is missing', async (_what, service, files, message) => {
    if (files['ca.crt'] === '') files['ca.crt'] = caPem;
    const sa = await serviceAccountDir(files);
    await expect(
      inClusterConnection({
        service: service === undefined ? undefined : { host: service['host'] ?? '', port: service['port'] ?? '' },
        serviceAccountDir: sa,
      }),
    ).rejects.toThrow(message);
  });
});

describe('TokenReview over the lean connection (a local HTTPS stand-in for the API server)', () => {
  let server: Server;
  let url: string;
  let requests: { method: string | undefined; url: string | undefined; authorization: string | undefined; body: unknown }[];
  let answer: (req: IncomingMessage, res: ServerResponse) => void;

  beforeAll(async () => {
    server = createServer(serving, (req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        requests.push({
          method: req.method,
          url: req.url,
          authorization: req.headers.authorization,
          body: text === '' ? undefined : (JSON.parse(text) as unknown),
        });
        answer(req, res);
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });
  beforeEach(() => {
    requests = [];
    answer = (_req, res): void => {
      res.writeHead(201, { 'Content-Type': 'application/json' });
      res.end(
        JSON.stringify({
          kind: 'TokenReview',
          status: {
            authenticated: true,
            user: { username: 'system:serviceaccount:gpudiag:gpudiag-operator', groups: ['system:serviceaccounts'] },
            audiences: ['gpudiag-agent'],
          },
        }),
      );
    };
  });

  it('POSTs the caller token and audience with the agent token, and follows the agent token as it rotates', async () => {
    const tokenPath = path.join(dir, 'rotating-token');
    await writeFile(tokenPath, 'agent-token-1');
    let now = 0;
    const connection = new ApiServerConnection({ server: url, ca: caPem, token: new TokenFile(tokenPath, 60_000, () => now) });
    const review = tokenReviewAuthenticator(connection, 'gpudiag-agent');
    expect(await review('caller-token', AbortSignal.timeout(5000))).toEqual({
      authenticated: true,
      username: 'system:serviceaccount:gpudiag:gpudiag-operator',
    });
    await writeFile(tokenPath, 'agent-token-2');
    now = 61_000;
    await review('caller-token', AbortSignal.timeout(5000));
    expect(requests).toEqual([
      {
        method: 'POST',
        url: '/apis/authentication.k8s.io/v1/tokenreviews',
        authorization: 'Bearer agent-token-1',
        body: {
          apiVersion: 'authentication.k8s.io/v1',
          kind: 'TokenReview',
          spec: { token: 'caller-token', audiences: ['gpudiag-agent'] },
        },
      },
      expect.objectContaining({ authorization: 'Bearer agent-token-2' }),
    ]);
  });

  it('an API server error is an error (the caller answers 503 and caches nothing)', async () => {
    answer = (_req, res): void => {
      res.writeHead(403, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ kind: 'Status', reason: 'Forbidden', message: 'tokenreviews.authentication.k8s.io is forbidden' }));
    };
    const review = tokenReviewAuthenticator(new ApiServerConnection({ server: url, ca: caPem, token: 't' }), 'a');
    await expect(review('x', AbortSignal.timeout(5000))).rejects.toMatchObject({ statusCode: 403, reason: 'Forbidden' });
  });

  it('a server whose certificate the CA did not sign is refused; insecure-skip-tls-verify accepts it', async () => {
    const otherCa = await readFile(path.join((await createControlPlaneCerts(await mkdtemp(path.join(dir, 'other-ca-')))).caCert), 'utf8');
    const review = tokenReviewAuthenticator(new ApiServerConnection({ server: url, ca: otherCa, token: 't' }), 'a');
    await expect(review('x', AbortSignal.timeout(5000))).rejects.toThrow('request failed');
    const insecure = tokenReviewAuthenticator(new ApiServerConnection({ server: url, insecureSkipTlsVerify: true, token: 't' }), 'a');
    expect(await insecure('x', AbortSignal.timeout(5000))).toMatchObject({ authenticated: true });
  });

  it('gives up on an answer that does not come within the deadline, or that is too large', async () => {
    const connection = new ApiServerConnection({ server: url, ca: caPem, token: 't' });
    answer = (): void => undefined;
    await expect(
      kubeRequest(connection, { method: 'POST', path: '/apis/authentication.k8s.io/v1/tokenreviews', body: {}, timeoutMs: 300 }),
    ).rejects.toThrow('no answer within 300 ms');
    answer = (_req, res): void => {
      res.writeHead(201, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ status: { authenticated: true, user: { username: 'u', extra: { big: ['x'.repeat(300 * 1024)] } } } }));
    };
    await expect(tokenReviewAuthenticator(connection, 'a')('x', AbortSignal.timeout(5000))).rejects.toMatchObject({
      cause: expect.objectContaining({ message: expect.stringContaining('answer larger than') }),
    });
  });

  it('the caller signal cancels the review', async () => {
    answer = (): void => undefined;
    const review = tokenReviewAuthenticator(new ApiServerConnection({ server: url, ca: caPem, token: 't' }), 'a');
    const controller = new AbortController();
    const pending = review('x', controller.signal);
    setTimeout(() => controller.abort(new Error('shutting down')), 100);
    await expect(pending).rejects.toThrow();
    expect(controller.signal.aborted).toBe(true);
  });
});

describe('readTokenReviewStatus', () => {
  it.each<[string, unknown, object]>([
    ['an authenticated user', { status: { authenticated: true, user: { username: 'alice' } } }, { authenticated: true, username: 'alice' }],
    [
      'a refusal with its error',
      { status: { authenticated: false, error: 'token expired' } },
      { authenticated: false, error: 'token expired' },
    ],
    ['no status', { kind: 'TokenReview' }, { authenticated: false }],
    [
      'authenticated as a string',
      { status: { authenticated: 'true', user: { username: 'alice' } } },
      { authenticated: false, username: 'alice' },
    ],
    ['a username that is not a string', { status: { authenticated: true, user: { username: 7 } } }, { authenticated: true }],
    ['not an object', 'nope', { authenticated: false }],
  ])('%s', (_what, review, expected) => {
    expect(readTokenReviewStatus(review)).toEqual(expected);
  });
});
