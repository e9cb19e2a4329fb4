/**
 * The driver-era matrix: the full agent (in-process, plus one real `gpudiag agent` process) over
 * each era's build of the fake NVML library, whose missing symbols are really missing. Every era
 * must give a complete snapshot with no errors; each row then checks what that driver does
 * differently (agent/fake-nvml/eras.ts, docs/agent.md "What the agent reads per driver era").
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { NodeSnapshotDocument } from '../../agent/api/snapshot-document.js';
import { validateSnapshotDocument } from '../../agent/api/validate-snapshot.js';
import { buildFakeNvml } from '../../agent/fake-nvml/build.js';
import type { FakeNvmlEra } from '../../agent/fake-nvml/eras.js';
import { FakeNvmlController, loadScenario } from '../../agent/fake-nvml/scenario.js';
import type { GpuSnapshot } from '../../agent/nvml/types.js';
import { freePort } from '../../dev/control-plane/control-plane.js';
import { startTestAgent, type TestAgent } from '../support/agents.js';
import { spawnGpudiag } from '../support/processes.js';

const CLUSTER = '6b2f1c9e0d4a4f3b8e7a5c1d2e3f4a5b';
const DL_COUNTERS = [
  'nvlinks.errors.replay',
  'nvlinks.errors.recovery',
  'nvlinks.errors.crcFlit',
  'nvlinks.errors.crcData',
  'nvlinks.errors.eccData',
];

interface EraRow {
  label: string;
  era: FakeNvmlEra;
  scenario: string;
  /** Query `checks`, when not health,processes (the memory events are in the xid part). */
  checks?: string;
  /** What this era's snapshot must show beyond completeness. */
  check: (doc: NodeSnapshotDocument, agent: TestAgent) => void;
}

function gpu(doc: NodeSnapshotDocument, index: number): GpuSnapshot {
  const found = doc.gpus[index];
  if (found === undefined) throw new Error(`no GPU ${index}`);
  return found;
}

async function expectedPids(scenario: string, index: number): Promise<number[]> {
  return ((await loadScenario(scenario)).gpus[index]?.processes ?? []).map((p) => p.pid);
}

const pids35 = { r535: [] as number[] };

const ROWS: EraRow[] = [
  {
    label: 'R470 (T4): processes through _v2, ThrottleReasons, memory info v1, no recovery action',
    era: 'r470',
    scenario: 't4-legacy',
    check: (doc, agent) => {
      const t4 = gpu(doc, 0);
      expect(t4.processes?.map((p) => p.pid)).toEqual([3101, 3177]);
      expect(t4.clockEventReasons).toEqual({ mask: 1, names: ['GpuIdle'] });
      expect(t4.memory?.reservedBytes).toBeUndefined();
      expect(t4.unsupported).toEqual(expect.arrayContaining(['nvlinks', 'remappedRows', 'migMode', 'recoveryAction']));
      expect(t4.retiredPages).toEqual({ singleBitEcc: 0, doubleBitEcc: 0, pending: false });
      expect(agent.fake?.library.callCount('nvmlDeviceGetComputeRunningProcesses_v2')).toBeGreaterThan(0);
      expect(doc.nvml).toMatchObject({ cudaDriverVersion: '11.4' });
      // no fabric symbol and no PCIe error-count field before R525 / R535; GDDR6 has no memory sensor
      expect(t4.unsupported).toEqual(expect.arrayContaining(['fabric', 'pcie.correctableErrors', 'temperature.memoryCelsius']));
      expect(t4.fabric).toBeUndefined();
      expect(t4.pcie?.replayRolloverCounter).toBe(0);
      expect(t4.vbiosVersion).toBe('90.04.96.00.9F');
      expect(t4.inforom).toEqual({
        imageVersion: 'G183.0200.00.02',
        oemVersion: '1.1',
        eccVersion: '5.0',
        powerVersion: 'N/A',
        valid: true,
      });
      expect(t4.power).toMatchObject({ minLimitWatts: 60, maxLimitWatts: 70, defaultLimitWatts: 70 });
      expect(t4.bar1?.totalBytes).toBe(256 * 1024 * 1024);
      expect(t4.energyMillijoules).toBe(98765432);
      expect(agent.fake?.library.callCount('nvmlDeviceGetGpuFabricInfoV')).toBe(0);
    },
  },
  {
    label: 'R535.43-535.86: every pid of 30 processes from 32-byte records',
    era: 'r535-43',
    scenario: 'h100-r535-43-30-processes',
    check: (doc) => {
      expect(gpu(doc, 0).processes?.map((p) => p.pid)).toEqual(pids35.r535);
      expect(gpu(doc, 0).processes?.[29]).toEqual({ pid: 20000 + 29 * 37, usedMemoryBytes: 30 * 256 * 1024 * 1024 });
      expect(gpu(doc, 1).processes?.map((p) => p.pid)).toEqual([31001, 31002, 31003]);
      // no GpuFabricInfoV before R550: the v1 struct (no health mask) through nvmlDeviceGetGpuFabricInfo
      expect(gpu(doc, 0).fabric).toEqual({ state: 'completed', status: 0, cliqueId: 1, clusterUuid: CLUSTER });
      expect(gpu(doc, 0).pcie?.correctableErrors).toBe(0);
    },
  },
  {
    label: 'R535.98: processes through _v2 (no _v3)',
    era: 'r535-98',
    scenario: 'a100-r535-98-processes',
    check: (doc, agent) => {
      expect(gpu(doc, 1).processes).toEqual([
        { pid: 7011, usedMemoryBytes: 20 * 1024 ** 3 },
        { pid: 7012, usedMemoryBytes: 20 * 1024 ** 3 },
      ]);
      expect(agent.fake?.library.callCount('nvmlDeviceGetComputeRunningProcesses_v2')).toBeGreaterThan(0);
      // A100: no fabric info (Hopper and newer); the InfoROM power object exists
      expect(gpu(doc, 0).unsupported).toContain('fabric');
      expect(gpu(doc, 0).inforom?.powerVersion).toBe('N/A');
      expect(gpu(doc, 0).violationTime).toEqual({ thermalNs: 0, powerNs: 1_500_000_000, thermalReadAt: expect.any(String) });
    },
  },
  {
    label: 'R550: every field, DL NVLink counters, memory info v2, no recovery action yet',
    era: 'r550',
    scenario: 'h100-sxm-8x-healthy',
    check: (doc, agent) => {
      expect(doc.gpus).toHaveLength(8);
      const g0 = gpu(doc, 0);
      expect(g0.nvlinks).toHaveLength(18);
      expect(g0.nvlinks?.[0]?.errors).toEqual({ replay: 0, recovery: 0, crcFlit: 0, crcData: 0, eccData: 0 });
      expect(g0.memory?.reservedBytes).toBe(579 * 1024 * 1024);
      expect(g0.processes).toEqual([{ pid: 4242, usedMemoryBytes: 2 * 1024 ** 3 }]);
      expect(g0.unsupported).toContain('recoveryAction');
      expect(agent.fake?.library.callCount('nvmlDeviceGetTemperature')).toBeGreaterThan(0);
      // GpuFabricInfoV takes the v2 struct only: health mask, no summary
      expect(g0.fabric).toEqual({
        state: 'completed',
        status: 0,
        cliqueId: 1,
        clusterUuid: CLUSTER,
        healthMask: 2,
        degradedBandwidth: false,
      });
      expect(g0.temperature?.memoryCelsius).toBe(38);
      expect(g0.pcie).toMatchObject({ replayRolloverCounter: 0, correctableErrors: 0 });
    },
  },
  {
    label: 'R570: TemperatureV (never the deprecated call), the recovery action',
    era: 'r570',
    scenario: 'h100-r570-recovery-action',
    check: (doc, agent) => {
      expect(gpu(doc, 0).recoveryAction).toBe('none');
      expect(gpu(doc, 1).recoveryAction).toBe('gpuReset');
      expect(gpu(doc, 0).temperature?.gpuCelsius).toBe(51);
      expect(agent.fake?.library.callCount('nvmlDeviceGetTemperatureV')).toBeGreaterThan(0);
      expect(agent.fake?.library.callCount('nvmlDeviceGetTemperature')).toBe(0);
      // the v3 fabric struct: the health summary
      expect(gpu(doc, 0).fabric).toMatchObject({ state: 'completed', healthSummary: 'healthy', degradedBandwidth: false });
    },
  },
  {
    label: 'Blackwell (B200 on R575): DL counters unsupported, NVLink5 field values present',
    era: 'r570',
    scenario: 'b200-nvlink5-counters',
    check: (doc) => {
      const g1 = gpu(doc, 1);
      expect(g1.nvlinks).toHaveLength(18);
      expect(g1.unsupported).toEqual(expect.arrayContaining(DL_COUNTERS));
      expect(g1.nvlinks?.[3]?.errors).toEqual({ symbolErrors: 12, effectiveErrors: 2, recoverySuccessful: 1, recoveryFailed: 0 });
      expect(g1.recoveryAction).toBe('none');
      expect(g1.fabric).toMatchObject({ state: 'completed', cliqueId: 7, healthSummary: 'healthy' });
      expect(g1.power).toMatchObject({ maxLimitWatts: 1000 });
    },
  },
  {
    label: 'NVLink gaps (R550): the 16 links around the two NOT_SUPPORTED ones',
    era: 'r550',
    scenario: 'h100-nvlink-gaps',
    check: (doc) => {
      expect(gpu(doc, 0).nvlinks?.map((l) => l.link)).toEqual([0, 1, 3, 4, 5, 6, 7, 8, 10, 11, 12, 13, 14, 15, 16, 17]);
      expect(gpu(doc, 0).unsupported).not.toContain('nvlinks');
    },
  },
  {
    label: 'HGX fabric not ready (R570): not started on GPU 0, completed with an error on GPU 1',
    era: 'r570',
    scenario: 'hgx-h100-fabric-not-ready',
    check: (doc) => {
      expect(gpu(doc, 0).fabric).toMatchObject({ state: 'notStarted' });
      expect(gpu(doc, 1).fabric).toMatchObject({ state: 'completed', status: 999, healthSummary: 'unhealthy', degradedBandwidth: true });
    },
  },
  {
    label: 'Corrupted InfoROM (R550): GPU 1 fails validation, no error',
    era: 'r550',
    scenario: 'h100-inforom-corrupted',
    check: (doc) => {
      expect(gpu(doc, 0).inforom?.valid).toBe(true);
      expect(gpu(doc, 1).inforom?.valid).toBe(false);
    },
  },
  {
    label: 'Memory and link faults (R570): HBM over its maximum, violation time, PCIe rollovers, memory events',
    era: 'r570',
    scenario: 'h100-memory-faults',
    checks: 'health,processes,xid',
    check: (doc) => {
      expect(gpu(doc, 0).temperature).toMatchObject({ memoryCelsius: 96, memoryMaxCelsius: 95 });
      expect(gpu(doc, 0).violationTime?.thermalNs).toBe(600_000_000_000);
      expect(gpu(doc, 0).pcie).toMatchObject({ replayRolloverCounter: 3, correctableErrors: 25000 });
      expect(doc.xid.memoryEvents?.map((e) => [e.kind, e.gpuUuid])).toEqual([
        ['dramRetirementFailure', gpu(doc, 1).uuid],
        ['fatalPoison', gpu(doc, 1).uuid],
        ['dramRetirement', gpu(doc, 1).uuid],
      ]);
    },
  },
];

async function snapshot(agent: TestAgent, checks = 'health,processes'): Promise<NodeSnapshotDocument> {
  const res = await fetch(`${agent.url}/v1/snapshot?checks=${checks}`);
  expect(res.status).toBe(200);
  return (await res.json()) as NodeSnapshotDocument;
}

/** The snapshot once the scenario's NVML events have arrived (they come through the event thread). */
async function snapshotWithEvents(agent: TestAgent, checks: string, events: number): Promise<NodeSnapshotDocument> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const doc = await snapshot(agent, checks);
    if ((doc.xid.memoryEvents?.length ?? 0) >= events || Date.now() > deadline) return doc;
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** What every era must deliver: a valid document, versions, and every GPU's core fields without errors. */
function expectComplete(doc: NodeSnapshotDocument, gpus: number): void {
  expect(validateSnapshotDocument(doc)).toMatchObject({ ok: true });
  expect(doc.nvml).toMatchObject({
    available: true,
    driverVersion: expect.any(String),
    cudaDriverVersion: expect.stringMatching(/^\d+\.\d$/),
  });
  expect(doc.errors).toEqual([]);
  expect(doc.gpus).toHaveLength(gpus);
  for (const g of doc.gpus) {
    expect({ gpu: g.index, errors: g.errors, lost: g.lost }).toEqual({ gpu: g.index, errors: [], lost: false });
    expect(g.uuid).toMatch(/^GPU-/);
    for (const field of ['name', 'memory', 'temperature', 'power', 'clocks', 'clockEventReasons', 'ecc', 'pcie', 'processes'] as const) {
      expect({ gpu: g.index, field, present: g[field] !== undefined }).toEqual({ gpu: g.index, field, present: true });
    }
    expect(g.temperature?.gpuCelsius).toEqual(expect.any(Number));
  }
  expect(doc.agent.xidSources.nvmlEvents).toEqual({ running: true });
}

beforeAll(async () => {
  pids35.r535 = await expectedPids('h100-r535-43-30-processes', 0);
});

describe('the agent on every driver era', () => {
  it.each(ROWS.map((r) => [r.label, r] as const))('%s', async (_label, row) => {
    const agent = await startTestAgent({ scenario: row.scenario });
    try {
      expect(agent.fake?.era).toBe(row.era);
      expect(agent.fake?.library.era()).toBe(row.era);
      const doc = row.checks === undefined ? await snapshot(agent) : await snapshotWithEvents(agent, row.checks, 3);
      expectComplete(doc, (await loadScenario(row.scenario)).gpus.length);
      row.check(doc, agent);
    } finally {
      await agent.stop();
    }
  });
});

describe('a real agent process on the 535.43 build', () => {
  let dir: string;
  const controller = new FakeNvmlController();

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'gpudiag-eras-'));
    await writeFile(path.join(dir, 'kmsg'), '');
    await controller.load('h100-r535-43-30-processes');
  });

  afterAll(async () => {
    await controller.dispose();
    await rm(dir, { recursive: true, force: true });
  });

  it('lists 30 processes with the right pids, repeatedly, without corrupting its heap', async () => {
    const library = await buildFakeNvml({ era: 'r535-43' });
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const args = [
      'agent',
      '--node-name',
      'gpu-node-r535',
      '--listen',
      `127.0.0.1:${port}`,
      '--auth',
      'none',
      '--nvml-library',
      library,
      '--nvml-no-fallback',
      '--kmsg-path',
      path.join(dir, 'kmsg'),
      '--snapshot-cache-ms',
      '0',
    ];
    const agent = spawnGpudiag(args, { ...process.env, ...controller.env() });
    try {
      const deadline = Date.now() + 20_000;
      while (
        !(await fetch(`${url}/readyz`).then(
          (r) => r.ok,
          () => false,
        ))
      ) {
        if (Date.now() > deadline || agent.exitCode() !== undefined) throw new Error(`agent not ready: ${agent.output()}`);
        await new Promise((r) => setTimeout(r, 100));
      }
      for (let round = 0; round < 5; round++) {
        const doc = (await (await fetch(`${url}/v1/snapshot?checks=processes`)).json()) as NodeSnapshotDocument;
        expect(doc.gpus[0]?.processes?.map((p) => p.pid)).toEqual(pids35.r535);
        expect(doc.gpus[0]?.errors).toEqual([]);
      }
      expect(agent.exitCode()).toBeUndefined();
    } finally {
      agent.child.kill('SIGTERM');
    }
    expect(await agent.exited).toBe(0);
  });
});
