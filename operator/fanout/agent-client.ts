/**
 * One GET /v1/snapshot to one agent over node:http(s), with a deadline, a body bound and
 * schema validation. Every response stream is consumed or destroyed; failures become a typed
 * outcome (never a throw) that says whether retrying could help.
 */
import http from 'node:http';
import https from 'node:https';
import tls from 'node:tls';
import { cpuSlices } from '../../lib/cpu-slices.js';
import type { Logger } from '../../lib/logger.js';
import type { DiagnosticCheck, NodeSnapshotDocument } from '../../agent/api/snapshot-document.js';
import { validateSnapshotDocument } from '../../agent/api/validate-snapshot.js';

/**
 * Default bound on a snapshot body: ten times a full 8-GPU snapshot with every check (about
 * 24 KiB). The bound times the fan-out concurrency is the most the operator buffers at once
 * (docs/operations.md, bench/fanout-memory-bench.ts).
 */
export const DEFAULT_MAX_BODY_BYTES = 256 * 1024;
/** Bound on an error body read for its `error` text. */
const MAX_ERROR_BODY_BYTES = 16 * 1024;
/** Longest error text taken from an agent's answer. */
const MAX_MESSAGE_CHARS = 300;
/** Network error codes that mean "could not talk to the agent" (all worth a retry). */
const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EHOSTDOWN',
  'ENETDOWN',
  'ETIMEDOUT',
  'EPIPE',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EADDRNOTAVAIL',
  'ECONNABORTED',
]);
/** Error codes of a failed TLS handshake or certificate verification (OpenSSL verify codes and Node's ERR_TLS_ / ERR_SSL_). */
const TLS_FAILURE = /^(ERR_TLS_|ERR_SSL_|EPROTO$)|CERT|SELF_SIGNED|UNABLE_TO_|SIGNATURE|HOSTNAME_MISMATCH|INVALID_CA|PATH_LENGTH/;
/** HTTP statuses worth a retry. */
const TRANSIENT_STATUSES = new Set([429, 502, 503, 504]);

/** The classified result of one request. `transient` failures may be retried and count for the circuit breaker. */
export type FetchOutcome =
  | { kind: 'Succeeded'; snapshot: NodeSnapshotDocument }
  | { kind: 'Timeout'; message: string; transient: true; cancelled: boolean }
  | { kind: 'Unreachable'; message: string; transient: true; code?: string }
  | { kind: 'Error'; message: string; transient: boolean; status?: number };

/** Options for a shared connection pool to the agents. */
export interface ConnectionPoolOptions {
  scheme: 'http' | 'https';
  /** Most concurrent sockets per agent address and in total. */
  maxSockets: number;
  /** CA bundle that signed the agents' serving certificates (https). */
  caPem?: string;
  /** Name the agents' certificates carry, when it is not the Pod IP (https). */
  tlsServerName?: string;
}

/** A keep-alive http(s).Agent bounded to `maxSockets`, to share across one or more fan-outs. */
export function createConnectionPool(options: ConnectionPoolOptions): http.Agent {
  const common = {
    keepAlive: true,
    maxSockets: options.maxSockets,
    maxTotalSockets: options.maxSockets,
    maxFreeSockets: Math.min(options.maxSockets, 256),
    scheduling: 'lifo' as const,
  };
  if (options.scheme === 'http') return new http.Agent(common);
  const serverName = options.tlsServerName;
  return new https.Agent({
    ...common,
    ...(options.caPem !== undefined ? { ca: options.caPem } : {}),
    ...(serverName !== undefined
      ? {
          servername: serverName,
          checkServerIdentity: (_host: string, cert: tls.PeerCertificate) => tls.checkServerIdentity(serverName, cert),
        }
      : {}),
  });
}

/** One snapshot request. `connections` must match `scheme` (see createConnectionPool). */
export interface FetchSnapshotRequest {
  node: string;
  ip: string;
  port: number;
  scheme: 'http' | 'https';
  connections: http.Agent;
  token: string;
  checks: readonly DiagnosticCheck[];
  xidSince: Date;
  requestId: string;
  timeoutMs: number;
  signal: AbortSignal;
  maxBodyBytes?: number;
  logger: Logger;
}

/** Removes control characters and bounds untrusted text before it goes into a message. */
export function sanitizeText(text: string, max = MAX_MESSAGE_CHARS): string {
  // eslint-disable-next-line no-control-regex
  const clean = text.replace(/[\u0000-\u001f\u007f-\u009f]+/g, ' ').trim();
  return clean.length > max ? `${clean.slice(0, max)}...` : clean;
}

/** The URL of a snapshot request (for logs; the request itself uses host/port options). */
export function snapshotUrl(
  scheme: 'http' | 'https',
  ip: string,
  port: number,
  checks: readonly DiagnosticCheck[],
  xidSince: Date,
): string {
  const host = ip.includes(':') ? `[${ip}]` : ip;
  const query = new URLSearchParams({ checks: checks.join(','), xidSince: xidSince.toISOString() });
  return `${scheme}://${host}:${port}/v1/snapshot?${query.toString()}`;
}

/** Classifies a request-level error (no response yet) into an outcome. */
export function classifyNetworkError(err: unknown): FetchOutcome {
  const e = err as (Error & { code?: string }) | undefined;
  const code = typeof e?.code === 'string' ? e.code : undefined;
  const message = e instanceof Error ? e.message : String(err);
  if (code !== undefined && TLS_FAILURE.test(code)) {
    return { kind: 'Error', message: `TLS handshake with the agent failed: ${sanitizeText(message)}`, transient: false };
  }
  if (code === undefined || NETWORK_CODES.has(code) || message === 'socket hang up') {
    return {
      kind: 'Unreachable',
      message: `cannot reach the agent: ${sanitizeText(message)}`,
      transient: true,
      ...(code !== undefined ? { code } : {}),
    };
  }
  return { kind: 'Unreachable', message: `cannot reach the agent (${code}): ${sanitizeText(message)}`, transient: true, code };
}

/** Turns a non-200 answer into an Error outcome, quoting the agent's JSON `error` text when present. */
export function classifyHttpStatus(status: number, body: string): FetchOutcome {
  let detail = '';
  try {
    const parsed = JSON.parse(body) as { error?: unknown };
    if (typeof parsed?.error === 'string') detail = parsed.error;
  } catch {
    // A non-JSON error body (a proxy's HTML page, a truncated answer): quote its start instead.
    detail = body.length > 0 ? `non-JSON body: ${body.slice(0, 80)}` : 'empty body';
  }
  const text = detail === '' ? '' : `: ${sanitizeText(detail)}`;
  return { kind: 'Error', message: `agent answered HTTP ${status}${text}`, transient: TRANSIENT_STATUSES.has(status), status };
}

/** Parses and validates a 200 body for `node`; the raw text is not kept. */
export function parseSnapshotBody(node: string, body: string): FetchOutcome {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch (err) {
    return {
      kind: 'Error',
      message: `agent answered invalid JSON: ${sanitizeText(err instanceof Error ? err.message : String(err), 120)}`,
      transient: false,
    };
  }
  const validation = validateSnapshotDocument(parsed);
  if (!validation.ok)
    return {
      kind: 'Error',
      message: `agent answered an invalid snapshot document: ${sanitizeText(validation.problems.join('; '))}`,
      transient: false,
    };
  if (validation.document.node !== node) {
    return {
      kind: 'Error',
      message: `agent answered a snapshot for node ${JSON.stringify(sanitizeText(validation.document.node, 80))}, expected ${node}`,
      transient: false,
    };
  }
  return { kind: 'Succeeded', snapshot: validation.document };
}

/** Fetches and validates one node's snapshot. Never throws; resolves promptly when `signal` aborts or the deadline passes. */
export async function fetchSnapshot(request: FetchSnapshotRequest): Promise<FetchOutcome> {
  const { node, requestId, signal } = request;
  const url = snapshotUrl(request.scheme, request.ip, request.port, request.checks, request.xidSince);
  const log = request.logger.child({ node, url, requestId });
  const maxBody = request.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  if (signal.aborted)
    return { kind: 'Timeout', message: `cancelled before the request: ${reasonText(signal)}`, transient: true, cancelled: true };
  if (request.timeoutMs <= 0)
    return { kind: 'Timeout', message: 'per-node deadline passed before the request', transient: true, cancelled: false };

  return new Promise<FetchOutcome>((resolve) => {
    let settled = false;
    let phase: 'connecting' | 'reading' = 'connecting';
    let received = 0;
    const started = Date.now();
    const transport = request.scheme === 'https' ? https : http;
    let req: http.ClientRequest;
    try {
      req = transport.request({
        host: request.ip,
        port: request.port,
        method: 'GET',
        path: url.slice(url.indexOf('/v1/snapshot')),
        agent: request.connections,
        headers: { Authorization: `Bearer ${request.token}`, 'X-Request-Id': requestId, Accept: 'application/json' },
      });
    } catch (err) {
      // Thrown synchronously for a bad port or a header value with forbidden characters.
      log.warn('cannot build the snapshot request', { error: err instanceof Error ? err.message : String(err) });
      resolve({
        kind: 'Error',
        message: `cannot build the request: ${sanitizeText(err instanceof Error ? err.message : String(err), 160)}`,
        transient: false,
      });
      return;
    }

    const finish = (outcome: FetchOutcome): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
      if (outcome.kind !== 'Succeeded')
        log.debug('snapshot request failed', { kind: outcome.kind, message: outcome.message, durationMs: Date.now() - started });
      resolve(outcome);
    };
    const onTimeout = (): void => {
      finish({
        kind: 'Timeout',
        message:
          `no complete answer within ${request.timeoutMs} ms ` +
          `(${phase === 'connecting' ? 'waiting for headers' : `${received} body bytes read`})`,
        transient: true,
        cancelled: false,
      });
      req.destroy(new Error('per-node deadline passed'));
    };
    const onAbort = (): void => {
      finish({ kind: 'Timeout', message: `cancelled: ${reasonText(signal)}`, transient: true, cancelled: true });
      req.destroy(new Error('request cancelled'));
    };
    const timer = setTimeout(onTimeout, request.timeoutMs);
    signal.addEventListener('abort', onAbort, { once: true });

    req.on('error', (err: Error & { code?: string }) => {
      if (settled) {
        // Destroyed by our own deadline or cancellation: already reported.
        log.debug('request closed after its outcome was decided', { error: err.message });
        return;
      }
      finish(classifyNetworkError(err));
    });

    req.on('response', (res) => {
      phase = 'reading';
      const status = res.statusCode ?? 0;
      const limit = status === 200 ? maxBody : MAX_ERROR_BODY_BYTES;
      const declared = Number(res.headers['content-length'] ?? NaN);
      if (status === 200 && Number.isFinite(declared) && declared > limit) {
        finish({
          kind: 'Error',
          message: `agent answered a body of ${declared} bytes, over the ${limit} byte limit`,
          transient: false,
          status,
        });
        res.destroy();
        return;
      }
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => {
        if (settled) return;
        received += chunk.length;
        if (received > limit) {
          // An error body only matters for its first bytes; a snapshot over the bound is refused.
          // Decide first: destroying the stream emits 'aborted' synchronously.
          finish(
            status === 200
              ? { kind: 'Error', message: `agent answered a body over the ${limit} byte limit`, transient: false, status }
              : classifyHttpStatus(status, Buffer.concat(chunks).toString('utf8')),
          );
          res.destroy();
          return;
        }
        chunks.push(chunk);
      });
      res.on('error', (err: Error & { code?: string }) => {
        if (settled) {
          log.debug('response stream closed after its outcome was decided', { error: err.message });
          return;
        }
        log.warn('connection failed while reading the agent response body', {
          status,
          receivedBytes: received,
          error: err.message,
          code: err.code,
        });
        finish({
          kind: 'Error',
          message:
            `connection failed after HTTP ${status} while reading the body (${received} bytes read): ` +
            `${sanitizeText(err.message, 120)}`,
          transient: true,
          status,
        });
      });
      res.on('aborted', () => {
        if (settled) return;
        log.warn('agent connection closed mid-body', { status, receivedBytes: received });
        finish({
          kind: 'Error',
          message: `connection closed after HTTP ${status} while reading the body (${received} bytes read)`,
          transient: true,
          status,
        });
      });
      res.on('end', () => {
        if (settled) return;
        if (!res.complete) {
          log.warn('agent connection closed mid-body', { status, receivedBytes: received });
          finish({
            kind: 'Error',
            message: `connection closed after HTTP ${status} while reading the body (${received} bytes read)`,
            transient: true,
            status,
          });
          return;
        }
        const body = Buffer.concat(chunks);
        chunks.length = 0;
        if (status !== 200) {
          finish(classifyHttpStatus(status, body.toString('utf8')));
          return;
        }
        // Parsing and validating a snapshot is the costly part of an answer: it takes its turn in
        // the process's slices, so a burst of answers does not stall the event loop. The caller's
        // scoring runs in the same turn (promise continuations), so the parsed document dies
        // young; the body waits as a Buffer, outside the JavaScript heap.
        cpuSlices
          .run(() => parseSnapshotBody(node, body.toString('utf8')))
          .then(finish, (err: unknown) =>
            finish({ kind: 'Error', message: `cannot read the snapshot: ${sanitizeText(String(err), 120)}`, transient: false }),
          );
      });
    });
    req.end();
  });
}

function reasonText(signal: AbortSignal): string {
  const reason: unknown = signal.reason;
  // DOMException (AbortSignal.timeout) is not an Error subclass on Node 20.
  if (typeof reason === 'object' && reason !== null && typeof (reason as { message?: unknown }).message === 'string')
    return sanitizeText((reason as { message: string }).message, 120);
  return reason === undefined ? 'aborted' : sanitizeText(String(reason), 120);
}
