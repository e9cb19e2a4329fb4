/** The `gpudiag agent` binary: flags, readiness, a real snapshot, SIGTERM drain and exit codes. */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { freePort } from '../../dev/control-plane/control-plane.js';
import { buildFakeNvml } from '../../agent/fake-nvml/build.js';
import { FakeNvmlController, fakeNvmlEraOf, loadScenario } from '../../agent/fake-nvml/scenario.js';
import { spawnGpudiag, type GpudiagProcess } from '../support/processes.js';

let dir: string;
let libraryPath: string;
const controller = new FakeNvmlController();

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'gpudiag-agent-proc-'));
  await writeFile(
    path.join(dir, 'kmsg'),
    '4,7,5000000,-;NVRM: Xid (PCI:0000:3b:00): 48, pid=77, name=train, An uncorrectable double bit error (DBE) has been ' +
      'detected on GPU in the framebuffer at partition 6, subpartition 0.\n',
  );
  libraryPath = await buildFakeNvml({ era: fakeNvmlEraOf(await loadScenario('a100-dbe-remap-pending')) });
  await controller.load('a100-dbe-remap-pending');
});
afterAll(async () => {
  await controller.dispose();
  await rm(dir, { recursive: true, force: true });
});

function startAgent(args: string[], fakeEnv: Record<string, string> = controller.env(), nodeFlags: string[] = []): GpudiagProcess {
  return spawnGpudiag(['agent', ...args], { ...process.env, ...fakeEnv }, nodeFlags);
}

/** The value of one sample of `/metrics` text, e.g. `gpudiag_agent_heap_trims_total{thread="main"}`; 0 when absent. */
function sample(metrics: string, series: string): number {
  const line = metrics.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? 0 : Number(line.slice(series.length + 1));
}

interface HeapTrimmedLine {
  message: string;
  thread: string;
  beforeBytes: number;
  afterBytes: number;
}

async function waitReady(url: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const ok = await fetch(`${url}/readyz`).then(
      (r) => r.status === 200,
      () => false,
    );
    if (ok) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${url} not ready after ${timeoutMs} ms`);
}

describe('gpudiag agent process', () => {
  it('serves a snapshot from the fake library, then drains and exits 0 on SIGTERM', async () => {
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const agent = startAgent([
      '--node-name',
      'gpu-node-a100',
      '--listen',
      `127.0.0.1:${port}`,
      '--auth',
      'none',
      '--nvml-library',
      libraryPath,
      '--nvml-no-fallback',
      '--kmsg-path',
      path.join(dir, 'kmsg'),
      '--cursor-file',
      path.join(dir, 'cursor.json'),
    ]);
    try {
      await waitReady(url, 20_000);
      const doc = (await (await fetch(`${url}/v1/snapshot?checks=ecc,xid&xidSince=2000-01-01T00:00:00Z`)).json()) as {
        node: string;
        gpus: { ecc?: { volatileUncorrected?: number }; remappedRows?: { pending: boolean } }[];
        xid: { events: { xid: number; severity: string; sources: string[] }[] };
      };
      expect(doc.node).toBe('gpu-node-a100');
      expect(doc.gpus.some((g) => (g.ecc?.volatileUncorrected ?? 0) > 0)).toBe(true);
      expect(doc.gpus.some((g) => g.remappedRows?.pending === true)).toBe(true);
      // XIDs from the kernel log and from the NVML event API (the scenario delivers events).
      expect(doc.xid.events).toEqual(
        expect.arrayContaining([
          expect.objectContaining({ xid: 48, severity: 'critical', sources: ['kmsg'], pciBusId: '0000:3b:00' }),
          // 63 logged with a 48 on the same GPU: NVIDIA's workflow says drain and reset.
          expect.objectContaining({ xid: 63, severity: 'critical', immediateAction: 'DRAIN_AND_RESET', sources: ['nvml'] }),
        ]),
      );
    } finally {
      agent.child.kill('SIGTERM');
    }
    expect(await agent.exited).toBe(0);
    expect(agent.output()).toContain('"message":"agent stopped"');
    // started without --expose-gc, as here: it says so instead of trimming
    expect(agent.output()).toContain('idle heap trim is off: node runs without --expose-gc');
  });

  it('with --expose-gc (as the image runs it): once idle after a burst, both threads collect the heap it grew', async () => {
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const agent = startAgent(
      [
        ...['--node-name', 'gpu-node-trim', '--listen', `127.0.0.1:${port}`, '--auth', 'none'],
        ...['--nvml-library', libraryPath, '--nvml-no-fallback', '--kmsg-path', path.join(dir, 'kmsg')],
        ...['--snapshot-cache-ms', '0', '--heap-trim-idle-ms', '200', '--log-level', 'debug'],
      ],
      controller.env(),
      ['--max-semi-space-size=1', '--expose-gc'],
    );
    try {
      await waitReady(url, 20_000);
      // a burst: 8 clients, 40 uncached snapshots each
      await Promise.all(
        Array.from({ length: 8 }, async () => {
          for (let i = 0; i < 40; i++) expect((await fetch(`${url}/v1/snapshot?checks=health,xid`)).status).toBe(200);
        }),
      );
      const trims = { main: 0, nvml: 0 };
      const deadline = Date.now() + 15_000;
      while ((trims.main === 0 || trims.nvml === 0) && Date.now() < deadline) {
        // each scrape is a request too: a second apart, the 200 ms intervals between them are idle
        await new Promise((r) => setTimeout(r, 1000));
        const metrics = await (await fetch(`${url}/metrics`)).text();
        trims.main = sample(metrics, 'gpudiag_agent_heap_trims_total{thread="main"}');
        trims.nvml = sample(metrics, 'gpudiag_agent_heap_trims_total{thread="nvml"}');
      }
      expect(trims.main).toBeGreaterThanOrEqual(1);
      expect(trims.nvml).toBeGreaterThanOrEqual(1);
      const trimmed = agent
        .output()
        .split('\n')
        .filter((l) => l.includes('"heap trimmed"'))
        .map((l) => JSON.parse(l) as HeapTrimmedLine);
      // the main thread's heap, grown by 320 answers, is smaller after
      const main = trimmed.filter((t) => t.thread === 'main');
      expect(main.length).toBeGreaterThanOrEqual(1);
      expect(main.some((t) => t.afterBytes < t.beforeBytes)).toBe(true);
      expect(trimmed.every((t) => t.afterBytes <= t.beforeBytes && t.afterBytes > 0)).toBe(true);
      // and the agent still answers
      expect((await fetch(`${url}/v1/snapshot?checks=health`)).status).toBe(200);
    } finally {
      agent.child.kill('SIGTERM');
    }
    expect(await agent.exited).toBe(0);
  });

  it('SIGTERM while an NVML call is blocked (a wedged driver): exits 0 within the shutdown grace period', async () => {
    const hung = new FakeNvmlController();
    await hung.load('nvml-call-hangs');
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const agent = startAgent(
      [
        '--node-name',
        'gpu-node-hung',
        '--listen',
        `127.0.0.1:${port}`,
        '--auth',
        'none',
        '--nvml-library',
        libraryPath,
        '--nvml-no-fallback',
        '--kmsg-path',
        path.join(dir, 'kmsg'),
        '--nvml-call-timeout-ms',
        '300',
        '--shutdown-grace-seconds',
        '2',
      ],
      hung.env(),
    );
    try {
      await waitReady(url, 20_000);
      // GPU 1's power reading never returns: the call deadline answers for it, its thread stays blocked.
      const doc = (await (await fetch(`${url}/v1/snapshot?checks=power`)).json()) as {
        gpus: { index: number; errors: { field: string; code: number }[] }[];
      };
      expect(doc.gpus[1]?.errors).toEqual([expect.objectContaining({ code: 10 })]);
      expect(doc.gpus[0]?.errors).toEqual([]);
      const signalled = Date.now();
      agent.child.kill('SIGTERM');
      expect(await agent.exited).toBe(0);
      // The grace period (2 s) plus start-up slack, far below an hour.
      expect(Date.now() - signalled).toBeLessThan(8_000);
      expect(agent.output()).toContain('agent stopped with NVML calls still blocked after the shutdown grace period');
    } finally {
      agent.child.kill('SIGKILL');
      await hung.dispose();
    }
  });

  it('exits 2 naming the flag when configuration is invalid', async () => {
    const agent = startAgent(['--node-name', 'n', '--listen', 'nowhere']);
    expect(await agent.exited).toBe(2);
    expect(agent.output()).toContain('--listen must be HOST:PORT');
  });

  it('exits 1 when its port is taken (start never reports ready)', async () => {
    const port = await freePort();
    const first = startAgent([
      '--node-name',
      'a',
      '--listen',
      `127.0.0.1:${port}`,
      '--auth',
      'none',
      '--kmsg-path',
      '',
      '--nvml-library',
      '/nonexistent.so',
      '--nvml-no-fallback',
    ]);
    try {
      await waitReady(`http://127.0.0.1:${port}`, 20_000);
      const second = startAgent([
        '--node-name',
        'b',
        '--listen',
        `127.0.0.1:${port}`,
        '--auth',
        'none',
        '--kmsg-path',
        '',
        '--nvml-library',
        '/nonexistent.so',
        '--nvml-no-fallback',
      ]);
      expect(await second.exited).toBe(1);
      expect(second.output()).toContain('EADDRINUSE');
    } finally {
      first.child.kill('SIGTERM');
    }
    expect(await first.exited).toBe(0);
  });
});
