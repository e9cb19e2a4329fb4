/**
 * The facade's access to the Kubernetes API, always as one identity: the user's own kubeconfig
 * (stdio) or the operator impersonating an authenticated HTTP caller (Impersonate-User and one
 * Impersonate-Group header per group, which client-node 1.x cannot send). The calls themselves
 * are lib/kube/api-client's: plain JSON on keep-alive connections, each cancellable.
 */
import { ApiClient, type ApiRequest, type ApiWatchRequest } from '../../lib/kube/api-client.js';
import type { KubeTarget } from '../../lib/kube/raw-request.js';
import type { WatchEvent } from '../../lib/kube/watch-events.js';

export { KubeRequestError as KubeApiError } from '../../lib/kube/raw-request.js';

/** Who the facade acts as: the name shown in errors and annotations, and impersonation, if any. */
export interface CallerIdentity {
  /** The Kubernetes user name (e.g. `alice`, `system:serviceaccount:ns:name`). */
  readonly user: string;
  readonly groups: readonly string[];
  /** Send Impersonate-User/Impersonate-Group headers (HTTP transport: the operator acts as the caller). */
  readonly impersonate: boolean;
}

/** One API request. */
export type KubeRequest = Omit<ApiRequest, 'method'> & { method: 'GET' | 'POST' | 'DELETE' | 'PATCH' };

/** One watch of a collection (`watch=true` and `timeoutSeconds` are added). */
export type KubeWatchRequest = ApiWatchRequest;

/** Where the facade's calls go: a KubeTarget, and the namespace of the kubeconfig's current context when it has one. */
export type FacadeTarget = KubeTarget & {
  getCurrentContext?: () => string;
  getContextObject?: (name: string) => { namespace?: string } | null;
};

/** The API server as seen by one caller. */
export class KubeClient {
  private readonly api: ApiClient;

  constructor(
    private readonly kc: FacadeTarget,
    readonly identity: CallerIdentity,
  ) {
    const headers: Record<string, string | readonly string[]> = {};
    if (identity.impersonate) {
      headers['Impersonate-User'] = identity.user;
      if (identity.groups.length > 0) headers['Impersonate-Group'] = identity.groups;
    }
    this.api = new ApiClient(kc, { headers });
  }

  /** The namespace of the kubeconfig's current context, when it names one. */
  contextNamespace(): string | undefined {
    const context = this.kc.getCurrentContext?.();
    return context === undefined ? undefined : (this.kc.getContextObject?.(context)?.namespace ?? undefined);
  }

  /** Sends one request and parses the JSON answer; throws KubeApiError for non-2xx answers. */
  request<T>(req: KubeRequest): Promise<T> {
    return this.api.request<T>(req);
  }

  /**
   * Watches a collection, yielding its events until the server ends the watch (normally at
   * timeoutSeconds), `signal` aborts, or the connection breaks (which throws). A refusal throws
   * KubeApiError before the first event; lines are bounded and parsed by parseWatchLine.
   */
  watch(req: KubeWatchRequest): AsyncGenerator<WatchEvent, void, undefined> {
    return this.api.watch(req);
  }
}
