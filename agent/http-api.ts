/**
 * The agent's HTTP surface: GET /v1/snapshot (authenticated), /healthz, /readyz, /metrics.
 * Served behind lib/http's guard (safe request target, no bodies, errors answered and logged);
 * query parameters are validated and a bad one is a 400 that names it.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { GuardedHandler } from '../lib/http/server.js';
import type { RequestTarget } from '../lib/http/request-target.js';
import type { Logger } from '../lib/logger.js';
import { quote } from '../lib/text.js';
import { DIAGNOSTIC_CHECKS, type DiagnosticCheck } from './api/snapshot-document.js';
import type { CallerAuthorizer } from './auth/token-reviewer.js';
import type { AgentMetrics } from './metrics.js';
import type { SnapshotService } from './snapshot-service.js';
import { snapshotDocumentParts } from './snapshot-json.js';

/** Checks answered when the request names none. */
export const DEFAULT_SNAPSHOT_CHECKS: readonly DiagnosticCheck[] = ['health', 'xid'];
/** XID window when the request gives no xidSince. */
export const DEFAULT_XID_LOOKBACK_MS = 60 * 60 * 1000;
const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;
const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/;
const PATHS = new Set(['/v1/snapshot', '/healthz', '/readyz', '/metrics']);

/** The validated query of GET /v1/snapshot. */
export interface SnapshotQuery {
  checks: DiagnosticCheck[];
  xidSince: Date;
}

/** The outcome of parsing a snapshot query: the query, or a 400 message naming the parameter. */
export type ParsedSnapshotQuery = { ok: true; query: SnapshotQuery } | { ok: false; message: string };

/** Parses and validates the query string of GET /v1/snapshot; a refusal names the parameter. */
export function parseSnapshotQuery(params: URLSearchParams, now: Date): ParsedSnapshotQuery {
  for (const key of new Set(params.keys())) {
    if (key !== 'checks' && key !== 'xidSince')
      return { ok: false, message: `unknown query parameter ${quote(key, 40)} (allowed: checks, xidSince)` };
    if (params.getAll(key).length > 1) return { ok: false, message: `query parameter "${key}" given more than once` };
  }
  let checks = [...DEFAULT_SNAPSHOT_CHECKS];
  const rawChecks = params.get('checks');
  if (rawChecks !== null) {
    const names = rawChecks.split(',').map((c) => c.trim());
    const unknown = names.find((c) => !(DIAGNOSTIC_CHECKS as readonly string[]).includes(c));
    if (unknown !== undefined)
      return {
        ok: false,
        message: `query parameter "checks": unknown check ${quote(unknown, 40)} (allowed: ${DIAGNOSTIC_CHECKS.join(', ')})`,
      };
    checks = [...new Set(names as DiagnosticCheck[])];
  }
  let xidSince = new Date(now.getTime() - DEFAULT_XID_LOOKBACK_MS);
  const rawSince = params.get('xidSince');
  if (rawSince !== null) {
    const parsed = RFC3339.test(rawSince) ? new Date(rawSince) : new Date(NaN);
    if (Number.isNaN(parsed.getTime()))
      return { ok: false, message: 'query parameter "xidSince" must be an RFC 3339 time such as 2025-01-05T10:00:00Z' };
    xidSince = parsed;
  }
  return { ok: true, query: { checks, xidSince } };
}

/** Dependencies of the request handler. */
export interface HttpApiDeps {
  /** The agent's SnapshotService (a benchmark's prepared-snapshot fleet serves fixed documents). */
  snapshots: Pick<SnapshotService, 'snapshot'>;
  authorizer: CallerAuthorizer | undefined;
  metrics: AgentMetrics;
  logger: Logger;
  requestTimeoutMs: number;
  readiness: () => { ready: boolean; reasons: string[] };
  liveness: () => { alive: boolean; reason?: string };
  /** Called as each request arrives (the idle heap trimmer counts them). */
  onRequest?: () => void;
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  sendJsonText(res, status, JSON.stringify(body));
}

function sendJsonText(res: ServerResponse, status: number, payload: string): void {
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(payload), 'Cache-Control': 'no-store' });
  res.end(payload);
}

/** Creates the agent's handler, to be served behind lib/http's guard (createGuardedServer). */
export function createRequestHandler(deps: HttpApiDeps): GuardedHandler {
  return async (req, res, target) => {
    deps.onRequest?.();
    const header = req.headers['x-request-id'];
    const requestId = typeof header === 'string' && REQUEST_ID.test(header) ? header : randomUUID();
    // Set first, so every answer carries it, the guard's own 500 included.
    res.setHeader('X-Request-Id', requestId);
    const path = PATHS.has(target.path) ? target.path : 'other';
    res.on('finish', () => deps.metrics.requests.inc({ path, code: String(res.statusCode) }));
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('Allow', 'GET, HEAD');
      sendJson(res, 405, { error: `method ${quote(String(req.method), 10)} not allowed`, requestId });
      return;
    }
    req.resume();
    switch (target.path) {
      case '/healthz': {
        const live = deps.liveness();
        sendJson(res, live.alive ? 200 : 500, live.alive ? { status: 'ok' } : { status: 'unhealthy', reason: live.reason });
        return;
      }
      case '/readyz': {
        const r = deps.readiness();
        sendJson(res, r.ready ? 200 : 503, { status: r.ready ? 'ready' : 'not ready', reasons: r.reasons });
        return;
      }
      case '/metrics': {
        const text = await deps.metrics.registry.metrics();
        res.writeHead(200, { 'Content-Type': deps.metrics.registry.contentType });
        res.end(text);
        return;
      }
      case '/v1/snapshot':
        await serveSnapshot(deps, req, res, target, requestId);
        return;
      default:
        sendJson(res, 404, { error: 'no such path (try /v1/snapshot, /healthz, /readyz, /metrics)', requestId });
    }
  };
}

async function serveSnapshot(
  deps: HttpApiDeps,
  req: IncomingMessage,
  res: ServerResponse,
  target: RequestTarget,
  requestId: string,
): Promise<void> {
  const controller = new AbortController();
  const timer = setTimeout(
    () => controller.abort(new Error(`request deadline of ${deps.requestTimeoutMs} ms passed`)),
    deps.requestTimeoutMs,
  );
  res.on('close', () => controller.abort(new Error('client went away')));
  const log = deps.logger.child({ requestId });
  try {
    if (deps.authorizer !== undefined) {
      const decision = await deps.authorizer.check(req.headers.authorization, controller.signal);
      if (!decision.allowed) {
        log.warn('snapshot request refused', { status: decision.status, reason: decision.reason });
        if (decision.status === 401) res.setHeader('WWW-Authenticate', 'Bearer');
        answerUnlessGone(res, decision.status, { error: decision.reason, requestId });
        return;
      }
      log.debug('caller authorised', { caller: decision.username });
    }
    const parsed = parseSnapshotQuery(target.query, new Date());
    if (!parsed.ok) {
      sendJson(res, 400, { error: parsed.message, requestId });
      return;
    }
    const { query } = parsed;
    const started = Date.now();
    const doc = await Promise.race([
      deps.snapshots.snapshot(query.checks, query.xidSince, controller.signal),
      new Promise<never>((_, reject) =>
        controller.signal.addEventListener('abort', () => reject(controller.signal.reason as Error), { once: true }),
      ),
    ]);
    // debug, not info: the operator polls every agent, and thousands of lines a second under a
    // fan-out cost more CPU than the answers (refusals and failures are logged at warn and above)
    log.debug('snapshot served', {
      checks: query.checks.join(','),
      gpus: doc.gpus.length,
      xidEvents: doc.xid.events.length,
      durationMs: Date.now() - started,
    });
    const { head, events, tail } = snapshotDocumentParts(doc);
    res.writeHead(200, {
      'Content-Type': 'application/json',
      'Content-Length': Buffer.byteLength(head) + events.length + tail.length,
      'Cache-Control': 'no-store',
    });
    // one write of the three parts (end uncorks)
    res.cork();
    res.write(head);
    res.write(events);
    res.end(tail);
  } catch (err) {
    if (!controller.signal.aborted) throw err;
    // A caller that gave up (its own deadline) is routine, not an agent error.
    if (!answerUnlessGone(res, 504, { error: (controller.signal.reason as Error).message, requestId }))
      log.debug('caller went away before the snapshot was ready');
  } finally {
    clearTimeout(timer);
  }
}

/** Answers unless the client is gone; returns whether it answered. */
function answerUnlessGone(res: ServerResponse, status: number, body: unknown): boolean {
  if (res.writableEnded || res.destroyed) return false;
  sendJson(res, status, body);
  return true;
}
