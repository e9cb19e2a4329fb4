/**
 * The agent's HTTP surface: GET /v1/snapshot (authenticated), /healthz, /readyz, /metrics.
 * Query parameters are validated and a bad one is a 400 that names it.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from '../lib/logger.js';
import { errorFields } from '../lib/logger.js';
import { DIAGNOSTIC_CHECKS, type DiagnosticCheck } from './api/snapshot-document.js';
import type { CallerAuthorizer } from './auth/token-reviewer.js';
import type { AgentMetrics } from './metrics.js';
import type { SnapshotService } from './snapshot-service.js';

/** Checks answered when the request names none. */
export const DEFAULT_SNAPSHOT_CHECKS: readonly DiagnosticCheck[] = ['health', 'xid'];
/** XID window when the request gives no xidSince. */
export const DEFAULT_XID_LOOKBACK_MS = 60 * 60 * 1000;
/** GET requests carry no body; anything larger than this is refused. */
export const MAX_REQUEST_BODY_BYTES = 1024;
const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** A client error that becomes a 4xx JSON answer. */
export class BadRequestError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = 'BadRequestError';
  }
}

/** The validated query of GET /v1/snapshot. */
export interface SnapshotQuery {
  checks: DiagnosticCheck[];
  xidSince: Date;
}

/** Parses and validates the query string of GET /v1/snapshot; throws BadRequestError naming the parameter. */
export function parseSnapshotQuery(params: URLSearchParams, now: Date): SnapshotQuery {
  for (const key of new Set(params.keys())) {
    if (key !== 'checks' && key !== 'xidSince') throw new BadRequestError(400, `unknown query parameter "${key.slice(0, 40)}" (allowed: checks, xidSince)`);
    if (params.getAll(key).length > 1) throw new BadRequestError(400, `query parameter "${key}" given more than once`);
  }
  let checks = [...DEFAULT_SNAPSHOT_CHECKS];
  const rawChecks = params.get('checks');
  if (rawChecks !== null) {
    const names = rawChecks.split(',').map((c) => c.trim());
    const unknown = names.find((c) => !(DIAGNOSTIC_CHECKS as readonly string[]).includes(c));
    if (unknown !== undefined) throw new BadRequestError(400, `query parameter "checks": unknown check "${unknown.slice(0, 40)}" (allowed: ${DIAGNOSTIC_CHECKS.join(', ')})`);
    checks = [...new Set(names as DiagnosticCheck[])];
  }
  let xidSince = new Date(now.getTime() - DEFAULT_XID_LOOKBACK_MS);
  const rawSince = params.get('xidSince');
  if (rawSince !== null) {
    const parsed = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/.test(rawSince) ? new Date(rawSince) : new Date(NaN);
    if (Number.isNaN(parsed.getTime())) throw new BadRequestError(400, `query parameter "xidSince" must be an RFC 3339 time such as 2025-01-05T10:00:00Z`);
    xidSince = parsed;
  }
  return { checks, xidSince };
}

/** Dependencies of the request handler. */
export interface HttpApiDeps {
  snapshots: SnapshotService;
  authorizer: CallerAuthorizer | undefined;
  metrics: AgentMetrics;
  logger: Logger;
  requestTimeoutMs: number;
  readiness: () => { ready: boolean; reasons: string[] };
  liveness: () => { alive: boolean; reason?: string };
}

function sendJson(res: ServerResponse, status: number, body: unknown, requestId: string): void {
  const payload = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(payload), 'X-Request-Id': requestId, 'Cache-Control': 'no-store' });
  res.end(payload);
}

/** Creates the request listener for node:http / node:https. */
export function createRequestHandler(deps: HttpApiDeps): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    const header = req.headers['x-request-id'];
    const requestId = typeof header === 'string' && REQUEST_ID.test(header) ? header : randomUUID();
    const url = new URL(req.url ?? '/', 'http://agent');
    const path = ['/v1/snapshot', '/healthz', '/readyz', '/metrics'].includes(url.pathname) ? url.pathname : 'other';
    res.on('finish', () => deps.metrics.requests.inc({ path, code: String(res.statusCode) }));
    void handle(deps, req, res, url, requestId).catch((err: unknown) => {
      deps.logger.error('request failed', { requestId, path, ...errorFields(err) });
      if (!res.headersSent) sendJson(res, 500, { error: 'internal error', requestId }, requestId);
      else res.destroy();
    });
  };
}

async function handle(deps: HttpApiDeps, req: IncomingMessage, res: ServerResponse, url: URL, requestId: string): Promise<void> {
  const length = Number(req.headers['content-length'] ?? '0');
  if (req.headers['transfer-encoding'] !== undefined || length > MAX_REQUEST_BODY_BYTES) {
    sendJson(res, 413, { error: `request bodies are not accepted (limit ${MAX_REQUEST_BODY_BYTES} bytes)`, requestId }, requestId);
    req.destroy();
    return;
  }
  req.resume();
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.setHeader('Allow', 'GET, HEAD');
    sendJson(res, 405, { error: `method ${String(req.method).slice(0, 10)} not allowed`, requestId }, requestId);
    return;
  }
  switch (url.pathname) {
    case '/healthz': {
      const live = deps.liveness();
      sendJson(res, live.alive ? 200 : 500, live.alive ? { status: 'ok' } : { status: 'unhealthy', reason: live.reason }, requestId);
      return;
    }
    case '/readyz': {
      const r = deps.readiness();
      sendJson(res, r.ready ? 200 : 503, { status: r.ready ? 'ready' : 'not ready', reasons: r.reasons }, requestId);
      return;
    }
    case '/metrics': {
      const text = await deps.metrics.registry.metrics();
      res.writeHead(200, { 'Content-Type': deps.metrics.registry.contentType, 'X-Request-Id': requestId });
      res.end(text);
      return;
    }
    case '/v1/snapshot':
      await serveSnapshot(deps, req, res, url, requestId);
      return;
    default:
      sendJson(res, 404, { error: `no such path (try /v1/snapshot, /healthz, /readyz, /metrics)`, requestId }, requestId);
  }
}

async function serveSnapshot(deps: HttpApiDeps, req: IncomingMessage, res: ServerResponse, url: URL, requestId: string): Promise<void> {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(new Error(`request deadline of ${deps.requestTimeoutMs} ms passed`)), deps.requestTimeoutMs);
  res.on('close', () => controller.abort(new Error('client went away')));
  const log = deps.logger.child({ requestId });
  try {
    if (deps.authorizer !== undefined) {
      const decision = await deps.authorizer.check(req.headers.authorization, controller.signal);
      if (!decision.allowed) {
        log.warn('snapshot request refused', { status: decision.status, reason: decision.reason });
        if (decision.status === 401) res.setHeader('WWW-Authenticate', 'Bearer');
        sendJson(res, decision.status, { error: decision.reason, requestId }, requestId);
        return;
      }
      log.debug('caller authorised', { caller: decision.username });
    }
    let query: SnapshotQuery;
    try {
      query = parseSnapshotQuery(url.searchParams, new Date());
    } catch (err) {
      if (err instanceof BadRequestError) {
        sendJson(res, err.status, { error: err.message, requestId }, requestId);
        return;
      }
      throw err;
    }
    const started = Date.now();
    const doc = await Promise.race([
      deps.snapshots.snapshot(query.checks, query.xidSince, controller.signal),
      new Promise<never>((_, reject) => controller.signal.addEventListener('abort', () => reject(controller.signal.reason as Error), { once: true })),
    ]);
    log.info('snapshot served', { checks: query.checks.join(','), gpus: doc.gpus.length, xidEvents: doc.xid.events.length, durationMs: Date.now() - started });
    sendJson(res, 200, doc, requestId);
  } catch (err) {
    if (controller.signal.aborted) {
      if (!res.writableEnded && !res.destroyed) sendJson(res, 504, { error: (controller.signal.reason as Error).message, requestId }, requestId);
      // A caller that gave up (its own deadline) is routine, not an agent error.
      else log.debug('caller went away before the snapshot was ready');
      return;
    }
    throw err;
  } finally {
    clearTimeout(timer);
  }
}
