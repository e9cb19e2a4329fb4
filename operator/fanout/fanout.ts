/**
 * Asks every target node's agent for a snapshot: bounded concurrency, a per-node and an
 * overall deadline, retries with jittered backoff for transient failures only, and a shared
 * circuit breaker. Resolves with exactly one outcome per target, partial results explicit.
 */
import type http from 'node:http';
import { performance } from 'node:perf_hooks';
import type { DiagnosticCheck, NodeSnapshotDocument } from '../../agent/api/snapshot-document.js';
import { errorFields, type Logger } from '../../lib/logger.js';
import { createConnectionPool, fetchSnapshot, sanitizeText, type FetchOutcome } from './agent-client.js';
import { breakerKey, type CircuitBreaker } from './circuit-breaker.js';
import { runBounded, type BoundedRunStats } from './pool.js';
import type { NodeTarget } from './targets.js';
import { setMaxListeners } from 'node:events';

/** The per-node result of a fan-out. */
export type NodeResult = 'Succeeded' | 'NoAgent' | 'Unreachable' | 'Timeout' | 'Error';

/** One node's outcome; `snapshot` only when Succeeded, `message` for everything else. */
export interface NodeOutcome {
  node: string;
  result: NodeResult;
  message?: string;
  durationMs: number;
  attempts: number;
  snapshot?: NodeSnapshotDocument;
}

/** Abort listeners one in-flight node request may hold on the run's signal. */
const LISTENERS_PER_REQUEST = 4;
const MIN_LISTENER_HEADROOM = 10;

/** Default retries of a transient failure (3 attempts in all). */
export const DEFAULT_RETRIES = 2;
/** Default first backoff delay; it doubles per retry, with jitter. */
export const DEFAULT_RETRY_BASE_DELAY_MS = 250;
/** Default cap on one backoff delay. */
export const DEFAULT_RETRY_MAX_DELAY_MS = 5_000;
const CORRELATION_ID = /^[A-Za-z0-9._:-]{1,64}$/;
/** The agent logs X-Request-Id only when it matches its pattern, which allows at most 128 characters. */
const MAX_REQUEST_ID = 128;

/** Everything one fan-out needs. `signal` is the overall deadline (or cancellation). */
export interface FanOutOptions {
  targets: readonly NodeTarget[];
  checks: readonly DiagnosticCheck[];
  xidSince: Date;
  perNodeTimeoutMs: number;
  signal: AbortSignal;
  concurrency: number;
  retries?: number;
  retryBaseDelayMs?: number;
  retryMaxDelayMs?: number;
  breaker: CircuitBreaker;
  /** The ServiceAccount token to present; called per attempt, so it should cache. */
  tokenProvider: (signal: AbortSignal) => Promise<string>;
  agentPort: number;
  scheme: 'http' | 'https';
  /** CA of the agents' serving certificates; used only for the private pool (a shared pool carries its own). */
  caPem?: string;
  /** Name the agents' certificates carry when it is not the Pod IP; private pool only, like caPem. */
  tlsServerName?: string;
  /** A shared keep-alive pool (createConnectionPool); a private one sized to `concurrency` otherwise. */
  connections?: http.Agent;
  maxBodyBytes?: number;
  /** Prefix of every request id; node `n` gets `${correlationId}:${n}`. */
  correlationId: string;
  /** Called as each node's outcome is known (NoAgent and open circuits first). */
  onResult?: (outcome: NodeOutcome) => void;
  /** Keep snapshots in the returned outcomes (default true); false when onResult consumes them, so memory stays bounded. */
  retainSnapshots?: boolean;
  /** Called once with the pool's figures (peak in-flight requests and counts). */
  onStats?: (stats: BoundedRunStats) => void;
  logger: Logger;
  /** Jitter source in [0, 1); Math.random by default. */
  random?: () => number;
}

/**
 * The X-Request-Id for one node: `${correlationId}:${node}` (the agent's pattern allows no "/"),
 * shortened with a hash suffix when it would pass the agent's 128-character limit.
 */
export function nodeRequestId(correlationId: string, node: string): string {
  const id = `${correlationId}:${node}`;
  if (id.length <= MAX_REQUEST_ID) return id;
  let hash = 0;
  for (let i = 0; i < node.length; i++) hash = (Math.imul(hash, 31) + node.charCodeAt(i)) >>> 0;
  const suffix = `~${hash.toString(16).padStart(8, '0')}`;
  return `${correlationId}:${node.slice(0, MAX_REQUEST_ID - correlationId.length - 1 - suffix.length)}${suffix}`;
}

/** Backoff before retry `retry` (1-based): exponential, capped, with jitter in [50%, 100%]. */
export function backoffDelayMs(retry: number, baseMs: number, maxMs: number, random: () => number): number {
  const ceiling = Math.min(maxMs, baseMs * 2 ** (retry - 1));
  return Math.round(ceiling * (0.5 + 0.5 * random()));
}

function validateOptions(o: FanOutOptions): void {
  if (!CORRELATION_ID.test(o.correlationId)) throw new Error('fanOut: correlationId must be 1-64 characters of A-Z a-z 0-9 . _ : -');
  if (!Number.isInteger(o.concurrency) || o.concurrency < 1)
    throw new Error(`fanOut: concurrency must be a positive integer, got ${o.concurrency}`);
  if (!(o.perNodeTimeoutMs > 0)) throw new Error(`fanOut: perNodeTimeoutMs must be positive, got ${o.perNodeTimeoutMs}`);
  const retries = o.retries ?? DEFAULT_RETRIES;
  if (!Number.isInteger(retries) || retries < 0) throw new Error(`fanOut: retries must be a non-negative integer, got ${retries}`);
  if (!Number.isInteger(o.agentPort) || o.agentPort < 1 || o.agentPort > 65535)
    throw new Error(`fanOut: agentPort must be 1-65535, got ${o.agentPort}`);
}

function abortText(signal: AbortSignal): string {
  // DOMException (AbortSignal.timeout's reason) is not an Error subclass on Node 20: read it structurally.
  const reason = signal.reason as { name?: unknown; message?: unknown } | null | undefined;
  if (typeof reason !== 'object' || reason === null) return 'cancelled';
  if (reason.name === 'TimeoutError') return 'overall deadline passed';
  return typeof reason.message === 'string' ? `cancelled (${sanitizeText(reason.message, 120)})` : 'cancelled';
}

/** Sleeps `ms`; resolves false early when `signal` aborts. */
async function sleep(ms: number, signal: AbortSignal): Promise<boolean> {
  if (signal.aborted) return false;
  return new Promise((resolve) => {
    const onAbort = (): void => {
      clearTimeout(timer);
      resolve(false);
    };
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve(true);
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

/** Awaits `promise` unless `signal` aborts first (then rejects with the abort reason). */
async function untilAborted<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) throw new Error(abortText(signal));
  let onAbort: (() => void) | undefined;
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => reject(new Error(abortText(signal)));
    signal.addEventListener('abort', onAbort, { once: true });
  });
  try {
    return await Promise.race([promise, aborted]);
  } finally {
    if (onAbort !== undefined) signal.removeEventListener('abort', onAbort);
  }
}

interface NodeContext {
  options: FanOutOptions;
  connections: http.Agent;
  retries: number;
  random: () => number;
  logger: Logger;
}

function finalOutcome(
  node: string,
  outcome: Exclude<FetchOutcome, { kind: 'Succeeded' }>,
  attempts: number,
  durationMs: number,
  note?: string,
): NodeOutcome {
  const tail = [attempts > 1 ? `after ${attempts} attempts` : undefined, note].filter((s) => s !== undefined).join('; ');
  return { node, result: outcome.kind, message: tail === '' ? outcome.message : `${outcome.message} (${tail})`, durationMs, attempts };
}

/** Asks one node's agent, retrying transient failures within the node's deadline. */
async function askNode(
  target: NodeTarget & { agent: NonNullable<NodeTarget['agent']> },
  ctx: NodeContext,
  signal: AbortSignal,
): Promise<NodeOutcome> {
  const { options } = ctx;
  const { node, agent } = target;
  const started = performance.now();
  const deadline = started + options.perNodeTimeoutMs;
  const elapsed = (): number => Math.round(performance.now() - started);
  const key = breakerKey(node, agent.ip);
  const requestId = nodeRequestId(options.correlationId, node);
  let attempts = 0;
  let last: Exclude<FetchOutcome, { kind: 'Succeeded' }> | undefined;

  for (;;) {
    if (signal.aborted)
      return { node, result: 'Timeout', message: `${abortText(signal)} before the agent answered`, durationMs: elapsed(), attempts };
    const permit = options.breaker.acquire(key);
    if (!permit.allowed) {
      if (last === undefined) return { node, result: 'Unreachable', message: permit.message, durationMs: elapsed(), attempts };
      return finalOutcome(node, last, attempts, elapsed(), permit.message);
    }
    attempts += 1;
    let token: string;
    try {
      token = await untilAborted(options.tokenProvider(signal), signal);
    } catch (err) {
      options.breaker.release(key);
      if (signal.aborted) continue;
      ctx.logger.warn('cannot get the token for agent requests', { node, requestId, ...errorFields(err) });
      return {
        node,
        result: 'Error',
        message: `cannot get the ServiceAccount token: ${errorFields(err).error.slice(0, 200)}`,
        durationMs: elapsed(),
        attempts,
      };
    }
    const remainingMs = Math.floor(deadline - performance.now());
    if (remainingMs <= 0) {
      options.breaker.release(key);
      return last === undefined
        ? {
            node,
            result: 'Timeout',
            message: `per-node deadline of ${options.perNodeTimeoutMs} ms passed`,
            durationMs: elapsed(),
            attempts,
          }
        : finalOutcome(node, last, attempts, elapsed(), 'per-node deadline passed');
    }
    const outcome = await fetchSnapshot({
      node,
      ip: agent.ip,
      port: agent.port ?? options.agentPort,
      scheme: options.scheme,
      connections: ctx.connections,
      token,
      checks: options.checks,
      xidSince: options.xidSince,
      requestId,
      timeoutMs: remainingMs,
      signal,
      ...(options.maxBodyBytes !== undefined ? { maxBodyBytes: options.maxBodyBytes } : {}),
      logger: ctx.logger,
    });
    if (outcome.kind === 'Succeeded') {
      options.breaker.recordSuccess(key);
      return { node, result: 'Succeeded', durationMs: elapsed(), attempts, snapshot: outcome.snapshot };
    }
    if (outcome.kind === 'Timeout' && outcome.cancelled) {
      // Not the agent's fault: no verdict for the circuit.
      options.breaker.release(key);
      continue;
    }
    if (outcome.transient) options.breaker.recordFailure(key);
    else options.breaker.recordSuccess(key);
    last = outcome;
    if (!outcome.transient || outcome.kind === 'Timeout') return finalOutcome(node, outcome, attempts, elapsed());
    if (attempts > ctx.retries) return finalOutcome(node, outcome, attempts, elapsed());
    const delay = backoffDelayMs(
      attempts,
      options.retryBaseDelayMs ?? DEFAULT_RETRY_BASE_DELAY_MS,
      options.retryMaxDelayMs ?? DEFAULT_RETRY_MAX_DELAY_MS,
      ctx.random,
    );
    if (performance.now() + delay >= deadline)
      return finalOutcome(node, outcome, attempts, elapsed(), 'no time left for a retry before the per-node deadline');
    ctx.logger.debug('retrying agent request', {
      node,
      requestId,
      attempt: attempts,
      delayMs: delay,
      kind: outcome.kind,
      message: outcome.message,
    });
    if (!(await sleep(delay, signal))) continue;
  }
}

/** Fans a snapshot request out to `targets`; resolves with one outcome per target, in target order. */
export async function fanOut(options: FanOutOptions): Promise<NodeOutcome[]> {
  validateOptions(options);
  const started = performance.now();
  const logger = options.logger.child({ correlationId: options.correlationId });
  const ownConnections = options.connections === undefined;
  const connections =
    options.connections ??
    createConnectionPool({
      scheme: options.scheme,
      maxSockets: options.concurrency,
      ...(options.caPem !== undefined ? { caPem: options.caPem } : {}),
      ...(options.tlsServerName !== undefined ? { tlsServerName: options.tlsServerName } : {}),
    });
  const ctx: NodeContext = {
    options,
    connections,
    retries: options.retries ?? DEFAULT_RETRIES,
    random: options.random ?? Math.random,
    logger,
  };
  const outcomes: (NodeOutcome | undefined)[] = new Array<NodeOutcome | undefined>(options.targets.length).fill(undefined);

  const retain = options.retainSnapshots ?? true;
  const emit = (index: number, outcome: NodeOutcome): void => {
    if (retain || outcome.snapshot === undefined) outcomes[index] = outcome;
    else {
      const kept = { ...outcome };
      delete kept.snapshot;
      outcomes[index] = kept;
    }
    if (outcome.result !== 'Succeeded')
      logger.debug('node outcome', {
        node: outcome.node,
        result: outcome.result,
        message: outcome.message,
        attempts: outcome.attempts,
        durationMs: outcome.durationMs,
      });
    if (options.onResult === undefined) return;
    try {
      options.onResult(outcome);
    } catch (err) {
      logger.warn('fan-out result callback failed', { node: outcome.node, ...errorFields(err) });
    }
  };

  // Nodes without an agent, and agents whose circuit is open, are known at once: no pool slot.
  const queue: { target: NodeTarget & { agent: NonNullable<NodeTarget['agent']> }; index: number }[] = [];
  options.targets.forEach((target, index) => {
    if (target.agent === undefined) {
      emit(index, {
        node: target.node,
        result: 'NoAgent',
        message: target.missingReason ?? `no ready gpudiag agent pod on ${target.node}`,
        durationMs: 0,
        attempts: 0,
      });
      return;
    }
    const key = breakerKey(target.node, target.agent.ip);
    if (options.breaker.state(key) === 'open') {
      const permit = options.breaker.acquire(key);
      if (!permit.allowed) {
        emit(index, { node: target.node, result: 'Unreachable', message: permit.message, durationMs: 0, attempts: 0 });
        return;
      }
      options.breaker.release(key);
    }
    queue.push({ target: { ...target, agent: target.agent }, index });
  });

  // Each in-flight node listens on the run's signal (deadline race, request, retry sleep), so a
  // run holds a few listeners per concurrent request. A private signal linked to the caller's
  // gets a matching leak-warning threshold; Node's default of 10 fired on every large fan-out.
  const run = new AbortController();
  setMaxListeners(LISTENERS_PER_REQUEST * options.concurrency + MIN_LISTENER_HEADROOM, run.signal);
  const forward = (): void => run.abort(options.signal.reason);
  if (options.signal.aborted) forward();
  else options.signal.addEventListener('abort', forward, { once: true });

  let stats: BoundedRunStats;
  try {
    stats = await runBounded(
      queue,
      options.concurrency,
      (entry, _i, signal) => askNode(entry.target, ctx, signal),
      run.signal,
      (outcome, entry) => emit(entry.index, outcome),
    );
  } finally {
    options.signal.removeEventListener('abort', forward);
    if (ownConnections) connections.destroy();
  }

  // Whatever the overall deadline cut off is an explicit Timeout, never a missing node.
  options.targets.forEach((target, index) => {
    if (outcomes[index] === undefined)
      emit(index, {
        node: target.node,
        result: 'Timeout',
        message: `${abortText(options.signal)} before the agent was asked`,
        durationMs: 0,
        attempts: 0,
      });
  });
  options.onStats?.(stats);
  const result = outcomes as NodeOutcome[];
  const counts: Record<NodeResult, number> = { Succeeded: 0, NoAgent: 0, Unreachable: 0, Timeout: 0, Error: 0 };
  for (const o of result) counts[o.result] += 1;
  logger.info('fan-out completed', {
    targets: result.length,
    ...counts,
    peakInFlight: stats.peakInFlight,
    durationMs: Math.round(performance.now() - started),
  });
  return result;
}
