/**
 * Streamable HTTP transport for the operator's /mcp endpoint (stateless: one MCP server and
 * transport per request), served behind lib/http's guard. Every request passes, in order:
 *   Host/Origin allow-list (DNS rebinding) → 403;  bearer token → 401;  a token not in the
 *   cache is rate-limited per client address before its TokenReview → 429, and TokenReviews in
 *   flight are bounded → 503;  TokenReview → 401;  per-identity token bucket → 429;  body
 *   limit → 413;  then the tools run AS THE CALLER (Impersonate-User/Group with the
 *   operator's identity), so the caller's RBAC decides.
 */
import { createHash } from 'node:crypto';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { KubeTarget } from '../../lib/kube/raw-request.js';
import type { RequestTarget } from '../../lib/http/request-target.js';
import { close, createGuardedServer, listen } from '../../lib/http/server.js';
import { errorFields, type Logger } from '../../lib/logger.js';
import { LruCache } from '../../lib/lru-cache.js';
import { DEFAULT_SETTINGS, newFacadeServer } from './facade.js';
import { KubeClient, type CallerIdentity } from './kube.js';
import { DEFAULT_RATE_LIMIT, type RateLimit } from './limits.js';
import type { FacadeSettings } from './tool.js';

/** Options of the MCP HTTP endpoint. */
export interface McpHttpOptions {
  /** The operator's own identity: TokenReview, and impersonation of callers. */
  /** The operator's own API server connection (a lib/kube connection or client-node's KubeConfig). */
  kc: KubeTarget;
  /** Namespace of GPUDiagnostics when a call names none. */
  namespace: string;
  readOnly?: boolean;
  logger: Logger;
  /** Host header names accepted (without port), e.g. the Service's DNS names. Default localhost, 127.0.0.1, ::1. */
  allowedHosts?: readonly string[];
  /** Origin header values accepted (browsers); requests without Origin are accepted. Default none. */
  allowedOrigins?: readonly string[];
  /** TokenReview audiences the caller's token must carry; default the API server's own. */
  audiences?: readonly string[];
  /** Calls per authenticated identity (default 60 at once, 10 per second). */
  rateLimit?: RateLimit;
  /** TokenReviews per client address for tokens not in the cache (default 20 at once, 5 per second). */
  reviewRateLimit?: RateLimit;
  /** Largest request body accepted (default 1 MiB). */
  maxBodyBytes?: number;
  /** The path served (default /mcp). */
  path?: string;
  /** Facade settings other than namespace and readOnly (agent location, TTL, waits). */
  settings?: Partial<Omit<FacadeSettings, 'namespace' | 'readOnly'>>;
}

/** Options of a standalone MCP HTTP server. */
export interface McpHttpServerOptions extends McpHttpOptions {
  host: string;
  port: number;
}

/** A request handler for /mcp that the operator can mount on its own HTTP server. */
export interface McpRequestHandler {
  /** Serves one request (the caller has matched the path). */
  handle(req: IncomingMessage, res: ServerResponse): Promise<void>;
  /** The path it expects. */
  readonly path: string;
  /** Shutdown begins: calls waiting for a diagnostic answer with their progress at once. */
  drain(): void;
}

/** A standalone MCP HTTP server. */
export interface McpHttpServer {
  /** Resolves with the bound address once listening; rejects on a bind error. */
  start(): Promise<AddressInfo>;
  /** Ends waiting calls with their progress, then closes, cutting connections after `graceMs`. */
  stop(graceMs?: number): Promise<void>;
  readonly handler: McpRequestHandler;
}

const DEFAULT_REVIEW_RATE_LIMIT: RateLimit = { burst: 20, perSecond: 5 };
const DEFAULT_MAX_BODY = 1024 * 1024;
const TOKEN_CACHE_MS = 30_000;
const TOKEN_CACHE_MAX = 10_000;
/** TokenReviews in flight at once; more callers get 503 rather than a queue on the API server. */
const MAX_REVIEWS_IN_FLIGHT = 32;
const REVIEW_TIMEOUT_MS = 10_000;
/** Longest bearer token considered (projected tokens are about 1 KiB). */
const MAX_TOKEN_CHARS = 16 * 1024;
const BUCKETS_MAX = 10_000;
/**
 * Socket idle bound: a call may wait up to waitSeconds (at most 600) without sending a byte,
 * so the MCP listener allows longer than the usual two minutes.
 */
const MCP_IDLE_TIMEOUT_MS = 11 * 60_000;
const MAX_CONNECTIONS = 1024;

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

function jsonRpcError(res: ServerResponse, err: HttpError): void {
  if (res.headersSent) {
    res.end();
    return;
  }
  res.writeHead(err.status, { 'Content-Type': 'application/json', ...err.headers });
  res.end(JSON.stringify({ jsonrpc: '2.0', error: { code: -32000, message: err.message }, id: null }));
}

function hostName(host: string): string {
  // Host may carry a port; IPv6 literals come in brackets.
  const m = /^\[([^\]]+)\](?::\d+)?$/.exec(host);
  if (m?.[1] !== undefined) return m[1].toLowerCase();
  return host.replace(/:\d+$/, '').toLowerCase();
}

/** Token-bucket limiter keyed by identity. */
class RateLimiter {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();
  constructor(private readonly limit: RateLimit) {}

  /** Takes one token; returns the seconds to wait when there is none. */
  take(key: string, now: number): number {
    let bucket = this.buckets.get(key);
    if (bucket === undefined) {
      if (this.buckets.size >= BUCKETS_MAX) this.evict(now);
      bucket = { tokens: this.limit.burst, at: now };
      this.buckets.set(key, bucket);
    }
    bucket.tokens = Math.min(this.limit.burst, bucket.tokens + ((now - bucket.at) / 1000) * this.limit.perSecond);
    bucket.at = now;
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      return 0;
    }
    return Math.ceil((1 - bucket.tokens) / this.limit.perSecond);
  }

  private evict(now: number): void {
    // Full buckets are the same as new ones: drop them first, then the oldest.
    for (const [key, b] of this.buckets)
      if (b.tokens + ((now - b.at) / 1000) * this.limit.perSecond >= this.limit.burst) this.buckets.delete(key);
    if (this.buckets.size >= BUCKETS_MAX) this.buckets.delete(this.buckets.keys().next().value ?? '');
  }
}

/** TokenReview with a short, bounded LRU cache (keyed by the token's hash, never the token). */
class TokenReviewer {
  private readonly cache = new LruCache<string, { identity: CallerIdentity | undefined }>(TOKEN_CACHE_MAX);
  private readonly client: KubeClient;
  private inFlight = 0;

  constructor(
    kc: KubeTarget,
    private readonly audiences: readonly string[] | undefined,
  ) {
    this.client = new KubeClient(kc, { user: 'gpudiag-operator', groups: [], impersonate: false });
  }

  /** The cached answer for `token`, if any (`{ identity: undefined }` caches a refusal). */
  cached(token: string): { identity: CallerIdentity | undefined } | undefined {
    return this.cache.get(hashOf(token));
  }

  /** Asks the API server; throws HttpError 503 when too many reviews are in flight. */
  async review(token: string, signal: AbortSignal): Promise<CallerIdentity | undefined> {
    if (this.inFlight >= MAX_REVIEWS_IN_FLIGHT)
      throw new HttpError(503, 'too many token reviews in flight; retry shortly', { 'Retry-After': '1' });
    this.inFlight++;
    try {
      const review = await this.client.request<{ status?: { authenticated?: boolean; user?: { username?: string; groups?: string[] } } }>({
        method: 'POST',
        path: '/apis/authentication.k8s.io/v1/tokenreviews',
        body: {
          apiVersion: 'authentication.k8s.io/v1',
          kind: 'TokenReview',
          spec: { token, ...(this.audiences !== undefined ? { audiences: [...this.audiences] } : {}) },
        },
        signal: AbortSignal.any([signal, AbortSignal.timeout(REVIEW_TIMEOUT_MS)]),
      });
      const user = review.status?.user?.username;
      const identity =
        review.status?.authenticated === true && user !== undefined && user !== ''
          ? { user, groups: review.status?.user?.groups ?? [], impersonate: true }
          : undefined;
      this.cache.set(hashOf(token), { identity }, TOKEN_CACHE_MS);
      return identity;
    } finally {
      this.inFlight--;
    }
  }
}

function hashOf(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

async function readBody(req: IncomingMessage, max: number): Promise<unknown> {
  const declared = Number(req.headers['content-length'] ?? '0');
  if (declared > max) throw new HttpError(413, `request body larger than ${max} bytes`);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    const buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk));
    size += buf.length;
    if (size > max) throw new HttpError(413, `request body larger than ${max} bytes`);
    chunks.push(buf);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch (err) {
    throw new HttpError(400, `request body is not JSON: ${err instanceof Error ? err.message : String(err)}`);
  }
}

/** Creates the /mcp request handler (for the operator to mount on its HTTP server). */
export function createMcpRequestHandler(options: McpHttpOptions): McpRequestHandler {
  const logger = options.logger.child({ component: 'mcp-http' });
  const settings: FacadeSettings = Object.freeze({
    ...DEFAULT_SETTINGS,
    ...options.settings,
    namespace: options.namespace,
    readOnly: options.readOnly ?? false,
  });
  const allowedHosts = new Set((options.allowedHosts ?? ['localhost', '127.0.0.1', '::1']).map((h) => h.toLowerCase()));
  const allowedOrigins = new Set(options.allowedOrigins ?? []);
  const limiter = new RateLimiter(options.rateLimit ?? DEFAULT_RATE_LIMIT);
  const reviewLimiter = new RateLimiter(options.reviewRateLimit ?? DEFAULT_REVIEW_RATE_LIMIT);
  const reviewer = new TokenReviewer(options.kc, options.audiences);
  const maxBody = options.maxBodyBytes ?? DEFAULT_MAX_BODY;
  const path = options.path ?? '/mcp';
  const stopping = new AbortController();
  const challenge = { 'WWW-Authenticate': 'Bearer realm="gpudiag-mcp"' };

  /** The caller's identity: from the cache, or a TokenReview limited per client address. */
  async function authenticate(req: IncomingMessage, res: ServerResponse): Promise<CallerIdentity> {
    const auth = req.headers.authorization;
    const token = auth !== undefined && /^Bearer\s+\S+$/i.test(auth) ? auth.replace(/^Bearer\s+/i, '') : undefined;
    if (token === undefined || token.length > MAX_TOKEN_CHARS)
      throw new HttpError(401, 'unauthorized: send a Kubernetes bearer token (Authorization: Bearer <token>)', challenge);
    const hit = reviewer.cached(token);
    let identity: CallerIdentity | undefined;
    if (hit !== undefined) identity = hit.identity;
    else {
      // Before the TokenReview: a client spraying tokens costs the API server nothing beyond its bucket.
      const wait = reviewLimiter.take(req.socket.remoteAddress ?? 'unknown', Date.now());
      if (wait > 0)
        throw new HttpError(429, `too many unauthenticated requests from this address; retry in ${wait} s`, {
          'Retry-After': String(wait),
        });
      const gone = new AbortController();
      const onClose = (): void => gone.abort(new Error('client went away'));
      res.once('close', onClose);
      try {
        identity = await reviewer.review(token, gone.signal);
      } catch (err) {
        if (err instanceof HttpError) throw err;
        logger.warn('TokenReview failed', errorFields(err));
        throw new HttpError(503, 'cannot verify the token right now (TokenReview failed)');
      } finally {
        res.off('close', onClose);
      }
    }
    if (identity === undefined) throw new HttpError(401, 'unauthorized: the token was not accepted by TokenReview', challenge);
    return identity;
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    try {
      const host = req.headers.host;
      if (host === undefined || !allowedHosts.has(hostName(host))) throw new HttpError(403, 'forbidden: Host header not allowed');
      const origin = req.headers.origin;
      if (origin !== undefined && !allowedOrigins.has(origin)) throw new HttpError(403, 'forbidden: Origin not allowed');
      if (req.method !== 'POST')
        throw new HttpError(405, 'method not allowed: this stateless MCP endpoint accepts POST only', { Allow: 'POST' });
      const identity = await authenticate(req, res);
      const wait = limiter.take(identity.user, Date.now());
      if (wait > 0) throw new HttpError(429, `too many requests for ${identity.user}; retry in ${wait} s`, { 'Retry-After': String(wait) });
      const body = await readBody(req, maxBody);
      const server = newFacadeServer(
        new KubeClient(options.kc, identity),
        settings,
        logger.child({ caller: identity.user }),
        stopping.signal,
      );
      await server.handleHttp(req, res, body);
    } catch (err) {
      if (err instanceof HttpError) {
        logger.debug('request refused', { status: err.status, reason: err.message });
        // Drain what is left of a refused body so the connection can be reused or closed cleanly.
        if (!req.complete) req.resume();
        jsonRpcError(res, err);
        return;
      }
      logger.error('MCP request failed', errorFields(err));
      jsonRpcError(res, new HttpError(500, 'internal error'));
    }
  }
  return { handle, path, drain: () => stopping.abort(new Error('the server is shutting down')) };
}

/** Creates a standalone MCP HTTP server (start() resolves once listening). */
export function createMcpHttpServer(options: McpHttpServerOptions): McpHttpServer {
  const handler = createMcpRequestHandler(options);
  const serve = (req: IncomingMessage, res: ServerResponse, target: RequestTarget): Promise<void> | void => {
    if (target.path !== handler.path) {
      res.writeHead(404, { 'Content-Type': 'text/plain' }).end('not found\n');
      return;
    }
    return handler.handle(req, res);
  };
  const server: Server = createGuardedServer({
    name: 'mcp',
    logger: options.logger,
    handler: serve,
    maxBodyBytes: options.maxBodyBytes ?? DEFAULT_MAX_BODY,
    timeouts: { idleMs: MCP_IDLE_TIMEOUT_MS },
    maxConnections: MAX_CONNECTIONS,
  });
  return {
    handler,
    start: () => listen(server, options.port, options.host),
    async stop(graceMs = 5_000): Promise<void> {
      handler.drain();
      await close(server, graceMs);
    },
  };
}
