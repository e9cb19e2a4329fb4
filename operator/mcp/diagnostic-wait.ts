/**
 * Waiting for the operator to finish one GPUDiagnostic, as the caller, by watching it: the
 * watch starts at the resourceVersion the create returned, so no update is missed, and every
 * event reports nodes completed / targeted. A watch that closes early (the server's timeout,
 * 410 Gone, a broken connection, a malformed line) is followed by a fresh read and a new
 * watch, after a backoff when it failed. A caller who may get but not watch GPUDiagnostics
 * (RBAC written before the facade watched) is served by polling instead.
 */
import { GPU_DIAGNOSTICS, type GPUDiagnostic } from '../../api/index.js';
import { errorFields } from '../../lib/logger.js';
import { checkedDiagnostic, diagnosticsPath, getDiagnostic } from './diagnostics.js';
import { ToolError, toToolError } from './errors.js';
import {
  FATAL_CODES,
  FIRST_BACKOFF_MS,
  isFinished,
  MAX_BACKOFF_MS,
  MAX_WATCH_SECONDS,
  MIN_WATCH_MS,
  pause,
  statusCodeOf,
} from './follow-policy.js';
import { KubeApiError } from './kube.js';
import type { ToolContext } from './tool.js';

/** The diagnostic to wait for. */
export interface WaitTarget {
  readonly namespace: string;
  readonly name: string;
  /** The object as the create returned it (its resourceVersion starts the watch). */
  readonly created: GPUDiagnostic;
  /** Absolute time (ms since the epoch) after which the wait answers with what it has. */
  readonly deadlineMs: number;
}

/** Why the wait ended: done, out of time, the server shutting down, the call cancelled. */
export type WaitEnd = 'finished' | 'deadline' | 'stopping' | 'cancelled';

/** The last state seen and why the wait ended. */
export interface Waited {
  readonly diagnostic: GPUDiagnostic;
  readonly end: WaitEnd;
}

type WatchOutcome =
  { kind: 'finished' | 'stopped' | 'closed' | 'deleted' } | { kind: 'refused'; err: KubeApiError } | { kind: 'error'; err: unknown };

/** First read when polling; later reads double up to settings.pollIntervalMs. */
const FIRST_POLL_MS = 50;
/** Callers already logged as falling back to polling (bounded: HTTP serves many). */
const pollingCallers = new Set<string>();
const MAX_POLLING_CALLERS_LOGGED = 1_000;

/** What the wait has seen, and progress reported once per change of nodes completed / targeted. */
class WaitState {
  latest: GPUDiagnostic;
  resourceVersion: string | undefined;
  private reported = '';

  constructor(
    private readonly ctx: ToolContext,
    private readonly target: WaitTarget,
  ) {
    this.latest = target.created;
    this.resourceVersion = target.created.metadata?.resourceVersion;
  }

  async seen(d: GPUDiagnostic): Promise<void> {
    this.latest = d;
    this.resourceVersion = d.metadata?.resourceVersion ?? this.resourceVersion;
    const total = d.status?.summary?.nodesTargeted ?? 0;
    const done = d.status?.summary?.nodesCompleted ?? 0;
    if (total === 0 || `${done}/${total}` === this.reported) return;
    this.reported = `${done}/${total}`;
    const { namespace, name } = this.target;
    await this.ctx.progress(done, total, `${done}/${total} node(s) diagnosed (${namespace}/${name})`);
  }

  /** Why the wait ends now, if it does. */
  end(): WaitEnd | undefined {
    if (this.ctx.signal.aborted) return 'cancelled';
    if (isFinished(this.latest)) return 'finished';
    if (this.ctx.stopping.aborted) return 'stopping';
    if (Date.now() >= this.target.deadlineMs) return 'deadline';
    return undefined;
  }
}

/** Waits for the diagnostic by watching it (polling when the caller may not watch); throws ToolError. */
export async function waitForDiagnostic(ctx: ToolContext, target: WaitTarget): Promise<Waited> {
  const { namespace, name } = target;
  const state = new WaitState(ctx, target);
  // The server shutting down ends the wait like the deadline passing: the diagnostic is kept.
  const wake = AbortSignal.any([ctx.signal, ctx.stopping]);
  await state.seen(state.latest);
  let backoffMs = FIRST_BACKOFF_MS;
  for (;;) {
    const end = state.end();
    if (end !== undefined) return { diagnostic: state.latest, end };
    const startedMs = Date.now();
    const outcome = await watchOnce(ctx, target, state, wake);
    if (outcome.kind === 'finished' || outcome.kind === 'stopped') continue;
    if (outcome.kind === 'deleted') throw new ToolError(`GPUDiagnostic ${namespace}/${name} was deleted before it finished`);
    if (outcome.kind === 'refused') {
      if (outcome.err.statusCode === 403) return pollUntilDone(ctx, target, state, wake);
      throw toToolError(outcome.err, { verb: 'watch', resource: GPU_DIAGNOSTICS.plural, namespace, name }, ctx.kube.identity);
    }
    // A failure, or a close right after the start (a proxy that drops watches), waits before the next try.
    if (outcome.kind === 'error' || Date.now() - startedMs < MIN_WATCH_MS) {
      if (outcome.kind === 'error')
        ctx.logger.warn('watching a GPUDiagnostic failed; reading it again', { namespace, name, ...errorFields(outcome.err) });
      await pause(Math.min(backoffMs, target.deadlineMs - Date.now()), wake);
      backoffMs = Math.min(backoffMs * 2, MAX_BACKOFF_MS);
    } else {
      backoffMs = FIRST_BACKOFF_MS;
    }
    if (state.end() !== undefined) continue;
    await readAgain(ctx, target, state, wake);
  }
}

/** One watch connection: ends when it shows the diagnostic finished or deleted, closes, fails, or is stopped. */
async function watchOnce(ctx: ToolContext, target: WaitTarget, state: WaitState, wake: AbortSignal): Promise<WatchOutcome> {
  const { namespace, name } = target;
  const remainingMs = Math.max(1, target.deadlineMs - Date.now());
  const stop = AbortSignal.any([wake, AbortSignal.timeout(remainingMs)]);
  const events = ctx.kube.watch({
    path: diagnosticsPath(namespace),
    query: { fieldSelector: `metadata.name=${name}`, allowWatchBookmarks: 'true', resourceVersion: state.resourceVersion },
    timeoutSeconds: Math.min(Math.ceil(remainingMs / 1000), MAX_WATCH_SECONDS),
    signal: stop,
  });
  try {
    for await (const event of events) {
      switch (event.type) {
        case 'ADDED':
        case 'MODIFIED': {
          const d = checkedDiagnostic(event.object, namespace, name);
          await state.seen(d);
          if (isFinished(d)) return { kind: 'finished' };
          break;
        }
        case 'DELETED':
          return { kind: 'deleted' };
        case 'BOOKMARK':
          state.resourceVersion = event.resourceVersion ?? state.resourceVersion;
          break;
        case 'ERROR':
          // 410 Gone: the resourceVersion is too old; a fresh read gives a new one.
          if (event.code === 410) return { kind: 'closed' };
          return { kind: 'error', err: new KubeApiError(event.code ?? 0, event.reason, event.message) };
        case 'INVALID':
          return { kind: 'error', err: new Error(event.problem) };
      }
    }
    return { kind: 'closed' };
  } catch (err) {
    if (err instanceof ToolError) throw err;
    if (stop.aborted) return { kind: 'stopped' };
    if (err instanceof KubeApiError && FATAL_CODES.has(err.statusCode)) return { kind: 'refused', err };
    return { kind: 'error', err };
  }
}

/** Reads the diagnostic after a watch closed; a transient failure is left to the next watch's backoff. */
async function readAgain(ctx: ToolContext, target: WaitTarget, state: WaitState, wake: AbortSignal): Promise<void> {
  const { namespace, name } = target;
  let raw: unknown;
  try {
    raw = await ctx.kube.request<unknown>({ method: 'GET', path: diagnosticsPath(namespace, name), signal: wake });
  } catch (err) {
    if (wake.aborted) return;
    const code = statusCodeOf(err);
    if (code === 404) throw new ToolError(`GPUDiagnostic ${namespace}/${name} was deleted before it finished`, { cause: err });
    if (code !== undefined && FATAL_CODES.has(code))
      throw toToolError(err, { verb: 'get', resource: GPU_DIAGNOSTICS.plural, namespace, name }, ctx.kube.identity);
    ctx.logger.warn('cannot read a GPUDiagnostic after its watch closed; retrying', { namespace, name, ...errorFields(err) });
    return;
  }
  await state.seen(checkedDiagnostic(raw, namespace, name));
}

/** The wait for a caller without `watch`: reads soon, then backs off to the poll interval. */
async function pollUntilDone(ctx: ToolContext, target: WaitTarget, state: WaitState, wake: AbortSignal): Promise<Waited> {
  const user = ctx.kube.identity.user;
  if (!pollingCallers.has(user)) {
    if (pollingCallers.size >= MAX_POLLING_CALLERS_LOGGED) pollingCallers.clear();
    pollingCallers.add(user);
    ctx.logger.warn('the caller may not watch gpudiagnostics; waiting by polling (grant watch: docs/mcp.md)', {
      caller: user,
      namespace: target.namespace,
    });
  }
  let delayMs = Math.min(FIRST_POLL_MS, ctx.settings.pollIntervalMs);
  for (;;) {
    const end = state.end();
    if (end !== undefined) return { diagnostic: state.latest, end };
    await pause(Math.min(delayMs, Math.max(target.deadlineMs - Date.now(), 1)), wake);
    delayMs = Math.min(delayMs * 2, ctx.settings.pollIntervalMs);
    if (wake.aborted) continue;
    await state.seen(await getDiagnostic(ctx, target.namespace, target.name));
  }
}
