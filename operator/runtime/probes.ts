/**
 * The operator's probe server: `/healthz` (liveness: the event loop keeps beating),
 * `/readyz` (a readiness callback, e.g. informers synced) and `/metrics` (the component's own
 * prom-client Registry, never the global one). Start resolves only once the socket is bound.
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import type { RequestTarget } from '../../lib/http/request-target.js';
import { close, createGuardedServer, listen } from '../../lib/http/server.js';
import { createLogger, errorFields, type Logger } from '../../lib/logger.js';

/** Options of a {@link ProbeServer}. */
export interface ProbeServerOptions {
  /** Port to bind (0 picks a free one). */
  port: number;
  /** Address to bind (default all interfaces, as kubelet probes the pod IP). */
  host?: string;
  /** The component's metrics registry, served on /metrics. */
  registry: Registry;
  /** Readiness: true when the component can do its job (informers synced...). */
  ready: () => boolean | Promise<boolean>;
  /** Heartbeat period of the liveness check (default 1 s). */
  heartbeatMs?: number;
  /** /healthz fails when the event loop stalled longer than this (default 10 s). */
  maxStallMs?: number;
  logger?: Logger;
}

/** Open connections the probe server accepts (kubelet probes and a few scrapers). */
const MAX_CONNECTIONS = 256;

/** HTTP server for liveness, readiness and metrics. */
export class ProbeServer {
  private readonly server: Server;
  private readonly heartbeatMs: number;
  private readonly maxStallMs: number;
  private heartbeat: ReturnType<typeof setInterval> | undefined;
  private lastBeat = 0;
  private worstLagMs = 0;
  private bound: AddressInfo | undefined;

  constructor(private readonly options: ProbeServerOptions) {
    this.heartbeatMs = options.heartbeatMs ?? 1_000;
    this.maxStallMs = options.maxStallMs ?? 10_000;
    this.server = createGuardedServer({
      name: 'probes',
      logger: options.logger ?? createLogger({ silent: true }),
      handler: (req, res, target) => this.handle(req, res, target),
      // GET and HEAD only: any request body is refused.
      maxBodyBytes: 0,
      maxConnections: MAX_CONNECTIONS,
    });
  }

  /** The bound address once started. */
  get address(): AddressInfo | undefined {
    return this.bound;
  }

  /** Binds the port; resolves on `listening`, rejects on `error` (EADDRINUSE...). */
  async start(): Promise<AddressInfo> {
    if (this.bound !== undefined) throw new Error('probe server already started');
    this.bound = await listen(this.server, this.options.port, this.options.host ?? '0.0.0.0');
    this.lastBeat = Date.now();
    this.worstLagMs = 0;
    this.heartbeat = setInterval(() => this.beat(), this.heartbeatMs);
    this.heartbeat.unref();
    return this.bound;
  }

  /** Stops the heartbeat and closes the server (in-flight requests get a short grace). */
  async stop(): Promise<void> {
    if (this.heartbeat !== undefined) clearInterval(this.heartbeat);
    this.heartbeat = undefined;
    this.bound = undefined;
    await close(this.server, 2_000);
  }

  /** Liveness: the heartbeat ran recently and did not come late by more than maxStallMs. */
  isAlive(now = Date.now()): boolean {
    return this.heartbeat !== undefined && now - this.lastBeat <= this.heartbeatMs + this.maxStallMs && this.worstLagMs <= this.maxStallMs;
  }

  private beat(): void {
    const now = Date.now();
    const lag = Math.max(0, now - this.lastBeat - this.heartbeatMs);
    // Keep the latest lag only: a stall that ended is reported until the next on-time beat.
    this.worstLagMs = lag;
    this.lastBeat = now;
  }

  private async handle(req: IncomingMessage, res: ServerResponse, target: RequestTarget): Promise<void> {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { Allow: 'GET, HEAD', 'Content-Type': 'text/plain; charset=utf-8' }).end('method not allowed\n');
      return;
    }
    switch (target.path) {
      case '/healthz':
      case '/livez':
        this.text(res, this.isAlive() ? 200 : 503, this.isAlive() ? 'ok' : 'event loop stalled');
        return;
      case '/readyz': {
        let ready = false;
        try {
          ready = this.bound !== undefined && (await this.options.ready());
        } catch (err) {
          this.options.logger?.warn('readiness check failed', errorFields(err));
        }
        this.text(res, ready ? 200 : 503, ready ? 'ok' : 'not ready');
        return;
      }
      case '/metrics': {
        const body = await this.options.registry.metrics();
        res.writeHead(200, { 'Content-Type': this.options.registry.contentType }).end(req.method === 'HEAD' ? undefined : body);
        return;
      }
      default:
        this.text(res, 404, 'not found');
    }
  }

  private text(res: ServerResponse, code: number, body: string): void {
    res.writeHead(code, { 'Content-Type': 'text/plain; charset=utf-8', 'Cache-Control': 'no-store' }).end(`${body}\n`);
  }
}
