/**
 * The guard every listener sits behind (lib/http/server.ts): request targets parsed without
 * throwing, bodies refused over the limit, any handler error — thrown or rejected — answered
 * 500 with one log line, and a server error after bind logged instead of ending the process.
 */
import { connect } from 'node:net';
import { PassThrough } from 'node:stream';
import { afterEach, describe, expect, it } from '@jest/globals';
import type { Server } from 'node:http';
import { close, createGuardedServer, listen, type GuardedHandler } from '../../lib/http/server.js';
import { parseRequestTarget } from '../../lib/http/request-target.js';
import { createLogger } from '../../lib/logger.js';

const servers: Server[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await close(s, 100);
});

async function start(
  handler: GuardedHandler,
  maxBodyBytes = 0,
): Promise<{ port: number; server: Server; log: () => Record<string, unknown>[] }> {
  const stream = new PassThrough();
  let text = '';
  stream.on('data', (c: Buffer) => (text += c.toString()));
  const server = createGuardedServer({ name: 'test', logger: createLogger({ level: 'debug', stream }), handler, maxBodyBytes });
  servers.push(server);
  const { port } = await listen(server, 0, '127.0.0.1');
  return {
    port,
    server,
    log: () =>
      text
        .split('\n')
        .filter((l) => l !== '')
        .map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}

/** Sends raw bytes, resolves with the status code of the answer. */
async function raw(port: number, request: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port }, () => socket.write(request));
    let text = '';
    socket.on('data', (c: Buffer) => {
      text += c.toString('latin1');
      const m = /^HTTP\/1\.1 (\d{3})/.exec(text);
      if (m !== null) {
        socket.destroy();
        resolve(Number(m[1]));
      }
    });
    socket.on('error', reject);
  });
}

describe('parseRequestTarget', () => {
  it.each([
    ['/healthz', { path: '/healthz', query: '' }],
    ['/v1/snapshot?checks=health&xidSince=%zz', { path: '/v1/snapshot', query: 'checks=health&xidSince=%25zz' }],
    ['//', { path: '//', query: '' }],
    ['//x/y?a', { path: '//x/y', query: 'a=' }],
    ['http://x/healthz?a=1', { path: '/healthz', query: 'a=1' }],
    ['http://x', { path: '/', query: '' }],
    ['/%', { path: '/%', query: '' }],
  ])('serves %j', (target, expected) => {
    const parsed = parseRequestTarget(target);
    expect(parsed.ok ? { path: parsed.target.path, query: parsed.target.query.toString() } : parsed.refusal).toEqual(expected);
  });

  it.each<[string, number, string | undefined]>([
    ['no target', 400, undefined],
    ['an empty target', 400, ''],
    ['*', 400, '*'],
    ['x:443', 400, 'x:443'],
    ['http://', 400, 'http://'],
    ['ftp://x/', 400, 'ftp://x/'],
    ['%zz', 400, '%zz'],
    ['/a b', 400, '/a b'],
    ['a NUL byte', 400, '/a\u0000'],
    ['9,000 characters', 414, `/${'a'.repeat(9000)}`],
  ])('refuses %s with %i, never throwing', (_what, status, target) => {
    const parsed = parseRequestTarget(target);
    expect(parsed.ok ? 200 : parsed.refusal.status).toBe(status);
  });
});

describe('createGuardedServer', () => {
  it('answers 500 and logs one line when a handler throws, synchronously or not', async () => {
    const { port, log } = await start((_req, _res, target) => {
      if (target.path === '/sync') throw new Error('sync boom');
      return Promise.reject(new Error('async boom'));
    });
    expect((await fetch(`http://127.0.0.1:${port}/sync`)).status).toBe(500);
    expect((await fetch(`http://127.0.0.1:${port}/async`)).status).toBe(500);
    expect(
      log()
        .filter((l) => l['message'] === 'request handler failed')
        .map((l) => l['error']),
    ).toEqual(['sync boom', 'async boom']);
  });

  it('answers a target the old listeners crashed on, and refuses bodies over the limit', async () => {
    const { port } = await start((_req, res, target) => void res.end(target.path));
    expect(await raw(port, 'GET // HTTP/1.1\r\nHost: x\r\n\r\n')).toBe(200);
    expect(await raw(port, 'GET x:1 HTTP/1.1\r\nHost: x\r\n\r\n')).toBe(400);
    expect(await raw(port, 'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello')).toBe(413);
    expect(await raw(port, 'POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n')).toBe(413);
    expect(await raw(port, 'GET / HTTP/1.1\r\nHost: x\r\nBad Header: x\r\n\r\n')).toBe(400);
  });

  it('logs a server error after bind instead of ending the process', async () => {
    const { port, server, log } = await start((_req, res) => void res.end('ok'));
    server.emit('error', new Error('EMFILE: too many open files'));
    expect((await fetch(`http://127.0.0.1:${port}/`)).status).toBe(200);
    expect(log().some((l) => l['message'] === 'server error' && l['error'] === 'EMFILE: too many open files')).toBe(true);
  });

  it('rejects start when the port is taken', async () => {
    const { port } = await start((_req, res) => void res.end('ok'));
    const second = createGuardedServer({
      name: 'second',
      logger: createLogger({ silent: true }),
      handler: (_req, res) => void res.end(),
      maxBodyBytes: 0,
    });
    await expect(listen(second, port, '127.0.0.1')).rejects.toThrow(/cannot listen on 127.0.0.1/);
  });
});
