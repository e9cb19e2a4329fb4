/**
 * Typed reconcile errors and the one place that decides what a failure means: stalled (a human
 * must change something, no retry), waiting (come back later) or anything else (retry with
 * backoff). Also readers for the API server's answer inside client-node's ApiException.
 */

/** Reasons follow the Kubernetes condition reason pattern. */
const REASON = /^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$/;

function checkReason(reason: string): string {
  if (!REASON.test(reason)) throw new Error(`invalid condition reason ${JSON.stringify(reason)}`);
  return reason;
}

/**
 * The controller cannot make progress without a change by a human (invalid spec, missing
 * reference): the caller sets Stalled=True with `reason`, and the key is not retried.
 */
export class StalledError extends Error {
  override readonly name = 'StalledError';

  constructor(
    /** CamelCase condition reason, e.g. `NoMatchingNodes`. */
    readonly reason: string,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
    checkReason(reason);
  }
}

/** Not a failure: a dependency is not ready yet; reconcile again after `retryAfterMs`. */
export class WaitingError extends Error {
  override readonly name = 'WaitingError';

  constructor(
    /** CamelCase condition reason, e.g. `WaitingForAgents`. */
    readonly reason: string,
    message: string,
    /** Delay before the next attempt, in milliseconds (≥ 0). */
    readonly retryAfterMs: number,
    options?: ErrorOptions,
  ) {
    super(message, options);
    checkReason(reason);
    if (!Number.isFinite(retryAfterMs) || retryAfterMs < 0) throw new Error(`invalid retryAfterMs ${retryAfterMs}`);
  }
}

/** What a failed reconcile means for its key. */
export type ErrorClassification =
  | { kind: 'stalled'; reason: string; message: string; error: StalledError }
  | { kind: 'waiting'; reason: string; message: string; retryAfterMs: number; error: WaitingError }
  | { kind: 'retry'; message: string; error: unknown };

const MAX_CAUSE_DEPTH = 8;

/** Walks `err` and its `cause` chain (bounded), outermost first. */
function* causeChain(err: unknown): Generator<unknown> {
  let current: unknown = err;
  for (let depth = 0; depth < MAX_CAUSE_DEPTH && current !== undefined && current !== null; depth++) {
    yield current;
    current = current instanceof Error ? current.cause : undefined;
  }
}

/**
 * Classifies a reconcile failure. A StalledError or WaitingError anywhere in the `cause` chain
 * wins (wrapping with `{ cause }` keeps the meaning); anything else is retried with backoff.
 */
export function classifyError(err: unknown): ErrorClassification {
  for (const e of causeChain(err)) {
    if (e instanceof StalledError) return { kind: 'stalled', reason: e.reason, message: e.message, error: e };
    if (e instanceof WaitingError) return { kind: 'waiting', reason: e.reason, message: e.message, retryAfterMs: e.retryAfterMs, error: e };
  }
  return { kind: 'retry', message: err instanceof Error ? err.message : String(err), error: err };
}

/** The HTTP status and Status `reason` of an API server error, if `err` (or a cause) is one. */
export interface ApiStatus {
  code: number;
  reason?: string;
  message?: string;
}

function parseStatusBody(body: unknown): { reason?: string; message?: string } {
  let parsed: unknown = body;
  if (typeof body === 'string') {
    try {
      parsed = JSON.parse(body);
    } catch {
      // A non-JSON body (a proxy's HTML page, say) carries no Status; the code still counts.
      return {};
    }
  }
  if (parsed === null || typeof parsed !== 'object') return {};
  const s = parsed as { reason?: unknown; message?: unknown };
  return {
    ...(typeof s.reason === 'string' ? { reason: s.reason } : {}),
    ...(typeof s.message === 'string' ? { message: s.message } : {}),
  };
}

/**
 * Reads the API server's answer from client-node's ApiException (`code` + JSON `body`), from a
 * watch error (`statusCode`) or from lib/kube's KubeRequestError (`statusCode` + `reason`),
 * looking through the `cause` chain.
 */
export function apiStatus(err: unknown): ApiStatus | undefined {
  for (const e of causeChain(err)) {
    if (e === null || typeof e !== 'object') continue;
    const candidate = e as { code?: unknown; statusCode?: unknown; body?: unknown; reason?: unknown };
    const code =
      typeof candidate.code === 'number' ? candidate.code : typeof candidate.statusCode === 'number' ? candidate.statusCode : undefined;
    if (code === undefined || code < 100 || code > 599) continue;
    const fromBody = parseStatusBody(candidate.body);
    const reason = fromBody.reason ?? (typeof candidate.reason === 'string' ? candidate.reason : undefined);
    return { code, ...(reason === undefined ? {} : { reason }), ...(fromBody.message === undefined ? {} : { message: fromBody.message }) };
  }
  return undefined;
}

/** 409 that is not AlreadyExists: a stale resourceVersion (optimistic concurrency lost). */
export function isConflict(err: unknown): boolean {
  const s = apiStatus(err);
  return s?.code === 409 && s.reason !== 'AlreadyExists';
}

/** 404 Not Found. */
export function isNotFound(err: unknown): boolean {
  return apiStatus(err)?.code === 404;
}

/** 409 with reason AlreadyExists (a create lost to an existing object). */
export function isAlreadyExists(err: unknown): boolean {
  const s = apiStatus(err);
  return s?.code === 409 && s.reason === 'AlreadyExists';
}
