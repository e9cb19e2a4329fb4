import { afterEach, describe, expect, it } from '@jest/globals';
import { Counter, Registry } from 'prom-client';
import { ProbeServer } from './probes.js';

const servers: ProbeServer[] = [];

function probeServer(registry: Registry, ready: () => boolean | Promise<boolean>, port = 0): ProbeServer {
  const s = new ProbeServer({ port, host: '127.0.0.1', registry, ready });
  servers.push(s);
  return s;
}

async function get(port: number, path: string, method = 'GET'): Promise<{ status: number; body: string; type: string | null }> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`, { method });
  return { status: res.status, body: await res.text(), type: res.headers.get('content-type') };
}

afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.stop()));
});

describe('ProbeServer', () => {
  it('serves /healthz, /readyz from the callback and /metrics from its own registry', async () => {
    let ready = false;
    const registry = new Registry();
    new Counter({ name: 'gpudiag_test_reconciles_total', help: 'test', registers: [registry] }).inc(3);
    const s = probeServer(registry, () => ready);
    const { port } = await s.start();
    expect(await get(port, '/healthz')).toMatchObject({ status: 200, body: 'ok\n' });
    expect(await get(port, '/readyz')).toMatchObject({ status: 503 });
    ready = true;
    expect(await get(port, '/readyz')).toMatchObject({ status: 200 });
    const metrics = await get(port, '/metrics');
    expect(metrics.status).toBe(200);
    expect(metrics.type).toBe(registry.contentType);
    expect(metrics.body).toContain('gpudiag_test_reconciles_total 3');
    expect((await get(port, '/nope')).status).toBe(404);
    expect((await get(port, '/healthz', 'POST')).status).toBe(405);
  });

  it('reports not ready when the readiness callback throws', async () => {
    const s = probeServer(new Registry(), () => Promise.reject(new Error('informer exploded')));
    const { port } = await s.start();
    expect((await get(port, '/readyz')).status).toBe(503);
  });

  it('C1: a second server on the same port fails to start instead of claiming success', async () => {
    const first = probeServer(new Registry(), () => true);
    const { port } = await first.start();
    const second = probeServer(new Registry(), () => true, port);
    await expect(second.start()).rejects.toThrow(`cannot listen on 127.0.0.1:${port}`);
    await expect(second.start()).rejects.toMatchObject({ cause: { code: 'EADDRINUSE' } });
    expect(second.address).toBeUndefined();
    expect((await get(port, '/healthz')).status).toBe(200);
  });

  it('M4: two instances in one process keep separate metrics without "already registered"', async () => {
    const make = (n: number): ProbeServer => {
      const registry = new Registry();
      new Counter({ name: 'gpudiag_reconcile_total', help: 'reconciles', registers: [registry] }).inc(n);
      return probeServer(registry, () => true);
    };
    const a = make(1);
    const b = make(2);
    const [pa, pb] = await Promise.all([a.start(), b.start()]);
    expect((await get(pa.port, '/metrics')).body).toContain('gpudiag_reconcile_total 1');
    expect((await get(pb.port, '/metrics')).body).toContain('gpudiag_reconcile_total 2');
  });

  it('liveness fails after the event loop stalled longer than maxStallMs, then recovers', async () => {
    const s = new ProbeServer({
      port: 0,
      host: '127.0.0.1',
      registry: new Registry(),
      ready: () => true,
      heartbeatMs: 20,
      maxStallMs: 100,
    });
    servers.push(s);
    await s.start();
    await new Promise((r) => setTimeout(r, 50));
    expect(s.isAlive()).toBe(true);
    const until = Date.now() + 300;
    while (Date.now() < until) {
      // Busy-wait: block the event loop.
    }
    await new Promise((r) => setImmediate(r)); // the late heartbeat runs in the timers phase first
    expect(s.isAlive()).toBe(false);
    await new Promise((r) => setTimeout(r, 60));
    expect(s.isAlive()).toBe(true);
  });

  it('stops and can be started again', async () => {
    const s = probeServer(new Registry(), () => true);
    const { port } = await s.start();
    await s.stop();
    await expect(get(port, '/healthz')).rejects.toThrow();
    const again = await s.start();
    expect((await get(again.port, '/healthz')).status).toBe(200);
  });
});
