import { afterEach, describe, expect, it } from '@jest/globals';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { setTimeout as delay } from 'node:timers/promises';
import { createLogger } from '../../lib/logger.js';
import { CircuitBreaker } from './circuit-breaker.js';
import { backoffDelayMs, fanOut, nodeRequestId, type FanOutOptions, type NodeOutcome } from './fanout.js';
import type { BoundedRunStats } from './pool.js';
import type { NodeTarget } from './targets.js';
import { minimalSnapshot, sendJson, startStubAgent, type StubAgent, type StubHandler } from './test-support.js';

const silent = createLogger({ silent: true });
const stubs: StubAgent[] = [];
afterEach(async () => {
  await Promise.all(stubs.splice(0).map((s) => s.close()));
});

async function stub(handler: StubHandler): Promise<StubAgent> {
  const s = await startStubAgent(handler);
  stubs.push(s);
  return s;
}

/** Answers a valid snapshot for the node named in the request id. */
function healthy(req: IncomingMessage, res: ServerResponse): void {
  sendJson(res, 200, minimalSnapshot(String(req.headers['x-request-id']).split(':').pop() ?? ''));
}

function target(node: string, s: { host: string; port: number }): NodeTarget {
  return { node, agent: { podName: `agent-${node}`, ip: s.host, port: s.port } };
}

function options(targets: NodeTarget[], overrides: Partial<FanOutOptions> = {}): FanOutOptions {
  return {
    targets,
    checks: ['health', 'xid'],
    xidSince: new Date(Date.now() - 3_600_000),
    perNodeTimeoutMs: 2_000,
    signal: new AbortController().signal,
    concurrency: 4,
    retryBaseDelayMs: 10,
    breaker: new CircuitBreaker(),
    tokenProvider: async () => 'token',
    agentPort: 9443,
    scheme: 'http',
    correlationId: 'diag-abc',
    logger: silent,
    random: () => 0.5,
    ...overrides,
  };
}

describe('fanOut', () => {
  it('returns one outcome per target in order, NoAgent first and never dropped', async () => {
    const s = await stub(healthy);
    const streamed: string[] = [];
    const outcomes = await fanOut(
      options(
        [target('gpu-node-1', s), { node: 'gpu-node-2', missingReason: 'no gpudiag agent pod on gpu-node-2' }, target('gpu-node-3', s)],
        {
          onResult: (o) => streamed.push(`${o.node}=${o.result}`),
        },
      ),
    );
    expect(outcomes.map((o) => [o.node, o.result, o.attempts])).toEqual([
      ['gpu-node-1', 'Succeeded', 1],
      ['gpu-node-2', 'NoAgent', 0],
      ['gpu-node-3', 'Succeeded', 1],
    ]);
    expect(outcomes[1]?.message).toBe('no gpudiag agent pod on gpu-node-2');
    expect(outcomes[0]?.snapshot?.node).toBe('gpu-node-1');
    expect(streamed[0]).toBe('gpu-node-2=NoAgent');
    expect(streamed).toHaveLength(3);
  });

  it('sends the correlation id per node and the provider token', async () => {
    const s = await stub(healthy);
    await fanOut(options([target('gpu-node-5', s)], { tokenProvider: async () => 'sa-token' }));
    expect(s.lastHeaders?.['x-request-id']).toBe('diag-abc:gpu-node-5');
    expect(s.lastHeaders?.authorization).toBe('Bearer sa-token');
  });

  it('retries transient failures with backoff and succeeds', async () => {
    let calls = 0;
    const s = await stub((req, res) => (++calls <= 2 ? sendJson(res, 503, { error: 'token review failed' }) : healthy(req, res)));
    const [outcome] = await fanOut(options([target('gpu-node-1', s)]));
    expect(outcome).toMatchObject({ result: 'Succeeded', attempts: 3 });
  });

  it('gives up after the retries, saying how many attempts it made', async () => {
    const s = await stub((_q, r) => sendJson(r, 503, { error: 'busy' }));
    const [outcome] = await fanOut(options([target('gpu-node-1', s)], { retries: 1 }));
    expect(outcome).toMatchObject({ result: 'Error', attempts: 2, message: 'agent answered HTTP 503: busy (after 2 attempts)' });
  });

  it('does not retry permanent failures (401, invalid document)', async () => {
    const unauthorised = await stub((_q, r) => sendJson(r, 401, { error: 'the token is not valid for this agent' }));
    const garbage = await stub((_q, r) => sendJson(r, 200, { hello: 1 }));
    const [a, b] = await fanOut(options([target('gpu-node-1', unauthorised), target('gpu-node-2', garbage)]));
    expect(a).toMatchObject({ result: 'Error', attempts: 1, message: 'agent answered HTTP 401: the token is not valid for this agent' });
    expect(b).toMatchObject({ result: 'Error', attempts: 1 });
    expect(unauthorised.requests).toBe(1);
  });

  it('never sleeps past the per-node deadline', async () => {
    const s = await stub((_q, r) => sendJson(r, 503, { error: 'busy' }));
    const t0 = Date.now();
    const [outcome] = await fanOut(options([target('gpu-node-1', s)], { perNodeTimeoutMs: 300, retryBaseDelayMs: 1_000 }));
    expect(Date.now() - t0).toBeLessThan(300);
    expect(outcome).toMatchObject({
      result: 'Error',
      attempts: 1,
      message: 'agent answered HTTP 503: busy (no time left for a retry before the per-node deadline)',
    });
  });

  it('reports a per-node timeout as Timeout and does not retry it', async () => {
    const s = await stub(() => undefined);
    const [outcome] = await fanOut(options([target('gpu-node-1', s)], { perNodeTimeoutMs: 150 }));
    expect(outcome).toMatchObject({ result: 'Timeout', attempts: 1 });
    expect(outcome?.durationMs).toBeGreaterThanOrEqual(140);
    expect(outcome?.durationMs).toBeLessThan(1_000);
  });

  it('opens the circuit after repeated transient failures and then answers Unreachable at once', async () => {
    const dead = await stub(() => undefined);
    await dead.close();
    stubs.length = 0;
    const breaker = new CircuitBreaker({ failureThreshold: 2, coolDownMs: 30_000 });
    const [first] = await fanOut(options([target('gpu-node-1', dead)], { breaker }));
    expect(first).toMatchObject({ result: 'Unreachable', attempts: 2 });
    expect(first?.message).toContain('circuit open after 2 failures');
    expect(breaker.state('gpu-node-1/127.0.0.1')).toBe('open');
    const [second] = await fanOut(options([target('gpu-node-1', dead)], { breaker }));
    expect(second).toMatchObject({
      result: 'Unreachable',
      attempts: 0,
      durationMs: 0,
      message: 'circuit open after 2 failures; next probe in 30s',
    });
  });

  it('does not count HTTP 4xx against the circuit', async () => {
    const s = await stub((_q, r) => sendJson(r, 403, { error: 'nope' }));
    const breaker = new CircuitBreaker({ failureThreshold: 1 });
    await fanOut(options([target('gpu-node-1', s)], { breaker }));
    await fanOut(options([target('gpu-node-1', s)], { breaker }));
    expect(breaker.state('gpu-node-1/127.0.0.1')).toBe('closed');
    expect(s.requests).toBe(2);
  });

  it('keeps at most `concurrency` requests in flight', async () => {
    const s = await stub(async (req, res) => {
      await delay(20);
      healthy(req, res);
    });
    let stats: BoundedRunStats | undefined;
    const outcomes = await fanOut(
      options(
        Array.from({ length: 20 }, (_, i) => target(`gpu-node-${i}`, s)),
        { concurrency: 3, onStats: (st) => (stats = st) },
      ),
    );
    expect(outcomes.every((o) => o.result === 'Succeeded')).toBe(true);
    expect(s.peakInFlight).toBeLessThanOrEqual(3);
    expect(stats?.peakInFlight).toBe(3);
  });

  it('turns every unfinished node into Timeout when the overall deadline passes, and resolves promptly', async () => {
    const s = await stub(() => undefined);
    const controller = new AbortController();
    const pending = fanOut(
      options(
        Array.from({ length: 10 }, (_, i) => target(`gpu-node-${i}`, s)),
        { concurrency: 2, perNodeTimeoutMs: 30_000, signal: controller.signal },
      ),
    );
    await delay(100);
    const t0 = Date.now();
    controller.abort(new DOMException('deadline', 'TimeoutError'));
    const outcomes = await pending;
    expect(Date.now() - t0).toBeLessThan(500);
    expect(outcomes).toHaveLength(10);
    expect(outcomes.every((o) => o.result === 'Timeout')).toBe(true);
    expect(outcomes.filter((o) => o.attempts === 1)).toHaveLength(2);
    expect(outcomes[0]?.message).toBe('overall deadline passed before the agent answered');
    expect(outcomes[9]?.message).toBe('overall deadline passed before the agent was asked');
  });

  it('does not blame the agent for a cancellation', async () => {
    const s = await stub(() => undefined);
    const breaker = new CircuitBreaker({ failureThreshold: 1 });
    const controller = new AbortController();
    const pending = fanOut(options([target('gpu-node-1', s)], { breaker, signal: controller.signal }));
    await delay(50);
    controller.abort(new Error('operator shutting down'));
    expect((await pending)[0]).toMatchObject({
      result: 'Timeout',
      message: 'cancelled (operator shutting down) before the agent answered',
    });
    expect(breaker.state('gpu-node-1/127.0.0.1')).toBe('closed');
  });

  it('reports a token failure as a per-node Error', async () => {
    const s = await stub(healthy);
    const [outcome] = await fanOut(
      options([target('gpu-node-1', s)], {
        tokenProvider: async () => {
          throw new Error('token file missing');
        },
      }),
    );
    expect(outcome).toMatchObject({ result: 'Error', message: 'cannot get the ServiceAccount token: token file missing' });
    expect(s.requests).toBe(0);
  });

  it('can stream snapshots without keeping them (bounded memory)', async () => {
    const s = await stub(healthy);
    const seen: string[] = [];
    const outcomes = await fanOut(
      options([target('gpu-node-1', s), target('gpu-node-2', s)], {
        retainSnapshots: false,
        onResult: (o) => seen.push(o.snapshot?.node ?? ''),
      }),
    );
    expect(seen.sort()).toEqual(['gpu-node-1', 'gpu-node-2']);
    expect(outcomes.map((o) => [o.result, o.snapshot])).toEqual([
      ['Succeeded', undefined],
      ['Succeeded', undefined],
    ]);
  });

  it('survives a throwing result callback', async () => {
    const s = await stub(healthy);
    const outcomes: NodeOutcome[] = await fanOut(
      options([target('gpu-node-1', s)], {
        onResult: () => {
          throw new Error('callback bug');
        },
      }),
    );
    expect(outcomes[0]?.result).toBe('Succeeded');
  });

  it('validates its options', async () => {
    await expect(fanOut(options([], { correlationId: 'has/slash' }))).rejects.toThrow('correlationId must be');
    await expect(fanOut(options([], { concurrency: 0 }))).rejects.toThrow('concurrency must be a positive integer');
    await expect(fanOut(options([], { perNodeTimeoutMs: 0 }))).rejects.toThrow('perNodeTimeoutMs must be positive');
    await expect(fanOut(options([], { retries: -1 }))).rejects.toThrow('retries must be a non-negative integer');
  });
});

describe('nodeRequestId', () => {
  it('joins with ":" (the agent refuses "/") and stays within 128 characters', () => {
    expect(nodeRequestId('diag-abc', 'gpu-node-1')).toBe('diag-abc:gpu-node-1');
    const long = nodeRequestId('x'.repeat(64), 'n'.repeat(253));
    expect(long.length).toBe(128);
    expect(long).toMatch(/^x{64}:n+~[0-9a-f]{8}$/);
    expect(nodeRequestId('x'.repeat(64), `${'n'.repeat(252)}m`)).not.toBe(long);
  });
});

describe('backoffDelayMs', () => {
  it.each([
    [1, 0, 50],
    [1, 1, 100],
    [2, 1, 200],
    [3, 0.5, 300],
    [10, 1, 1_000],
  ])('retry %i with random %f waits %i ms', (retry, random, expected) => {
    expect(backoffDelayMs(retry, 100, 1_000, () => random)).toBe(expected);
  });
});
