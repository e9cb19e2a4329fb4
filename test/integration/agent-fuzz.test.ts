/**
 * Hostile input against a real `gpudiag agent` process over real TCP: the raw-socket corpus
 * (test/fixtures/http-fuzz/) on every path, a slowloris client, and property-based query
 * strings sent with a valid operator token. Afterwards the process is alive, /healthz answers
 * 200, an authenticated snapshot still succeeds and memory is back near where it started.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { DIAGNOSTIC_CHECKS } from '../../agent/api/snapshot-document.js';
import { buildFakeNvml } from '../../agent/fake-nvml/build.js';
import { FakeNvmlController, fakeNvmlEraOf, loadScenario } from '../../agent/fake-nvml/scenario.js';
import { freePort } from '../../dev/control-plane/control-plane.js';
import { testCluster, useTestNamespace } from '../support/cluster.js';
import { fuzzListener, isJsonObject, reportFuzz } from '../support/http-fuzz.js';
import { spawnGpudiag, type GpudiagProcess } from '../support/processes.js';
import { applyRbac } from '../support/rbac.js';

const ns = useTestNamespace('agent-fuzz');
const controller = new FakeNvmlController();
const PROPERTY_RUNS = 120;
/** The agent's head timeout (lib/http/server.ts) plus the 1 s check interval and slack. */
const SLOWLORIS_BOUND_MS = 14_000;
let dir: string;
let agent: GpudiagProcess;
let url: string;
let token: string;

async function waitReady(timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (
      await fetch(`${url}/readyz`).then(
        (r) => r.status === 200,
        () => false,
      )
    )
      return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`agent not ready after ${timeoutMs} ms:\n${agent.output().slice(-3000)}`);
}

beforeAll(async () => {
  await applyRbac('agent.yaml', ns.name);
  await applyRbac('operator.yaml', ns.name);
  dir = await mkdtemp(path.join(os.tmpdir(), 'gpudiag-agent-fuzz-'));
  const kubeconfig = path.join(dir, 'kubeconfig');
  await writeFile(kubeconfig, (await testCluster().asServiceAccount(ns.name, 'gpudiag-agent')).exportConfig(), { mode: 0o600 });
  await writeFile(path.join(dir, 'kmsg'), '');
  token = await testCluster().serviceAccountToken(ns.name, 'gpudiag-operator', ['gpudiag-agent']);
  const libraryPath = await buildFakeNvml({ era: fakeNvmlEraOf(await loadScenario('h100-sxm-8x-healthy')) });
  await controller.load('h100-sxm-8x-healthy');
  const port = await freePort();
  url = `http://127.0.0.1:${port}`;
  agent = spawnGpudiag(
    [
      'agent',
      '--node-name',
      'fuzz-node',
      '--listen',
      `127.0.0.1:${port}`,
      '--auth',
      'tokenreview',
      '--allowed-callers',
      `system:serviceaccount:${ns.name}:gpudiag-operator`,
      '--kubeconfig',
      kubeconfig,
      '--nvml-library',
      libraryPath,
      '--nvml-no-fallback',
      '--kmsg-path',
      path.join(dir, 'kmsg'),
      '--log-level',
      'warn',
    ],
    { ...process.env, ...controller.env() },
  );
  await waitReady(20_000);
}, 60_000);

afterAll(async () => {
  agent?.child.kill('SIGTERM');
  await controller.dispose();
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
});

/** Query strings that are mostly valid in shape, so the parser is reached past its first check. */
const snapshotQuery = fc.oneof(
  fc.webQueryParameters(),
  fc
    .record(
      {
        checks: fc
          .array(fc.constantFrom(...DIAGNOSTIC_CHECKS, 'bogus', '', ' health', 'HEALTH'), { maxLength: 12 })
          .map((c) => c.join(',')),
        xidSince: fc.oneof(
          fc.date({ noInvalidDate: true }).map((d) => d.toISOString()),
          fc.string({ maxLength: 40 }),
        ),
        extra: fc.string({ maxLength: 20 }),
      },
      { requiredKeys: [] },
    )
    .map((r) => new URLSearchParams(r as Record<string, string>).toString()),
);

describe('agent API under hostile input', () => {
  it('survives the raw corpus, a slowloris client and property-based queries, and still serves', async () => {
    const pid = agent.child.pid ?? 0;
    const result = await fuzzListener(
      pid,
      { port: Number(new URL(url).port), hostHeader: new URL(url).host, paths: ['/v1/snapshot', '/healthz', '/metrics', '/no-such-path'] },
      SLOWLORIS_BOUND_MS,
    );

    // Every answer to a snapshot query is a snapshot or a 400 that names a query parameter.
    await fc.assert(
      fc.asyncProperty(snapshotQuery, async (query) => {
        const res = await fetch(`${url}/v1/snapshot?${query}`, { headers: { Authorization: `Bearer ${token}` } });
        const body = (await res.json()) as { error?: string; kind?: string };
        if (res.status === 200) return body.kind === 'NodeSnapshot';
        return res.status === 400 && /query parameter/.test(body.error ?? '');
      }),
      { numRuns: PROPERTY_RUNS },
    );

    const crashes = agent.exitCode() === undefined ? 0 : 1;
    reportFuzz('agent API', result, PROPERTY_RUNS, crashes);
    expect(agent.exitCode()).toBeUndefined();
    expect(result.corpus.sent).toBeGreaterThanOrEqual(300);
    expect(result.corpus.unanswered).toEqual([]);
    expect(result.corpus.statuses['500'] ?? 0).toBe(0);
    expect(result.slowloris.closedByServer).toBe(result.slowloris.connections);
    expect((await fetch(`${url}/healthz`)).status).toBe(200);
    const snapshot = await fetch(`${url}/v1/snapshot?checks=health`, { headers: { Authorization: `Bearer ${token}` } });
    expect(snapshot.status).toBe(200);
    expect(((await snapshot.json()) as { gpus: unknown[] }).gpus).toHaveLength(8);
    expect(result.rssAfterMiB).toBeLessThan(result.rssBeforeMiB + 48);
    expect(agent.output()).not.toContain('request handler failed');
    // Whatever the requests carried, every log record is still one JSON line (no log forgery).
    const lines = agent
      .output()
      .split('\n')
      .filter((l) => l !== '');
    expect(lines.filter((l) => !isJsonObject(l))).toEqual([]);
  }, 120_000);
});
