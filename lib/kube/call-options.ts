/**
 * Cancellation for client-node's typed APIs: every call that crosses to the API server takes
 * the caller's signal and a deadline, so a stalled API server can never wedge a caller.
 * `api.getNamespacedCustomObject({ ... }, apiCall(signal))` is the one way to call it.
 */
import { Observable, type ConfigurationOptions, type RequestContext, type ResponseContext } from '@kubernetes/client-node';

/** Deadline of one API call when the caller gives none (requests, not watches). */
export const DEFAULT_API_CALL_TIMEOUT_MS = 30_000;

/** Options that make one client-node call abort with `signal`. */
export function withSignal(signal: AbortSignal): ConfigurationOptions {
  return {
    middleware: [
      {
        pre: (context: RequestContext): Observable<RequestContext> => {
          context.setSignal(signal);
          return new Observable(Promise.resolve(context));
        },
        post: (context: ResponseContext): Observable<ResponseContext> => new Observable(Promise.resolve(context)),
      },
    ],
    middlewareMergeStrategy: 'append',
  };
}

/** A signal that aborts when `signal` does or after `timeoutMs`, whichever comes first. */
export function withTimeout(signal: AbortSignal | undefined, timeoutMs: number): AbortSignal {
  const timeout = AbortSignal.timeout(timeoutMs);
  return signal === undefined ? timeout : AbortSignal.any([signal, timeout]);
}

/** Options for one API call: aborts with `signal` (shutdown, lost leadership) or after `timeoutMs`. */
export function apiCall(signal: AbortSignal | undefined, timeoutMs = DEFAULT_API_CALL_TIMEOUT_MS): ConfigurationOptions {
  return withSignal(withTimeout(signal, timeoutMs));
}
