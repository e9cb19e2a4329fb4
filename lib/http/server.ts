/**
 * HTTP(S) servers that no request can end: one guard around every listener parses the request
 * target safely, refuses oversized bodies, and turns any handler error, synchronous or not,
 * into a 500 answer plus a log line; timeouts bound slow clients; a server error after bind is
 * logged, not fatal. Start resolves only once the socket is bound.
 */
import http, { type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import https from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { errorFields, type Logger } from '../logger.js';
import { parseRequestTarget, type RequestTarget } from './request-target.js';

/** How long a client may take; each bound closes the connection when it passes. */
export interface ServerTimeouts {
  /** The request head must arrive within this (slowloris). */
  headersMs: number;
  /** The whole request, head and body, must arrive within this. */
  requestMs: number;
  /** An idle keep-alive connection is closed after this. */
  keepAliveMs: number;
  /** A socket without traffic in either direction is closed after this. */
  idleMs: number;
}

/** Defaults for a server whose answers come within seconds. */
export const DEFAULT_SERVER_TIMEOUTS: Readonly<ServerTimeouts> = Object.freeze({
  headersMs: 10_000,
  requestMs: 30_000,
  keepAliveMs: 5_000,
  idleMs: 120_000,
});
/** How often Node checks the head and request timeouts of open connections. */
const TIMEOUT_CHECK_INTERVAL_MS = 1_000;
/** Most request headers parsed; the rest are dropped by Node. */
const MAX_HEADERS_COUNT = 64;
/** Longest request path quoted in a log line. */
const MAX_LOGGED_PATH = 120;

/** Serves one request whose target was parsed; may throw or reject (the guard answers 500). */
export type GuardedHandler = (req: IncomingMessage, res: ServerResponse, target: RequestTarget) => void | Promise<void>;

/** Options of {@link createGuardedServer}. */
export interface GuardedServerOptions {
  /** Listener name in log lines, e.g. `agent-api`. */
  name: string;
  logger: Logger;
  handler: GuardedHandler;
  /** Serve HTTPS with this certificate and key. */
  tls?: { cert: Buffer | string; key: Buffer | string };
  timeouts?: Partial<ServerTimeouts>;
  /** Largest request body a client may declare; 0 refuses every body, chunked ones included. */
  maxBodyBytes: number;
  /** Most open connections; further ones are refused by the kernel backlog's owner (Node closes them). */
  maxConnections?: number;
}

/** Writes a small JSON error answer and closes the connection when asked. */
export function sendError(res: ServerResponse, status: number, message: string, close = false): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const payload = JSON.stringify({ error: message });
  res.writeHead(status, {
    'Content-Type': 'application/json',
    'Content-Length': Buffer.byteLength(payload),
    'Cache-Control': 'no-store',
    ...(close ? { Connection: 'close' } : {}),
  });
  res.end(payload);
}

/** The request path for a log line: bounded, so a 64 KiB target cannot flood the log. */
function loggedPath(req: IncomingMessage): string {
  const url = req.url ?? '';
  return url.length > MAX_LOGGED_PATH ? `${url.slice(0, MAX_LOGGED_PATH)}...` : url;
}

/** A declared or chunked body over the limit, as the 413 message; undefined when acceptable. */
function bodyRefusal(req: IncomingMessage, maxBodyBytes: number): string | undefined {
  const declared = Number(req.headers['content-length'] ?? '0');
  const chunked = req.headers['transfer-encoding'] !== undefined;
  if (maxBodyBytes === 0 && (chunked || declared > 0)) return 'request bodies are not accepted';
  if (declared > maxBodyBytes) return `request body larger than ${maxBodyBytes} bytes`;
  return undefined;
}

/** Wraps `handler` in the guard: safe target, body bound, and every error answered and logged. */
export function guardRequests(
  options: Pick<GuardedServerOptions, 'name' | 'logger' | 'handler' | 'maxBodyBytes'>,
): (req: IncomingMessage, res: ServerResponse) => void {
  const { logger, handler, name } = options;
  const fail = (req: IncomingMessage, res: ServerResponse, err: unknown): void => {
    logger.error('request handler failed', { listener: name, method: req.method, path: loggedPath(req), ...errorFields(err) });
    sendError(res, 500, 'internal error');
  };
  return (req, res) => {
    // A stream error without a listener would be thrown; the guard owns both streams.
    req.on('error', (err) => logger.debug('request stream failed', { listener: name, ...errorFields(err) }));
    res.on('error', (err) => logger.debug('response stream failed', { listener: name, ...errorFields(err) }));
    const parsed = parseRequestTarget(req.url);
    if (!parsed.ok) {
      logger.debug('request target refused', { listener: name, status: parsed.refusal.status, reason: parsed.refusal.message });
      sendError(res, parsed.refusal.status, parsed.refusal.message, true);
      return;
    }
    const tooLarge = bodyRefusal(req, options.maxBodyBytes);
    if (tooLarge !== undefined) {
      sendError(res, 413, `${tooLarge} (limit ${options.maxBodyBytes} bytes)`, true);
      return;
    }
    try {
      const pending = handler(req, res, parsed.target);
      if (pending !== undefined) pending.then(undefined, (err: unknown) => fail(req, res, err));
    } catch (err) {
      fail(req, res, err);
    }
  };
}

/** Answers a request Node could not parse (bad head, oversized headers, head timeout) and closes. */
function answerClientError(name: string, logger: Logger, err: Error & { code?: string }, socket: Socket): void {
  logger.debug('malformed request refused', { listener: name, code: err.code, ...errorFields(err) });
  if (err.code === 'ECONNRESET' || !socket.writable) {
    socket.destroy();
    return;
  }
  const status =
    err.code === 'HPE_HEADER_OVERFLOW'
      ? '431 Request Header Fields Too Large'
      : err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? '408 Request Timeout'
        : '400 Bad Request';
  // Destroy once written: a half-closed socket would keep parsing what the client still sends.
  socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`, () => socket.destroy());
}

/** Creates an HTTP or HTTPS server with the guard, the timeouts and post-bind error logging. */
export function createGuardedServer(options: GuardedServerOptions): Server {
  const t = { ...DEFAULT_SERVER_TIMEOUTS, ...options.timeouts };
  const settings = {
    headersTimeout: t.headersMs,
    requestTimeout: t.requestMs,
    keepAliveTimeout: t.keepAliveMs,
    connectionsCheckingInterval: TIMEOUT_CHECK_INTERVAL_MS,
  };
  const listener = guardRequests(options);
  const server: Server =
    options.tls === undefined
      ? http.createServer(settings, listener)
      : https.createServer({ ...settings, cert: options.tls.cert, key: options.tls.key }, listener);
  server.maxHeadersCount = MAX_HEADERS_COUNT;
  server.setTimeout(t.idleMs);
  if (options.maxConnections !== undefined) server.maxConnections = options.maxConnections;
  server.on('clientError', (err: Error & { code?: string }, socket: Socket) =>
    answerClientError(options.name, options.logger, err, socket),
  );
  // A TLS handshake that fails never becomes a request: log it, drop the socket.
  server.on('tlsClientError', (err: Error, socket: Socket) => {
    options.logger.debug('TLS handshake failed', { listener: options.name, ...errorFields(err) });
    socket.destroy();
  });
  server.once('listening', () => {
    server.on('error', (err) => options.logger.error('server error', { listener: options.name, ...errorFields(err) }));
  });
  return server;
}

/**
 * Listens and resolves with the bound address only on `listening`; rejects on `error`
 * (EADDRINUSE, EACCES...). Nothing may report "ready" before this resolves.
 */
export async function listen(server: Server, port: number, host: string): Promise<AddressInfo> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error): void => {
      server.off('listening', onListening);
      reject(new Error(`cannot listen on ${host}:${port}`, { cause: err }));
    };
    const onListening = (): void => {
      server.off('error', onError);
      resolve(server.address() as AddressInfo);
    };
    server.once('error', onError);
    server.once('listening', onListening);
    server.listen(port, host);
  });
}

/** Stops accepting connections, waits for in-flight requests up to graceMs, then closes the rest. */
export async function close(server: Server, graceMs = 5_000): Promise<void> {
  if (!server.listening) return;
  const closed = new Promise<void>((resolve, reject) => server.close((err) => (err ? reject(err) : resolve())));
  server.closeIdleConnections();
  const timer = setTimeout(() => server.closeAllConnections(), graceMs);
  try {
    await closed;
  } finally {
    clearTimeout(timer);
  }
}
