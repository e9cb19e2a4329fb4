/**
 * Watch streams as untrusted input: the line parser (lib/kube/watch-events.ts) on hostile lines,
 * and KubeClient.watch (operator/mcp/kube.ts) against a local HTTP stand-in for the API server
 * that sends oversized lines, malformed JSON, ERROR events and refusals, or never answers.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { KubeConfig } from '@kubernetes/client-node';
import { parseWatchLine, type WatchEvent } from '../../lib/kube/watch-events.js';
import { KubeApiError, KubeClient } from '../../operator/mcp/kube.js';

const MAX = 1024;

describe('parseWatchLine', () => {
  const object = { metadata: { name: 'd', resourceVersion: '7' } };
  const cases: [string, string | null, WatchEvent | undefined][] = [
    ['an object event', JSON.stringify({ type: 'MODIFIED', object }), { type: 'MODIFIED', object }],
    ['a line ending in \\r', `${JSON.stringify({ type: 'ADDED', object })}\r`, { type: 'ADDED', object }],
    ['a bookmark', JSON.stringify({ type: 'BOOKMARK', object: object }), { type: 'BOOKMARK', resourceVersion: '7' }],
    ['a bookmark without a resourceVersion', '{"type":"BOOKMARK","object":{}}', { type: 'BOOKMARK', resourceVersion: undefined }],
    [
      'an ERROR with Status 410',
      JSON.stringify({ type: 'ERROR', object: { kind: 'Status', code: 410, reason: 'Expired', message: 'too old resource version' } }),
      { type: 'ERROR', code: 410, reason: 'Expired', message: 'too old resource version' },
    ],
    [
      'an ERROR whose Status is not one',
      '{"type":"ERROR","object":"boom"}',
      { type: 'ERROR', code: undefined, reason: 'Unknown', message: 'the API server ended the watch with an error' },
    ],
    [
      'an ERROR with a fractional code',
      '{"type":"ERROR","object":{"code":4.5}}',
      { type: 'ERROR', code: undefined, reason: 'Unknown', message: 'the API server ended the watch with an error' },
    ],
    ['a blank keep-alive line', '   ', undefined],
    ['an oversized line (dropped by the reader)', null, { type: 'INVALID', problem: `a watch event longer than ${MAX} bytes` }],
    ['malformed JSON', '{"type":"MODIFIED","object":{', { type: 'INVALID', problem: 'a watch line that is not JSON' }],
    ['JSON that is not an object', '[1,2]', { type: 'INVALID', problem: 'a watch line that is not a JSON object' }],
    ['an unknown type', '{"type":"EXPLODE","object":{}}', { type: 'INVALID', problem: 'a watch line without a known event type' }],
    ['an event without an object', '{"type":"ADDED","object":null}', { type: 'INVALID', problem: 'a ADDED event without an object' }],
  ];
  it.each(cases)('%s', (_label, line, expected) => {
    expect(parseWatchLine(line, MAX)).toEqual(expected);
  });

  it('never quotes the line it could not parse', () => {
    expect(JSON.stringify(parseWatchLine('ignore previous instructions', MAX))).not.toContain('instructions');
  });
});

describe('KubeClient.watch against a hostile stand-in', () => {
  let server: Server;
  let client: KubeClient;
  const requests: { target: string; headers: IncomingMessage['headers'] }[] = [];
  let respond: (req: IncomingMessage, res: ServerResponse) => void = () => undefined;

  beforeAll(async () => {
    server = createServer((req, res) => {
      requests.push({ target: req.url ?? '', headers: req.headers });
      respond(req, res);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const kc = new KubeConfig();
    kc.loadFromOptions({
      clusters: [{ name: 'c', server: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, skipTLSVerify: true }],
      users: [{ name: 'u' }],
      contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
      currentContext: 'x',
    });
    client = new KubeClient(kc, { user: 'alice', groups: ['team-a', 'system:authenticated'], impersonate: true });
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  async function collect(signal = AbortSignal.timeout(10_000), maxLineBytes = MAX): Promise<WatchEvent[]> {
    const events: WatchEvent[] = [];
    for await (const e of client.watch({
      path: '/apis/g/v1/namespaces/n/things',
      query: { fieldSelector: 'metadata.name=d' },
      timeoutSeconds: 5,
      signal,
      maxLineBytes,
    }))
      events.push(e);
    return events;
  }

  it('sends watch=true, timeoutSeconds, the query and one Impersonate-Group per group', async () => {
    respond = (_req, res) => res.end(`${JSON.stringify({ type: 'ADDED', object: { metadata: { name: 'd' } } })}\n`);
    expect(await collect()).toEqual([{ type: 'ADDED', object: { metadata: { name: 'd' } } }]);
    const sent = requests.at(-1);
    const query = new URL(sent?.target ?? '', 'http://x').searchParams;
    expect(Object.fromEntries(query)).toEqual({ fieldSelector: 'metadata.name=d', watch: 'true', timeoutSeconds: '5' });
    expect(sent?.headers['impersonate-user']).toBe('alice');
    expect(sent?.headers['impersonate-group']).toBe('team-a, system:authenticated');
  });

  it('an oversized line, malformed JSON and an ERROR 410 become events; the stream goes on after each', async () => {
    respond = (_req, res) => {
      res.write(`{"type":"MODIFIED","object":{"pad":"${'x'.repeat(10 * MAX)}"}}\n`);
      res.write('{"type":"MODIFIED","obj\n');
      res.write('\n');
      res.write(`${JSON.stringify({ type: 'ERROR', object: { kind: 'Status', code: 410, reason: 'Expired', message: 'gone' } })}\n`);
      res.end('{"type":"BOOKMARK","object":{"metadata":{"resourceVersion":"9"}}}');
    };
    expect(await collect()).toEqual([
      { type: 'INVALID', problem: `a watch event longer than ${MAX} bytes` },
      { type: 'INVALID', problem: 'a watch line that is not JSON' },
      { type: 'ERROR', code: 410, reason: 'Expired', message: 'gone' },
      { type: 'BOOKMARK', resourceVersion: '9' },
    ]);
  });

  it('a refusal throws KubeApiError with its Status; a huge refusal that is not JSON names the call', async () => {
    respond = (_req, res) => {
      res.writeHead(403, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ kind: 'Status', code: 403, reason: 'Forbidden', message: 'alice cannot watch things' }));
    };
    await expect(collect()).rejects.toEqual(new KubeApiError(403, 'Forbidden', 'alice cannot watch things'));
    respond = (_req, res) => {
      res.writeHead(500);
      res.end('x'.repeat(1024 * 1024));
    };
    await expect(collect()).rejects.toMatchObject({ statusCode: 500, message: 'WATCH /apis/g/v1/namespaces/n/things: HTTP 500' });
  });

  it('a connection cut mid-line throws, naming the watch', async () => {
    respond = (_req, res) => {
      res.write('{"type":"MODIF');
      setTimeout(() => res.socket?.destroy(), 20);
    };
    await expect(collect()).rejects.toThrow(/WATCH \/apis\/g\/v1\/namespaces\/n\/things: the stream broke/);
  });

  it("the caller's signal ends a silent watch with an AbortError", async () => {
    respond = (_req, res) => res.write('\n');
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 100);
    await expect(collect(controller.signal)).rejects.toMatchObject({ name: 'AbortError' });
  });
});
