/**
 * The facade's access to the Kubernetes API, always as one identity: the user's own kubeconfig
 * (stdio) or the operator impersonating an authenticated HTTP caller (Impersonate-User and one
 * Impersonate-Group header per group, which client-node 1.x cannot send). Plain JSON over
 * node:https with the kubeconfig's credentials, every call cancellable through `signal`.
 */
import https, { request, type RequestOptions } from 'node:https';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import type { KubeConfig } from '@kubernetes/client-node';
import { withTimeout } from '../../lib/kube/call-options.js';
import { keepAliveAgent } from '../../lib/kube/keep-alive.js';
import { parseWatchLine, type WatchEvent } from '../../lib/kube/watch-events.js';
import { readLines } from '../../lib/lines.js';
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

/** One watch of a collection (`watch=true` and `timeoutSeconds` are added). */
export interface KubeWatchRequest {
  path: string;
  query?: Record<string, string | undefined>;
  /** The server ends the watch after this long; the client gives up a little later. */
  timeoutSeconds: number;
  signal: AbortSignal;
  /** Longest event line kept (default 4 MiB); a longer one becomes an INVALID event. */
  maxLineBytes?: number;
}

const REQUEST_TIMEOUT_MS = 30_000;
const MAX_RESPONSE_BYTES = 64 * 1024 * 1024;
/** An object is under etcd's 1.5 MiB request limit; its JSON line, escaped, stays well under this. */
const MAX_WATCH_LINE_BYTES = 4 * 1024 * 1024;
/** How long past its timeoutSeconds a watch may stay open: the server closes it first unless the connection is dead. */
const WATCH_GRACE_MS = 15_000;
/** The most of a refused watch's answer read for its Status. */
const MAX_REFUSAL_BYTES = 64 * 1024;

/** A KubeApiError from a non-2xx answer's Status, or a plain error naming the call. */
function refusal(code: number, text: string, what: string): KubeApiError {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    return new KubeApiError(code, 'Unknown', `${what}: HTTP ${code}`, { cause: err });
  }
  const status = isRecord(parsed) ? parsed : {};
  const reason = typeof status['reason'] === 'string' ? status['reason'] : 'Unknown';
  const message = typeof status['message'] === 'string' ? status['message'] : `${what}: HTTP ${code}`;
  return new KubeApiError(code, reason, message);
}

/** The start of a refused answer's body, at most `max` bytes. */
async function readUpTo(res: IncomingMessage, max: number): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of res as AsyncIterable<Buffer>) {
    chunks.push(chunk);
    size += chunk.length;
    if (size >= max) break;
  }
  return Buffer.concat(chunks).subarray(0, max).toString('utf8');
}

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

  /** The request options for `path` with the kubeconfig's credentials and, when acting for a caller, impersonation headers. */
  private async requestOptions(
    method: KubeRequest['method'],
    path: string,
    query: Record<string, string | undefined> | undefined,
  ): Promise<{ url: URL; options: RequestOptions; headers: Record<string, string | string[] | number> }> {
    const cluster = this.kc.getCurrentCluster();
    if (cluster === null) throw new Error('the kubeconfig has no current cluster');
    const url = new URL(path, cluster.server);
    for (const [k, v] of Object.entries(query ?? {})) if (v !== undefined) url.searchParams.set(k, v);
    const options: RequestOptions = {
      method,
      hostname: url.hostname,
      port: url.port,
      path: `${url.pathname}${url.search}`,
      headers: { Accept: 'application/json' },
      timeout: REQUEST_TIMEOUT_MS,
    };
    await this.kc.applyToHTTPSOptions(options);
    // client-node put a new agent (a new TLS connection) on these options; reuse connections instead.
    const perCall = options.agent;
    if (url.protocol === 'https:' && perCall instanceof https.Agent) options.agent = keepAliveAgent(perCall.options);
    const headers: Record<string, string | string[] | number> = {
      ...(options.headers as Record<string, string | string[] | number> | undefined),
    };
    if (this.identity.impersonate) {
      headers['Impersonate-User'] = this.identity.user;
      if (this.identity.groups.length > 0) headers['Impersonate-Group'] = [...this.identity.groups];
    }
    options.headers = headers;
    return { url, options, headers };
  }

  /** Sends one request and parses the JSON answer; throws KubeApiError for non-2xx answers. */
  async request<T>(req: KubeRequest): Promise<T> {
    const { url, options, headers: merged } = await this.requestOptions(req.method, req.path, req.query);
    const payload = req.body === undefined ? undefined : JSON.stringify(req.body);
    if (payload !== undefined) {
      merged['Content-Type'] = req.contentType ?? 'application/json';
      merged['Content-Length'] = Buffer.byteLength(payload);
    }
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
          if (code >= 200 && code < 300) resolve(parsed as T);
          else reject(refusal(code, text, what));
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

  /**
   * Watches a collection, yielding its events until the server ends the watch (normally at
   * timeoutSeconds), `signal` aborts, or the connection breaks (which throws). A refusal throws
   * KubeApiError before the first event. The stream is untrusted: lines are bounded and parsed
   * by parseWatchLine, so a hostile or broken answer yields INVALID events, never a crash.
   */
  async *watch(req: KubeWatchRequest): AsyncGenerator<WatchEvent, void, undefined> {
    const query = { ...req.query, watch: 'true', timeoutSeconds: String(req.timeoutSeconds) };
    const { url, options } = await this.requestOptions('GET', req.path, query);
    // Quiet stretches are normal on a watch: its deadline, not an idle timeout, bounds it.
    delete options.timeout;
    const deadline = withTimeout(req.signal, req.timeoutSeconds * 1000 + WATCH_GRACE_MS);
    options.signal = deadline;
    const what = `WATCH ${url.pathname}`;
    const send = url.protocol === 'http:' ? httpRequest : request;
    const broken = (err: unknown): Error => {
      if (req.signal.aborted) return abortError(what, err);
      if (deadline.aborted) return new Error(`${what}: open ${WATCH_GRACE_MS} ms past its timeoutSeconds`, { cause: err });
      return new Error(`${what}: the stream broke`, { cause: err });
    };
    let res: IncomingMessage;
    try {
      res = await new Promise<IncomingMessage>((resolve, reject) => {
        const r = send(options, resolve);
        r.on('error', reject);
        r.end();
      });
    } catch (err) {
      throw broken(err);
    }
    try {
      const code = res.statusCode ?? 0;
      if (code < 200 || code >= 300) throw refusal(code, await readUpTo(res, MAX_REFUSAL_BYTES), what);
      const maxLineBytes = req.maxLineBytes ?? MAX_WATCH_LINE_BYTES;
      try {
        for await (const line of readLines(res as AsyncIterable<Buffer>, maxLineBytes)) {
          const event = parseWatchLine(line, maxLineBytes);
          if (event !== undefined) yield event;
        }
      } catch (err) {
        throw broken(err);
      }
    } finally {
      res.destroy();
    }
  }
}

/** An AbortError (the name tools tell cancellation by) that keeps what was cut short. */
function abortError(what: string, cause: unknown): Error {
  const err = new Error(`${what}: aborted`, { cause });
  err.name = 'AbortError';
  return err;
}
