import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import type http from 'node:http';
import { setTimeout as delay } from 'node:timers/promises';
import { createLogger } from '../../lib/logger.js';
import { classifyHttpStatus, createConnectionPool, fetchSnapshot, type FetchOutcome, type FetchSnapshotRequest } from './agent-client.js';
import { captureLogger, minimalSnapshot, sendJson, startStubAgent, type StubAgent, type StubHandler } from './test-support.js';

const silent = createLogger({ silent: true });
let connections: http.Agent;
const stubs: StubAgent[] = [];

beforeAll(() => {
  connections = createConnectionPool({ scheme: 'http', maxSockets: 8 });
});
afterAll(() => connections.destroy());
afterEach(async () => {
  await Promise.all(stubs.splice(0).map((s) => s.close()));
});

async function stub(handler: StubHandler): Promise<StubAgent> {
  const s = await startStubAgent(handler);
  stubs.push(s);
  return s;
}

function request(s: { host: string; port: number }, overrides: Partial<FetchSnapshotRequest> = {}): FetchSnapshotRequest {
  return {
    node: 'gpu-node-1',
    ip: s.host,
    port: s.port,
    scheme: 'http',
    connections,
    token: 'test-token',
    checks: ['health', 'xid'],
    xidSince: new Date('2025-06-01T11:00:00Z'),
    requestId: 'diag-1:gpu-node-1',
    timeoutMs: 2_000,
    signal: new AbortController().signal,
    logger: silent,
    ...overrides,
  };
}

describe('fetchSnapshot', () => {
  it('sends the token, the request id and the query, and returns the validated document', async () => {
    const s = await stub((_req, res) => sendJson(res, 200, minimalSnapshot('gpu-node-1')));
    const outcome = await fetchSnapshot(request(s));
    expect(outcome.kind).toBe('Succeeded');
    expect(outcome.kind === 'Succeeded' && outcome.snapshot.node).toBe('gpu-node-1');
    expect(s.lastHeaders?.authorization).toBe('Bearer test-token');
    expect(s.lastHeaders?.['x-request-id']).toBe('diag-1:gpu-node-1');
    expect(s.lastPath).toBe('/v1/snapshot?checks=health%2Cxid&xidSince=2025-06-01T11%3A00%3A00.000Z');
  });

  it('reuses keep-alive connections', async () => {
    const s = await stub((_req, res) => sendJson(res, 200, minimalSnapshot('gpu-node-1')));
    for (let i = 0; i < 3; i++) expect((await fetchSnapshot(request(s))).kind).toBe('Succeeded');
    expect(s.requests).toBe(3);
    expect(s.connections).toBe(1);
  });

  const answers: [string, StubHandler, Partial<FetchOutcome> & { kind: FetchOutcome['kind'] }, string][] = [
    [
      'a document that is not a snapshot',
      (_q, r) => sendJson(r, 200, { hello: 1 }),
      { kind: 'Error', transient: false },
      'invalid snapshot document: apiVersion must be agent.gpudiag.io/v1, got nothing',
    ],
    ['non-JSON', (_q, r) => r.writeHead(200).end('<html>hi</html>'), { kind: 'Error', transient: false }, 'agent answered invalid JSON'],
    [
      'a schema-invalid snapshot',
      (_q, r) => sendJson(r, 200, { ...minimalSnapshot('gpu-node-1'), gpus: 'none' }),
      { kind: 'Error', transient: false },
      'invalid snapshot document: /gpus must be array',
    ],
    [
      'a snapshot of another node',
      (_q, r) => sendJson(r, 200, minimalSnapshot('gpu-node-7')),
      { kind: 'Error', transient: false },
      'snapshot for node "gpu-node-7", expected gpu-node-1',
    ],
    [
      '401 with the agent error text',
      (_q, r) => sendJson(r, 401, { error: 'a bearer token is required', requestId: 'x' }),
      { kind: 'Error', transient: false, status: 401 },
      'agent answered HTTP 401: a bearer token is required',
    ],
    [
      '403',
      (_q, r) => sendJson(r, 403, { error: 'system:anonymous may not call this agent' }),
      { kind: 'Error', transient: false, status: 403 },
      'HTTP 403: system:anonymous may not',
    ],
    [
      '400',
      (_q, r) => sendJson(r, 400, { error: 'query parameter "checks": unknown check "x"' }),
      { kind: 'Error', transient: false, status: 400 },
      'HTTP 400',
    ],
    [
      '503 (transient)',
      (_q, r) => sendJson(r, 503, { error: 'token review failed' }),
      { kind: 'Error', transient: true, status: 503 },
      'HTTP 503: token review failed',
    ],
    [
      '504 (transient)',
      (_q, r) => sendJson(r, 504, { error: 'request deadline of 10 ms passed' }),
      { kind: 'Error', transient: true, status: 504 },
      'HTTP 504',
    ],
    [
      '502 from a proxy with HTML',
      (_q, r) => r.writeHead(502).end('<html>Bad Gateway</html>'),
      { kind: 'Error', transient: true, status: 502 },
      'HTTP 502: non-JSON body: <html>Bad Gateway</html>',
    ],
    [
      'an error text with control characters',
      (_q, r) => sendJson(r, 500, { error: 'bad\nlevel=error injected\u001b[31m' }),
      { kind: 'Error', transient: false, status: 500 },
      'HTTP 500: bad level=error injected [31m',
    ],
    [
      'a declared body over the limit',
      (_q, r) => {
        r.writeHead(200, { 'Content-Length': 5000 });
        r.end('x'.repeat(5000));
      },
      { kind: 'Error', transient: false },
      'a body of 5000 bytes, over the 1024 byte limit',
    ],
    [
      'a chunked body over the limit',
      async (_q, r) => {
        r.writeHead(200, { 'Content-Type': 'application/json' });
        for (let i = 0; i < 10 && !r.destroyed; i++) {
          r.write('x'.repeat(500));
          await delay(5);
        }
        r.end();
      },
      { kind: 'Error', transient: false },
      'a body over the 1024 byte limit',
    ],
    ['a reset before the headers', (req) => req.socket.destroy(), { kind: 'Unreachable', transient: true }, 'cannot reach the agent'],
  ];
  it.each(answers)('classifies %s', async (_name, handler, expected, message) => {
    const s = await stub(handler);
    const outcome = await fetchSnapshot(request(s, { maxBodyBytes: 1024 }));
    expect(outcome).toMatchObject(expected);
    expect(outcome.kind !== 'Succeeded' && outcome.message).toContain(message);
  });

  it('handles and logs a connection reset mid-body (C2)', async () => {
    const s = await stub(async (_req, res) => {
      res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': 10_000 });
      res.write('{"apiVersion":"agent.gpudiag.io/v1",');
      await delay(20);
      res.socket?.destroy();
    });
    const { logger, lines } = captureLogger();
    const outcome = await fetchSnapshot(request(s, { logger }));
    expect(outcome).toMatchObject({ kind: 'Error', transient: true, status: 200 });
    expect(outcome.kind !== 'Succeeded' && outcome.message).toMatch(
      /connection (closed|failed) after HTTP 200 while reading the body \(36 bytes read\)/,
    );
    await delay(10);
    const warn = lines.find((l) => l.level === 'warn');
    expect(warn).toMatchObject({
      node: 'gpu-node-1',
      requestId: 'diag-1:gpu-node-1',
      url: expect.stringContaining(`http://127.0.0.1:${s.port}/v1/snapshot?`) as unknown,
    });
  });

  it('reports a refused connection as Unreachable', async () => {
    const s = await stub((_q, r) => sendJson(r, 200, {}));
    await s.close();
    stubs.length = 0;
    const outcome = await fetchSnapshot(request(s));
    expect(outcome).toMatchObject({ kind: 'Unreachable', transient: true, code: 'ECONNREFUSED' });
  });

  it('times out at the deadline, waiting for headers or mid-body', async () => {
    const silentServer = await stub(() => undefined);
    let t0 = Date.now();
    const noHeaders = await fetchSnapshot(request(silentServer, { timeoutMs: 150 }));
    expect(Date.now() - t0).toBeLessThan(1_000);
    expect(noHeaders).toMatchObject({
      kind: 'Timeout',
      cancelled: false,
      message: 'no complete answer within 150 ms (waiting for headers)',
    });

    const slowBody = await stub((_q, r) => {
      r.writeHead(200, { 'Content-Length': 100 });
      r.write('{"a":');
    });
    t0 = Date.now();
    const midBody = await fetchSnapshot(request(slowBody, { timeoutMs: 150 }));
    expect(Date.now() - t0).toBeLessThan(1_000);
    expect(midBody).toMatchObject({ kind: 'Timeout', message: 'no complete answer within 150 ms (5 body bytes read)' });
  });

  it('resolves promptly when the signal aborts', async () => {
    const s = await stub(() => undefined);
    const controller = new AbortController();
    const pending = fetchSnapshot(request(s, { signal: controller.signal, timeoutMs: 30_000 }));
    await delay(50);
    const t0 = Date.now();
    controller.abort(new Error('diagnostic deleted'));
    expect(await pending).toMatchObject({ kind: 'Timeout', cancelled: true, message: 'cancelled: diagnostic deleted' });
    expect(Date.now() - t0).toBeLessThan(200);
    expect(await fetchSnapshot(request(s, { signal: controller.signal }))).toMatchObject({ kind: 'Timeout', cancelled: true });
  });

  it('turns a request that cannot be built into an Error, not a throw', async () => {
    const s = await stub((_q, r) => sendJson(r, 200, {}));
    const outcome = await fetchSnapshot(request(s, { token: 'bad\ntoken' }));
    expect(outcome).toMatchObject({ kind: 'Error', transient: false });
    expect(outcome.kind !== 'Succeeded' && outcome.message).toContain('cannot build the request');
  });
});

describe('classifyHttpStatus', () => {
  it.each([
    [400, false],
    [401, false],
    [403, false],
    [404, false],
    [413, false],
    [429, true],
    [500, false],
    [502, true],
    [503, true],
    [504, true],
  ])('HTTP %i transient=%s', (status, transient) => {
    expect(classifyHttpStatus(status, '')).toMatchObject({ kind: 'Error', status, transient });
  });
});
