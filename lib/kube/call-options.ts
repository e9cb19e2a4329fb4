/**
 * Cancellation for client-node's typed APIs: every call that crosses to the API server takes
 * the caller's signal and a deadline, so a stalled API server can never wedge a caller.
 * `api.getNamespacedCustomObject({ ... }, apiCall(signal))` is the one way to call it.
 */
import { Observable, type ConfigurationOptions, type RequestContext, type ResponseContext } from '@kubernetes/client-node';
import { DEFAULT_API_CALL_TIMEOUT_MS, withTimeout } from './deadline.js';

export { DEFAULT_API_CALL_TIMEOUT_MS, withTimeout } from './deadline.js';

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

/** Options for one API call: aborts with `signal` (shutdown, lost leadership) or after `timeoutMs`. */
export function apiCall(signal: AbortSignal | undefined, timeoutMs = DEFAULT_API_CALL_TIMEOUT_MS): ConfigurationOptions {
  return withSignal(withTimeout(signal, timeoutMs));
}
