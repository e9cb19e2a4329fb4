/**
 * Plain-JSON requests to the Kubernetes API with a KubeConfig's credentials. client-node's
 * typed serializer renames fields it knows (a CRD schema's `default` and
 * `x-kubernetes-validations` are silently dropped from plain objects), so manifests are sent
 * through here untouched.
 */
import { request } from 'node:https';
import type { KubeConfig } from '@kubernetes/client-node';

/** A non-2xx answer from the API server, with its Status message. */
export class KubeRequestError extends Error {
  constructor(
    readonly statusCode: number,
    readonly reason: string,
    message: string,
  ) {
    super(message);
    this.name = 'KubeRequestError';
  }
}

/** Options of one request. */
export interface RawRequestOptions {
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  path: string;
  body?: unknown;
  contentType?: string;
  signal?: AbortSignal;
  timeoutMs?: number;
}

/** Sends one request and parses the JSON answer; throws KubeRequestError for non-2xx. */
export async function kubeRequest<T>(kc: KubeConfig, options: RawRequestOptions): Promise<T> {
  const cluster = kc.getCurrentCluster();
  if (cluster === null) throw new Error('the kubeconfig has no current cluster');
  const url = new URL(options.path, cluster.server);
  const httpsOptions: import('node:https').RequestOptions = {
    method: options.method,
    hostname: url.hostname,
    port: url.port,
    path: `${url.pathname}${url.search}`,
    headers: { Accept: 'application/json' },
    timeout: options.timeoutMs ?? 30_000,
  };
  await kc.applyToHTTPSOptions(httpsOptions);
  const payload = options.body === undefined ? undefined : JSON.stringify(options.body);
  if (payload !== undefined) {
    httpsOptions.headers = { ...httpsOptions.headers, 'Content-Type': options.contentType ?? 'application/json', 'Content-Length': Buffer.byteLength(payload) };
  }
  return new Promise<T>((resolve, reject) => {
    const req = request({ ...httpsOptions, ...(options.signal ? { signal: options.signal } : {}) }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let parsed: unknown;
        try {
          parsed = text === '' ? {} : JSON.parse(text);
        } catch (err) {
          reject(new Error(`${options.method} ${options.path}: answer is not JSON (HTTP ${res.statusCode ?? '?'})`, { cause: err }));
          return;
        }
        const code = res.statusCode ?? 0;
        if (code >= 200 && code < 300) {
          resolve(parsed as T);
          return;
        }
        const status = parsed as { message?: string; reason?: string };
        reject(new KubeRequestError(code, status.reason ?? 'Unknown', status.message ?? `${options.method} ${options.path}: HTTP ${code}`));
      });
    });
    req.on('timeout', () => req.destroy(new Error(`${options.method} ${options.path}: timed out`)));
    req.on('error', reject);
    req.end(payload);
  });
}

interface ApiResourceList {
  resources: { name: string; kind: string; namespaced: boolean }[];
}

/** Where objects of one kind live in the API. */
export interface ResourceInfo {
  plural: string;
  namespaced: boolean;
}

/** Resolves apiVersion + kind to the resource's plural and scope through discovery. */
export async function discoverResource(kc: KubeConfig, apiVersion: string, kind: string): Promise<ResourceInfo> {
  const base = apiVersion.includes('/') ? `/apis/${apiVersion}` : `/api/${apiVersion}`;
  const list = await kubeRequest<ApiResourceList>(kc, { method: 'GET', path: base });
  const found = list.resources.find((r) => r.kind === kind && !r.name.includes('/'));
  if (found === undefined) throw new Error(`the API server does not serve kind ${kind} in ${apiVersion}`);
  return { plural: found.name, namespaced: found.namespaced };
}

/** The URL path of a named object. */
export function objectPath(apiVersion: string, resource: ResourceInfo, name: string, namespace?: string): string {
  const base = apiVersion.includes('/') ? `/apis/${apiVersion}` : `/api/${apiVersion}`;
  const ns = resource.namespaced ? `/namespaces/${encodeURIComponent(namespace ?? 'default')}` : '';
  return `${base}${ns}/${resource.plural}/${encodeURIComponent(name)}`;
}
