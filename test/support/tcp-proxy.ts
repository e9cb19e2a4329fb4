/**
 * A TCP proxy to the API server that a test can break (connections reset, new ones refused),
 * stall (established connections freeze while new ones pass — a half-dead watch) or freeze
 * (nothing moves, new connections hang: an API server that stopped answering), and kubeconfigs
 * that reach the API server through it.
 */
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { KubeConfig } from '@kubernetes/client-node';
import { testCluster } from './cluster.js';

/** A TCP proxy to the API server with switches for outages, stalls and freezes. */
export class FlakyProxy {
  private readonly server: Server;
  private readonly pairs = new Set<{ client: Socket; upstream: Socket }>();
  /** Connections accepted while frozen: held, never forwarded. */
  private readonly held = new Set<Socket>();
  private mode: 'pass' | 'refuse' | 'freeze' = 'pass';

  constructor(private readonly target: URL) {
    this.server = createServer((client) => this.accept(client));
  }

  async start(): Promise<number> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(0, '127.0.0.1', () => resolve());
    });
    return (this.server.address() as AddressInfo).port;
  }

  /** Resets every connection and refuses new ones until `restore()`. */
  breakConnections(): void {
    this.mode = 'refuse';
    for (const p of this.pairs) this.destroy(p);
  }

  restore(): void {
    this.mode = 'pass';
  }

  /** Freezes every established connection (bytes stop flowing, sockets stay open). */
  stallEstablished(): void {
    for (const { client, upstream } of this.pairs) {
      client.unpipe(upstream);
      upstream.unpipe(client);
      client.pause();
      upstream.pause();
    }
  }

  /** The API server stops answering: established connections stall and new ones are accepted but never served. */
  freeze(): void {
    this.mode = 'freeze';
    this.stallEstablished();
  }

  /** Ends a freeze as a network outage ends: the frozen connections are reset, new ones pass. */
  thaw(): void {
    this.mode = 'pass';
    for (const p of this.pairs) this.destroy(p);
    for (const socket of this.held) socket.destroy();
    this.held.clear();
  }

  async stop(): Promise<void> {
    for (const p of this.pairs) this.destroy(p);
    for (const socket of this.held) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private accept(client: Socket): void {
    if (this.mode === 'refuse') {
      client.resetAndDestroy();
      return;
    }
    if (this.mode === 'freeze') {
      client.pause();
      this.held.add(client);
      client.on('error', () => this.held.delete(client)).on('close', () => this.held.delete(client));
      return;
    }
    const upstream = connect(Number(this.target.port), this.target.hostname);
    const pair = { client, upstream };
    this.pairs.add(pair);
    client.pipe(upstream);
    upstream.pipe(client);
    const done = (): void => this.destroy(pair);
    client.on('error', done).on('close', done);
    upstream.on('error', done).on('close', done);
  }

  private destroy(pair: { client: Socket; upstream: Socket }): void {
    this.pairs.delete(pair);
    pair.client.destroy();
    pair.upstream.destroy();
  }
}

/** `kc` (default: the admin's) pointed at another server URL, e.g. a proxy's. */
export function kubeConfigVia(server: string, kc: KubeConfig = testCluster().admin()): KubeConfig {
  const copy = new KubeConfig();
  copy.loadFromOptions({
    clusters: kc.clusters.map((c) => ({ ...c, server })),
    users: kc.users,
    contexts: kc.contexts,
    currentContext: kc.currentContext,
  });
  return copy;
}
