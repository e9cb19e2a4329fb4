/**
 * Plain-JSON requests to the Kubernetes API with a kubeconfig's credentials. client-node's
 * typed serializer renames fields it knows (a CRD schema's `default` and
 * `x-kubernetes-validations` are silently dropped from plain objects), so manifests are sent
 * through here untouched. Nothing here loads client-node: the agent's TokenReview uses it with
 * lib/kube/connection.ts.
 */
import { request, type RequestOptions } from 'node:https';
import { DEFAULT_API_CALL_TIMEOUT_MS, withTimeout } from './deadline.js';

/** Largest answer read by default; a bigger one fails the call instead of filling memory. */
const MAX_RESPONSE_BYTES = 64 * 1024 * 1024;

/**
 * Where a request goes and with which credentials: client-node's KubeConfig fits, and so does
 * the lean ApiServerConnection (lib/kube/connection.ts).
 */
export interface KubeTarget {
  getCurrentCluster(): { readonly server: string } | null;
  applyToHTTPSOptions(options: RequestOptions): Promise<void>;
}

/** A non-2xx answer from the API server, with its Status message. */
export class KubeRequestError extends Error {
  constructor(
    readonly statusCode: number,
    readonly reason: string,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
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
  /** Deadline of the whole call, answer included (default 30 s). */
  timeoutMs?: number;
  /** Largest answer read (default 64 MiB). */
  maxResponseBytes?: number;
  /** The Accept header of a JSON answer (default application/json; the JWKS answers only application/jwk-set+json). */
  accept?: string;
}

/** Sends one request and returns the status code and body text (any status). */
async function send(kc: KubeTarget, options: RawRequestOptions, accept: string): Promise<{ code: number; text: string }> {
  const cluster = kc.getCurrentCluster();
  if (cluster === null) throw new Error('the kubeconfig has no current cluster');
  const url = new URL(options.path, cluster.server);
  const httpsOptions: RequestOptions = {
    method: options.method,
    hostname: url.hostname,
    port: url.port,
    path: `${url.pathname}${url.search}`,
    headers: { Accept: accept },
  };
  const timeoutMs = options.timeoutMs ?? DEFAULT_API_CALL_TIMEOUT_MS;
  const maxBytes = options.maxResponseBytes ?? MAX_RESPONSE_BYTES;
  await kc.applyToHTTPSOptions(httpsOptions);
  const payload = options.body === undefined ? undefined : JSON.stringify(options.body);
  if (payload !== undefined) {
    httpsOptions.headers = {
      ...httpsOptions.headers,
      'Content-Type': options.contentType ?? 'application/json',
      'Content-Length': Buffer.byteLength(payload),
    };
  }
  const what = `${options.method} ${options.path}`;
  // A deadline for the whole call: an API server that accepts and then stalls cannot hold it.
  const signal = withTimeout(options.signal, timeoutMs);
  return new Promise((resolve, reject) => {
    const fail = (err: Error): void => {
      if (options.signal?.aborted === true) reject(err);
      else if (signal.aborted) reject(new Error(`${what}: no answer within ${timeoutMs} ms`, { cause: err }));
      else reject(new Error(`${what}: request failed`, { cause: err }));
    };
    const req = request({ ...httpsOptions, signal }, (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        size += c.length;
        if (size > maxBytes) res.destroy(new Error(`${what}: answer larger than ${maxBytes} bytes`));
        else chunks.push(c);
      });
      res.on('error', fail);
      res.on('end', () => resolve({ code: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('error', fail);
    req.end(payload);
  });
}

/** Sends one request and parses the JSON answer; throws KubeRequestError for non-2xx. */
export async function kubeRequest<T>(kc: KubeTarget, options: RawRequestOptions): Promise<T> {
  const { code, text } = await send(kc, options, options.accept ?? 'application/json');
  let parsed: unknown;
  try {
    parsed = text === '' ? {} : JSON.parse(text);
  } catch (err) {
    throw new Error(`${options.method} ${options.path}: answer is not JSON (HTTP ${code})`, { cause: err });
  }
  if (code >= 200 && code < 300) return parsed as T;
  const status = parsed as { message?: string; reason?: string };
  throw new KubeRequestError(code, status.reason ?? 'Unknown', status.message ?? `${options.method} ${options.path}: HTTP ${code}`);
}

/** GETs a non-JSON endpoint (e.g. /metrics) and returns its text; throws KubeRequestError for non-2xx. */
export async function kubeGetText(kc: KubeTarget, path: string): Promise<string> {
  const { code, text } = await send(kc, { method: 'GET', path }, 'text/plain, */*');
  if (code < 200 || code >= 300) throw new KubeRequestError(code, 'Unknown', `GET ${path}: HTTP ${code}`);
  return text;
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
export async function discoverResource(kc: KubeTarget, apiVersion: string, kind: string): Promise<ResourceInfo> {
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
