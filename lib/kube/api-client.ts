/**
 * The one way this code talks to the Kubernetes API: plain JSON over node:https with a
 * KubeTarget's credentials (lib/kube/connection.ts, or client-node's KubeConfig where a
 * kubeconfig needs an exec plugin), on keep-alive connections, every call bounded by a deadline
 * and cancellable through its signal. Watches stream bounded lines through parseWatchLine.
 *
 * Nothing here loads client-node: the operator and the agent run without it (client-node 1.x
 * makes a TLS connection per call, 5–8 ms each, and its import alone is ~74 MiB of RSS).
 */
import https, { request as httpsRequest, type RequestOptions } from 'node:https';
import { request as httpRequest, type ClientRequest, type IncomingMessage } from 'node:http';
import { readLines } from '../lines.js';
import { isRecord } from '../records.js';
import { DEFAULT_API_CALL_TIMEOUT_MS, withTimeout } from './deadline.js';
import { keepAliveAgent } from './keep-alive.js';
import { KubeRequestError, type KubeTarget } from './raw-request.js';
import { parseWatchLine, type WatchEvent } from './watch-events.js';

/** Header values one client adds to every request (impersonation). */
export type ExtraHeaders = Readonly<Record<string, string | readonly string[]>>;

/** One API request. */
export interface ApiRequest {
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  path: string;
  query?: Readonly<Record<string, string | undefined>>;
  body?: unknown;
  contentType?: string;
  signal?: AbortSignal | undefined;
  /** Deadline of the whole call, answer included (default: the client's). */
  timeoutMs?: number;
}

/** One watch of a collection (`watch=true` and `timeoutSeconds` are added). */
export interface ApiWatchRequest {
  path: string;
  query?: Readonly<Record<string, string | undefined>>;
  /** The server ends the watch after this long; the client gives up a little later. */
  timeoutSeconds: number;
  signal: AbortSignal;
  /** Longest event line kept (default 4 MiB); a longer one becomes an INVALID event. */
  maxLineBytes?: number;
}

/** Options of an {@link ApiClient}. */
export interface ApiClientOptions {
  /** Deadline of a call that names none (default 30 s). */
  timeoutMs?: number;
  /** Added to every request (e.g. Impersonate-User). */
  headers?: ExtraHeaders;
}

/** Largest answer read; a bigger one fails the call instead of filling memory. */
const MAX_RESPONSE_BYTES = 64 * 1024 * 1024;
/** An object is under etcd's 1.5 MiB request limit; its JSON line, escaped, stays well under this. */
const MAX_WATCH_LINE_BYTES = 4 * 1024 * 1024;
/** How long past its timeoutSeconds a watch may stay open: the server closes it first unless the connection is dead. */
export const WATCH_GRACE_MS = 15_000;
/** The most of a refused watch's answer read for its Status. */
const MAX_REFUSAL_BYTES = 64 * 1024;
/** Errors of a kept-alive socket the server closed just as it was reused: the request never reached it. */
const STALE_SOCKET_CODES = new Set(['ECONNRESET', 'EPIPE']);

/** A KubeRequestError from a non-2xx answer's Status. */
export function refusal(code: number, text: string, what: string): KubeRequestError {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    return new KubeRequestError(code, 'Unknown', `${what}: HTTP ${code}`, { cause: err });
  }
  const status = isRecord(parsed) ? parsed : {};
  const reason = typeof status['reason'] === 'string' ? status['reason'] : 'Unknown';
  const message = typeof status['message'] === 'string' ? status['message'] : `${what}: HTTP ${code}`;
  return new KubeRequestError(code, reason, message);
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

/** An AbortError (the name callers tell cancellation by) that keeps what was cut short. */
function abortError(what: string, cause: unknown): Error {
  const err = new Error(`${what}: aborted`, { cause });
  err.name = 'AbortError';
  return err;
}

/** The TLS settings a KubeTarget put on `options`, as the options of an agent. */
function tlsSettings(options: RequestOptions): https.AgentOptions {
  // client-node's KubeConfig puts a fresh agent on the options; the lean connection sets the fields.
  if (options.agent instanceof https.Agent) return options.agent.options;
  const { ca, cert, key, servername, rejectUnauthorized } = options;
  return {
    ...(ca !== undefined ? { ca } : {}),
    ...(cert !== undefined ? { cert } : {}),
    ...(key !== undefined ? { key } : {}),
    ...(servername !== undefined ? { servername } : {}),
    ...(rejectUnauthorized !== undefined ? { rejectUnauthorized } : {}),
  };
}

/** Sends `options` and resolves with the answer's head; the body is the caller's to read. */
function open(url: URL, options: RequestOptions, payload: string | undefined): Promise<{ res: IncomingMessage; req: ClientRequest }> {
  const send = url.protocol === 'http:' ? httpRequest : httpsRequest;
  return new Promise((resolve, reject) => {
    const req = send(options, (res) => resolve({ res, req }));
    req.on('error', (err) => reject(Object.assign(err, { reusedSocket: req.reusedSocket })));
    req.end(payload);
  });
}

/** The API server with one set of credentials. */
export class ApiClient {
  private readonly timeoutMs: number;
  private readonly headers: ExtraHeaders;

  constructor(
    readonly target: KubeTarget,
    options: ApiClientOptions = {},
  ) {
    this.timeoutMs = options.timeoutMs ?? DEFAULT_API_CALL_TIMEOUT_MS;
    this.headers = options.headers ?? {};
  }

  /** The same API server and credentials with other extra headers. */
  withHeaders(headers: ExtraHeaders): ApiClient {
    return new ApiClient(this.target, { timeoutMs: this.timeoutMs, headers });
  }

  /** The request options for `path` with the target's credentials, on a shared keep-alive connection. */
  private async requestOptions(
    method: ApiRequest['method'],
    path: string,
    query: ApiRequest['query'],
  ): Promise<{ url: URL; options: RequestOptions; headers: Record<string, string | string[] | number> }> {
    const cluster = this.target.getCurrentCluster();
    if (cluster === null) throw new Error('the kubeconfig has no current cluster');
    const url = new URL(path, cluster.server);
    for (const [k, v] of Object.entries(query ?? {})) if (v !== undefined) url.searchParams.set(k, v);
    const options: RequestOptions = {
      method,
      hostname: url.hostname,
      port: url.port,
      path: `${url.pathname}${url.search}`,
      headers: { Accept: 'application/json' },
    };
    await this.target.applyToHTTPSOptions(options);
    if (url.protocol === 'https:') options.agent = keepAliveAgent(tlsSettings(options));
    const headers: Record<string, string | string[] | number> = {
      ...(options.headers as Record<string, string | string[] | number> | undefined),
    };
    for (const [name, value] of Object.entries(this.headers)) headers[name] = typeof value === 'string' ? value : [...value];
    options.headers = headers;
    return { url, options, headers };
  }

  /** Sends one request and parses the JSON answer; throws KubeRequestError for non-2xx answers. */
  async request<T>(req: ApiRequest): Promise<T> {
    const timeoutMs = req.timeoutMs ?? this.timeoutMs;
    const what = `${req.method} ${req.path}`;
    const payload = req.body === undefined ? undefined : JSON.stringify(req.body);
    // A deadline, not only an idle timeout: an API server that trickles bytes cannot hold a call.
    const deadline = withTimeout(req.signal, timeoutMs);
    const failed = (err: unknown): Error => {
      if (req.signal?.aborted === true) return abortError(what, err);
      if (deadline.aborted) return new Error(`${what}: no answer within ${timeoutMs} ms`, { cause: err });
      return new Error(`${what}: request failed`, { cause: err });
    };
    for (let attempt = 1; ; attempt++) {
      const { url, options, headers } = await this.requestOptions(req.method, req.path, req.query);
      if (payload !== undefined) {
        headers['Content-Type'] = req.contentType ?? 'application/json';
        headers['Content-Length'] = Buffer.byteLength(payload);
      }
      options.signal = deadline;
      let res: IncomingMessage;
      try {
        ({ res } = await open(url, options, payload));
      } catch (err) {
        // A kept-alive connection the server closed while idle fails before any answer: send once more on a new one.
        const stale = (err as { reusedSocket?: boolean; code?: string }).reusedSocket === true;
        if (attempt === 1 && stale && STALE_SOCKET_CODES.has((err as { code?: string }).code ?? '') && !deadline.aborted) continue;
        throw failed(err);
      }
      let text: string;
      try {
        text = await readBody(res, MAX_RESPONSE_BYTES, what);
      } catch (err) {
        throw failed(err);
      }
      const code = res.statusCode ?? 0;
      let parsed: unknown;
      try {
        parsed = text === '' ? {} : JSON.parse(text);
      } catch (err) {
        if (code < 200 || code >= 300) throw new KubeRequestError(code, 'Unknown', `${what}: HTTP ${code}`, { cause: err });
        throw new Error(`${what}: answer is not JSON (HTTP ${code})`, { cause: err });
      }
      if (code >= 200 && code < 300) return parsed as T;
      throw refusal(code, text, what);
    }
  }

  /**
   * Watches a collection, yielding its events until the server ends the watch (normally at
   * timeoutSeconds), `signal` aborts, or the connection breaks (which throws). A refusal throws
   * KubeRequestError before the first event. The stream is untrusted: lines are bounded and
   * parsed by parseWatchLine, so a hostile or broken answer yields INVALID events, never a crash.
   */
  async *watch(req: ApiWatchRequest): AsyncGenerator<WatchEvent, void, undefined> {
    const query = { ...req.query, watch: 'true', timeoutSeconds: String(req.timeoutSeconds) };
    const { url, options } = await this.requestOptions('GET', req.path, query);
    const deadline = withTimeout(req.signal, req.timeoutSeconds * 1000 + WATCH_GRACE_MS);
    options.signal = deadline;
    const what = `WATCH ${url.pathname}`;
    const broken = (err: unknown): Error => {
      if (req.signal.aborted) return abortError(what, err);
      if (deadline.aborted) return new Error(`${what}: open ${WATCH_GRACE_MS} ms past its timeoutSeconds`, { cause: err });
      return new Error(`${what}: the stream broke`, { cause: err });
    };
    let res: IncomingMessage;
    try {
      ({ res } = await open(url, options, undefined));
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

/** The whole body as text, failing past `max` bytes. */
function readBody(res: IncomingMessage, max: number, what: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    res.on('data', (c: Buffer) => {
      size += c.length;
      if (size > max) res.destroy(new Error(`${what}: answer larger than ${max} bytes`));
      else chunks.push(c);
    });
    res.on('error', (err) => reject(new Error(`${what}: reading the answer failed`, { cause: err })));
    res.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
  });
}
