/**
 * A local HTTPS stand-in for the API server (a real TLS server with a CA of its own), answering
 * with whatever the test sets and recording every request's method and path: for code that
 * talks to the API server through lib/kube/raw-request, where the real control plane cannot
 * be made to misbehave.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { createControlPlaneCerts } from '../../dev/control-plane/certs.js';
import { ApiServerConnection } from '../../lib/kube/connection.js';

/** A handler of one request. */
export type StandInHandler = (req: IncomingMessage, res: ServerResponse, body: string) => void;

/** A running stand-in. */
export interface ApiServerStandIn {
  url: string;
  /** A lean connection that trusts the stand-in's CA. */
  connection: ApiServerConnection;
  /** `METHOD path` of every request so far. */
  requests: string[];
  /** Answers every request; replace it to change the answers. */
  handler: StandInHandler;
  close(): Promise<void>;
}

/** Writes a JSON answer. */
export function sendJson(res: ServerResponse, code: number, body: unknown): void {
  res.writeHead(code, { 'Content-Type': 'application/json' });
  res.end(JSON.stringify(body));
}

/** Starts a stand-in on 127.0.0.1 that answers 404 until a handler is set. */
export async function startApiServerStandIn(): Promise<ApiServerStandIn> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'gpudiag-api-stand-in-'));
  const certs = await createControlPlaneCerts(dir);
  const [ca, cert, key] = await Promise.all([readFile(certs.caCert, 'utf8'), readFile(certs.servingCert), readFile(certs.servingKey)]);
  const standIn: Omit<ApiServerStandIn, 'url' | 'connection'> = {
    requests: [],
    handler: (_req, res) =>
      sendJson(res, 404, { kind: 'Status', reason: 'NotFound', message: 'the server could not find the requested resource' }),
    close: async () => undefined,
  };
  const server = createServer({ cert, key }, (req, res) => {
    standIn.requests.push(`${req.method ?? ''} ${req.url ?? ''}`);
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => standIn.handler(req, res, Buffer.concat(chunks).toString('utf8')));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const close = async (): Promise<void> => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await rm(dir, { recursive: true, force: true });
  };
  return Object.assign(standIn, { url, connection: new ApiServerConnection({ server: url, ca, token: 'agent-token' }), close });
}
