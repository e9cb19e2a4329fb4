/**
 * The facade's access to the Kubernetes API, always as one identity: the user's own kubeconfig
 * (stdio) or the operator impersonating an authenticated HTTP caller (Impersonate-User and one
 * Impersonate-Group header per group, which client-node 1.x cannot send). Plain JSON over
 * node:https with the kubeconfig's credentials, every call cancellable through `signal`.
 */
import { request, type RequestOptions } from 'node:https';
import { request as httpRequest } from 'node:http';
import type { KubeConfig } from '@kubernetes/client-node';
import { withTimeout } from '../../lib/kube/call-options.js';
import { isRecord } from '../../lib/records.js';

/** Who the facade acts as: the name shown in errors and annotations, and impersonation, if any. */
export interface CallerIdentity {
  /** The Kubernetes user name (e.g. `alice`, `system:serviceaccount:ns:name`). */
  readonly user: string;
  readonly groups: readonly string[];
  /** Send Impersonate-User/Impersonate-Group headers (HTTP transport: the operator acts as the caller). */
  readonly impersonate: boolean;
}

/** A non-2xx answer from the API server. */
export class KubeApiError extends Error {
  constructor(
    readonly statusCode: number,
    readonly reason: string,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = 'KubeApiError';
  }
}

/** One API request. */
export interface KubeRequest {
  method: 'GET' | 'POST' | 'DELETE' | 'PATCH';
  path: string;
  query?: Record<string, string | undefined>;
  body?: unknown;
  contentType?: string;
  signal?: AbortSignal;
}

const REQUEST_TIMEOUT_MS = 30_000;
const MAX_RESPONSE_BYTES = 64 * 1024 * 1024;

/** The API server as seen by one caller. */
export class KubeClient {
  constructor(
    private readonly kc: KubeConfig,
    readonly identity: CallerIdentity,
  ) {}

  /** The namespace of the kubeconfig's current context, when it names one. */
  contextNamespace(): string | undefined {
    const ctx = this.kc.getContextObject(this.kc.getCurrentContext());
    return ctx?.namespace;
  }

  /** Sends one request and parses the JSON answer; throws KubeApiError for non-2xx answers. */
  async request<T>(req: KubeRequest): Promise<T> {
    const cluster = this.kc.getCurrentCluster();
    if (cluster === null) throw new Error('the kubeconfig has no current cluster');
    const url = new URL(req.path, cluster.server);
    for (const [k, v] of Object.entries(req.query ?? {})) if (v !== undefined) url.searchParams.set(k, v);
    const headers: Record<string, string | string[] | number> = { Accept: 'application/json' };
    const options: RequestOptions = {
      method: req.method,
      hostname: url.hostname,
      port: url.port,
      path: `${url.pathname}${url.search}`,
      headers,
      timeout: REQUEST_TIMEOUT_MS,
    };
    await this.kc.applyToHTTPSOptions(options);
    const merged: Record<string, string | string[] | number> = {
      ...(options.headers as Record<string, string | string[] | number> | undefined),
    };
    if (this.identity.impersonate) {
      merged['Impersonate-User'] = this.identity.user;
      if (this.identity.groups.length > 0) merged['Impersonate-Group'] = [...this.identity.groups];
    }
    const payload = req.body === undefined ? undefined : JSON.stringify(req.body);
    if (payload !== undefined) {
      merged['Content-Type'] = req.contentType ?? 'application/json';
      merged['Content-Length'] = Buffer.byteLength(payload);
    }
    options.headers = merged;
    // A deadline, not only an idle timeout: an API server that trickles bytes cannot hold a call.
    options.signal = withTimeout(req.signal, REQUEST_TIMEOUT_MS);
    const send = url.protocol === 'http:' ? httpRequest : request;
    const what = `${req.method} ${url.pathname}`;
    return new Promise<T>((resolve, reject) => {
      const r = send(options, (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size > MAX_RESPONSE_BYTES) {
            res.destroy(new Error(`${what}: answer larger than ${MAX_RESPONSE_BYTES} bytes`));
            return;
          }
          chunks.push(c);
        });
        res.on('error', (err) => reject(new Error(`${what}: reading the answer failed`, { cause: err })));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let parsed: unknown;
          try {
            parsed = text === '' ? {} : JSON.parse(text);
          } catch (err) {
            reject(new Error(`${what}: answer is not JSON (HTTP ${res.statusCode ?? '?'})`, { cause: err }));
            return;
          }
          const code = res.statusCode ?? 0;
          if (code >= 200 && code < 300) {
            resolve(parsed as T);
            return;
          }
          const status = isRecord(parsed) ? parsed : {};
          const reason = typeof status['reason'] === 'string' ? status['reason'] : 'Unknown';
          const message = typeof status['message'] === 'string' ? status['message'] : `${what}: HTTP ${code}`;
          reject(new KubeApiError(code, reason, message));
        });
      });
      r.on('timeout', () => r.destroy(new Error(`${what}: no answer within ${REQUEST_TIMEOUT_MS} ms`)));
      r.on('error', (err) => {
        // The caller's own abort keeps its name (tools tell cancellation from failure by it).
        if (err.name === 'AbortError' && req.signal?.aborted === true) reject(err);
        else if (err.name === 'AbortError') reject(new Error(`${what}: no answer within ${REQUEST_TIMEOUT_MS} ms`, { cause: err }));
        else reject(new Error(`${what}: request failed`, { cause: err }));
      });
      r.end(payload);
    });
  }
}
