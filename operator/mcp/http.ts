/**
 * Streamable HTTP transport for the operator's /mcp endpoint (stateless: one MCP server and
 * transport per request). Every request passes, in order:
 *   Host/Origin allow-list (DNS rebinding) → 403;  bearer token verified by TokenReview → 401;
 *   per-identity token bucket → 429;  body limit → 413;  then the tools run AS THE CALLER
 *   (Impersonate-User/Group with the operator's identity), so the caller's RBAC decides.
 */
import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { KubeConfig } from '@kubernetes/client-node';
import { close, listen } from '../../lib/http-server.js';
import { errorFields, type Logger } from '../../lib/logger.js';
import { DEFAULT_SETTINGS, newFacadeServer } from './facade.js';
import { KubeClient, type CallerIdentity } from './kube.js';
import type { FacadeSettings } from './tool.js';

/** Per-identity rate limit: a token bucket of `burst` calls refilled at `perSecond`. */
export interface RateLimit {
  burst: number;
  perSecond: number;
}

/** Options of the MCP HTTP endpoint. */
export interface McpHttpOptions {
  /** The operator's own identity: TokenReview, and impersonation of callers. */
  kc: KubeConfig;
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
  rateLimit?: RateLimit;
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
}

/** A standalone MCP HTTP server. */
export interface McpHttpServer {
  /** Resolves with the bound address once listening; rejects on a bind error. */
  start(): Promise<AddressInfo>;
  stop(): Promise<void>;
  readonly handler: McpRequestHandler;
}

const DEFAULT_RATE_LIMIT: RateLimit = { burst: 60, perSecond: 10 };
const DEFAULT_MAX_BODY = 1024 * 1024;
const TOKEN_CACHE_MS = 30_000;
const TOKEN_CACHE_MAX = 10_000;
const BUCKETS_MAX = 10_000;

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
    for (const [key, b] of this.buckets) if (b.tokens + ((now - b.at) / 1000) * this.limit.perSecond >= this.limit.burst) this.buckets.delete(key);
    if (this.buckets.size >= BUCKETS_MAX) this.buckets.delete(this.buckets.keys().next().value ?? '');
  }
}

/** TokenReview with a short cache (keyed by the token's hash, never the token). */
class TokenReviewer {
  private readonly cache = new Map<string, { identity: CallerIdentity | undefined; until: number }>();
  private readonly client: KubeClient;

  constructor(
    kc: KubeConfig,
    private readonly audiences: readonly string[] | undefined,
  ) {
    this.client = new KubeClient(kc, { user: 'gpudiag-operator', groups: [], impersonate: false });
  }

  async review(token: string, now: number): Promise<CallerIdentity | undefined> {
    const key = createHash('sha256').update(token).digest('hex');
    const hit = this.cache.get(key);
    if (hit !== undefined && hit.until > now) return hit.identity;
    const review = await this.client.request<{ status?: { authenticated?: boolean; user?: { username?: string; groups?: string[] } } }>({
      method: 'POST',
      path: '/apis/authentication.k8s.io/v1/tokenreviews',
      body: { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview', spec: { token, ...(this.audiences !== undefined ? { audiences: [...this.audiences] } : {}) } },
      signal: AbortSignal.timeout(10_000),
    });
    const user = review.status?.user?.username;
    const identity = review.status?.authenticated === true && user !== undefined && user !== '' ? { user, groups: review.status?.user?.groups ?? [], impersonate: true } : undefined;
    if (this.cache.size >= TOKEN_CACHE_MAX) this.cache.clear();
    this.cache.set(key, { identity, until: now + TOKEN_CACHE_MS });
    return identity;
  }
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
  const settings: FacadeSettings = Object.freeze({ ...DEFAULT_SETTINGS, ...options.settings, namespace: options.namespace, readOnly: options.readOnly ?? false });
  const allowedHosts = new Set((options.allowedHosts ?? ['localhost', '127.0.0.1', '::1']).map((h) => h.toLowerCase()));
  const allowedOrigins = new Set(options.allowedOrigins ?? []);
  const limiter = new RateLimiter(options.rateLimit ?? DEFAULT_RATE_LIMIT);
  const reviewer = new TokenReviewer(options.kc, options.audiences);
  const maxBody = options.maxBodyBytes ?? DEFAULT_MAX_BODY;
  const path = options.path ?? '/mcp';

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    try {
      const host = req.headers.host;
      if (host === undefined || !allowedHosts.has(hostName(host))) throw new HttpError(403, 'forbidden: Host header not allowed');
      const origin = req.headers.origin;
      if (origin !== undefined && !allowedOrigins.has(origin)) throw new HttpError(403, 'forbidden: Origin not allowed');
      if (req.method !== 'POST') throw new HttpError(405, 'method not allowed: this stateless MCP endpoint accepts POST only', { Allow: 'POST' });
      const auth = req.headers.authorization;
      const token = auth !== undefined && /^Bearer\s+\S+$/i.test(auth) ? auth.replace(/^Bearer\s+/i, '') : undefined;
      const challenge = { 'WWW-Authenticate': 'Bearer realm="gpudiag-mcp"' };
      if (token === undefined) throw new HttpError(401, 'unauthorized: send a Kubernetes bearer token (Authorization: Bearer <token>)', challenge);
      let identity: CallerIdentity | undefined;
      try {
        identity = await reviewer.review(token, Date.now());
      } catch (err) {
        logger.warn('TokenReview failed', errorFields(err));
        throw new HttpError(503, 'cannot verify the token right now (TokenReview failed)');
      }
      if (identity === undefined) throw new HttpError(401, 'unauthorized: the token was not accepted by TokenReview', challenge);
      const wait = limiter.take(identity.user, Date.now());
      if (wait > 0) throw new HttpError(429, `too many requests for ${identity.user}; retry in ${wait} s`, { 'Retry-After': String(wait) });
      const body = await readBody(req, maxBody);
      const server = newFacadeServer(new KubeClient(options.kc, identity), settings, logger.child({ caller: identity.user }));
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
  return { handle, path };
}

/** Creates a standalone MCP HTTP server (start() resolves once listening). */
export function createMcpHttpServer(options: McpHttpServerOptions): McpHttpServer {
  const handler = createMcpRequestHandler(options);
  let server: Server | undefined;
  return {
    handler,
    async start(): Promise<AddressInfo> {
      server = createServer((req, res) => {
        const url = new URL(req.url ?? '/', 'http://localhost');
        if (url.pathname !== handler.path) {
          res.writeHead(404, { 'Content-Type': 'text/plain' }).end('not found\n');
          return;
        }
        void handler.handle(req, res);
      });
      server.requestTimeout = 15 * 60_000;
      return listen(server, options.port, options.host);
    },
    async stop(): Promise<void> {
      if (server !== undefined) await close(server);
    },
  };
}
