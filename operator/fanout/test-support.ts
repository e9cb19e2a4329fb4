/** Test helpers for the fan-out: stub agents on loopback that count in-flight requests, and a minimal valid snapshot. */
import http from 'node:http';
import { Writable } from 'node:stream';
import winston from 'winston';
import type { AddressInfo } from 'node:net';
import { SNAPSHOT_API_VERSION, SNAPSHOT_KIND, type NodeSnapshotDocument } from '../../agent/api/snapshot-document.js';
import { close, listen } from '../../lib/http/server.js';
import type { Logger } from '../../lib/logger.js';

/** A minimal schema-valid snapshot (no-GPU mode) for `node`. */
export function minimalSnapshot(node: string, now = new Date()): NodeSnapshotDocument {
  return {
    apiVersion: SNAPSHOT_API_VERSION,
    kind: SNAPSHOT_KIND,
    node,
    collectedAt: now.toISOString(),
    checks: ['health', 'xid'],
    nvml: { available: false, reason: 'no NVML library (test stub)' },
    gpus: [],
    errors: [],
    xid: { since: new Date(now.getTime() - 3_600_000).toISOString(), events: [], truncated: 0 },
    agent: {
      version: '0.1.0',
      startedAt: now.toISOString(),
      mode: 'no-gpu',
      xidSources: { kmsg: { running: true, path: '/dev/kmsg', records: 0, lost: 0 }, nvmlEvents: { running: false } },
    },
  };
}

/** Answers one request (`res.socket.destroy()` resets the connection). */
export type StubHandler = (req: http.IncomingMessage, res: http.ServerResponse) => unknown;

/** A running stub agent with request accounting. */
export interface StubAgent {
  host: string;
  port: number;
  /** Requests received so far. */
  requests: number;
  /** TCP connections accepted so far (keep-alive reuse shows as fewer connections than requests). */
  connections: number;
  /** Most requests open at the same time. */
  peakInFlight: number;
  /** Headers of the last request. */
  lastHeaders: http.IncomingHttpHeaders | undefined;
  /** Path (with query) of the last request. */
  lastPath: string | undefined;
  close(): Promise<void>;
}

/** Starts a stub HTTP server on `host` (a 127.0.0.0/8 address) and an ephemeral port. */
export async function startStubAgent(handler: StubHandler, host = '127.0.0.1'): Promise<StubAgent> {
  if (!host.startsWith('127.')) throw new Error(`stub agents bind loopback only, got ${host}`);
  let inFlight = 0;
  const server = http.createServer((req, res) => {
    stub.requests += 1;
    stub.lastHeaders = req.headers;
    stub.lastPath = req.url;
    inFlight += 1;
    stub.peakInFlight = Math.max(stub.peakInFlight, inFlight);
    res.on('close', () => (inFlight -= 1));
    req.resume();
    Promise.resolve(handler(req, res)).catch((err: unknown) => {
      res.destroy(err instanceof Error ? err : new Error(String(err)));
    });
  });
  server.on('connection', () => (stub.connections += 1));
  const address: AddressInfo = await listen(server, 0, host);
  const stub: StubAgent = {
    host,
    port: address.port,
    requests: 0,
    connections: 0,
    peakInFlight: 0,
    lastHeaders: undefined,
    lastPath: undefined,
    close: () => close(server, 100),
  };
  return stub;
}

/** Answers `body` as JSON with `status`. */
export function sendJson(res: http.ServerResponse, status: number, body: unknown): void {
  const payload = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(payload) });
  res.end(payload);
}

/** A JSON logger at debug level whose lines are kept in `lines` (parsed). */
export function captureLogger(): { logger: Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, callback): void {
      lines.push(JSON.parse(chunk.toString('utf8')) as Record<string, unknown>);
      callback();
    },
  });
  const logger = winston.createLogger({
    level: 'debug',
    format: winston.format.json(),
    transports: [new winston.transports.Stream({ stream })],
  });
  return { logger, lines };
}
