/**
 * Following one GPUDiagnostic until it finishes, with a watch (never a tight poll): the watch
 * starts at the resourceVersion the create returned, so no update is missed; when the server
 * closes it (its own timeout, a restart, 410 Gone) the object is read again and watched anew,
 * after a short backoff when the close was an error. Refusals that no retry can fix (401, 403,
 * 404) end the follow at once. Every object is checked against the CRD schema before use.
 */
import { Watch, type KubeConfig } from '@kubernetes/client-node';
import type { GPUDiagnostic } from '../../api/index.js';
import { describeErrors, validateGPUDiagnostic } from '../../api/validation.js';
import { kubeRequest } from '../../lib/kube/raw-request.js';
import { diagnosticsPath } from '../../operator/mcp/diagnostics.js';
import {
  FATAL_CODES,
  FIRST_BACKOFF_MS,
  isFinished,
  MAX_BACKOFF_MS,
  MAX_WATCH_SECONDS,
  MIN_WATCH_MS,
  pause,
  statusCodeOf,
} from '../../operator/mcp/follow-policy.js';

/** Where the follow ended. */
export type FollowEnd = 'finished' | 'deadline' | 'aborted';

/** The last state seen and why the follow ended. */
export interface Followed {
  readonly diagnostic: GPUDiagnostic;
  readonly end: FollowEnd;
}

/** What to follow. */
export interface FollowOptions {
  readonly kc: KubeConfig;
  readonly namespace: string;
  /** The object as created (its name and resourceVersion start the watch). */
  readonly created: GPUDiagnostic;
  /** Absolute time (ms since the epoch) after which the follow returns what it has. */
  readonly deadlineMs: number;
  readonly signal: AbortSignal;
  /** Called with every new state. */
  readonly onUpdate: (d: GPUDiagnostic) => void;
}

/** A failure to follow that no retry fixes, or an object that is not a GPUDiagnostic. */
export class FollowError extends Error {
  override readonly name = 'FollowError';
}

/** Checks an object read from the API against the CRD schema. */
export function checkedDiagnostic(raw: unknown, what: string): GPUDiagnostic {
  const checked = validateGPUDiagnostic(raw);
  if (!checked.ok) throw new FollowError(`${what} does not match the GPUDiagnostic schema: ${describeErrors(checked.errors)}`);
  return checked.value;
}

type WatchOutcome = { kind: 'finished' } | { kind: 'closed' } | { kind: 'error'; err: unknown } | { kind: 'deleted' } | { kind: 'stopped' };

/** Follows the diagnostic until it finishes, the deadline passes or `signal` aborts; throws FollowError. */
export async function followDiagnostic(options: FollowOptions): Promise<Followed> {
  const { kc, namespace, signal } = options;
  const name = options.created.metadata?.name ?? '';
  let latest = options.created;
  let resourceVersion = latest.metadata?.resourceVersion;
  let backoffMs = FIRST_BACKOFF_MS;
  const seen = (d: GPUDiagnostic): void => {
    latest = d;
    resourceVersion = d.metadata?.resourceVersion ?? resourceVersion;
    options.onUpdate(d);
  };
  for (;;) {
    if (isFinished(latest)) return { diagnostic: latest, end: 'finished' };
    if (signal.aborted) return { diagnostic: latest, end: 'aborted' };
    const remainingMs = options.deadlineMs - Date.now();
    if (remainingMs <= 0) return { diagnostic: latest, end: 'deadline' };
    const startedMs = Date.now();
    const outcome = await watchOnce(kc, namespace, name, resourceVersion, remainingMs, signal, seen);
    if (outcome.kind === 'deleted') throw new FollowError(`GPUDiagnostic ${namespace}/${name} was deleted before it finished`);
    if (outcome.kind === 'finished' || outcome.kind === 'stopped') continue;
    const watchErr = outcome.kind === 'error' ? outcome.err : undefined;
    const watchCode = statusCodeOf(watchErr);
    if (watchCode !== undefined && FATAL_CODES.has(watchCode)) {
      throw new FollowError(`cannot watch GPUDiagnostic ${namespace}/${name}: HTTP ${watchCode}`, { cause: watchErr });
    }
    // An error, or a close right after the start (a proxy that drops watches), waits before the next try.
    if (outcome.kind === 'error' || Date.now() - startedMs < MIN_WATCH_MS) {
      await pause(Math.min(backoffMs, options.deadlineMs - Date.now()), signal);
      backoffMs = Math.min(backoffMs * 2, MAX_BACKOFF_MS);
    } else {
      backoffMs = FIRST_BACKOFF_MS;
    }
    if (signal.aborted || Date.now() >= options.deadlineMs) continue;
    // Read it again: the watch may have ended on 410 Gone, and the read gives a fresh resourceVersion.
    try {
      seen(
        checkedDiagnostic(
          await kubeRequest<unknown>(kc, { method: 'GET', path: diagnosticsPath(namespace, name), signal }),
          `${namespace}/${name}`,
        ),
      );
    } catch (err) {
      const code = statusCodeOf(err);
      if (code === 404) throw new FollowError(`GPUDiagnostic ${namespace}/${name} was deleted before it finished`, { cause: err });
      if (err instanceof FollowError || (code !== undefined && FATAL_CODES.has(code))) throw err;
      // A transient failure (connection refused, timeout): the next watch attempt backs off.
    }
  }
}

/** One watch connection: resolves when it shows the diagnostic finished, ends, fails, or is stopped. */
async function watchOnce(
  kc: KubeConfig,
  namespace: string,
  name: string,
  resourceVersion: string | undefined,
  remainingMs: number,
  signal: AbortSignal,
  seen: (d: GPUDiagnostic) => void,
): Promise<WatchOutcome> {
  let settle: (o: WatchOutcome) => void = () => undefined;
  const outcome = new Promise<WatchOutcome>((resolve) => (settle = resolve));
  let settled = false;
  let controller: AbortController | undefined;
  const finish = (o: WatchOutcome): void => {
    if (settled) return;
    settled = true;
    clearTimeout(timer);
    signal.removeEventListener('abort', onAbort);
    controller?.abort();
    settle(o);
  };
  const onAbort = (): void => finish({ kind: 'stopped' });
  const timer = setTimeout(() => finish({ kind: 'stopped' }), remainingMs);
  signal.addEventListener('abort', onAbort, { once: true });
  const query: Record<string, string | number | boolean> = {
    fieldSelector: `metadata.name=${name}`,
    allowWatchBookmarks: true,
    timeoutSeconds: Math.min(Math.ceil(remainingMs / 1000), MAX_WATCH_SECONDS),
    ...(resourceVersion !== undefined ? { resourceVersion } : {}),
  };
  const onEvent = (type: string, object: unknown): void => {
    if (settled) return;
    try {
      if (type === 'ERROR') {
        // A Status: 410 Gone when resourceVersion is too old; the caller reads the object again.
        const code = statusCodeOf(object);
        finish(code === 410 ? { kind: 'closed' } : { kind: 'error', err: object });
      } else if (type === 'DELETED') {
        finish({ kind: 'deleted' });
      } else if (type === 'ADDED' || type === 'MODIFIED') {
        const d = checkedDiagnostic(object, `${namespace}/${name} (watch)`);
        seen(d);
        if (isFinished(d)) finish({ kind: 'finished' });
      }
      // BOOKMARK events carry only a resourceVersion; the next re-read gets a fresh one anyway.
    } catch (err) {
      finish({ kind: 'error', err });
    }
  };
  const onDone = (err: unknown): void => finish(err === null || err === undefined ? { kind: 'closed' } : { kind: 'error', err });
  try {
    controller = await new Watch(kc).watch(diagnosticsPath(namespace), query, onEvent, onDone);
  } catch (err) {
    finish({ kind: 'error', err });
  }
  if (settled) controller?.abort();
  const result = await outcome;
  if (result.kind === 'error' && result.err instanceof FollowError) throw result.err;
  return result;
}
