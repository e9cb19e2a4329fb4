/**
 * End to end, through the whole stack (operator under config/rbac/operator.yaml, real agents on
 * loopback verifying its token with TokenReview, the fake NVML library): every fault kind is
 * diagnosed; a fault injected at run time is found by the next diagnostic and cleared by the one
 * after it is gone; agents that are down, slow, answering garbage or missing give explicit
 * per-node results; and concurrent writers on the object (409 conflicts on every other status
 * write) do not stop a diagnostic from completing. Every status read passes the kstatus checker.
 */
import http from 'node:http';
import { randomInt } from 'node:crypto';
import { access, appendFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { CoreV1Api, CustomObjectsApi } from '@kubernetes/client-node';
import { resolveGpus } from '../../agent/fake-nvml/scenario.js';
import { GPU_DIAGNOSTICS, type GPUDiagnostic } from '../../api/index.js';
import { freePort } from '../../dev/control-plane/control-plane.js';
import { AGENT_POD_LABELS, uniqueFleetNames, type SimulatedFleet } from '../../dev/fleet/simulated-fleet.js';
import { diagnosticsPath } from '../../api/paths.js';
import { ApiClient, type ApiRequest } from '../../lib/kube/api-client.js';
import { KubeRequestError, kubeRequest } from '../../lib/kube/raw-request.js';
import { createLogger } from '../../lib/logger.js';
import type { Operator } from '../../operator/operator.js';
import { testCluster, useTestNamespace } from '../support/cluster.js';
import { createDiagnostic as createIn, readDiagnostic as readIn, waitFinished as waitFinishedIn } from '../support/diagnostics.js';
import { slowDownAgent, startTestFleet, startTestOperator, testOperatorArgs } from '../support/operator-env.js';
import { applyRbac } from '../support/rbac.js';

type StatusNode = NonNullable<NonNullable<GPUDiagnostic['status']>['nodes']>[number];

const ns = useTestNamespace('e2e-resil');
const logger = createLogger({ silent: true });
const HEALTHY_SCENARIO = 'h100-sxm-8x-healthy';
let fleet: SimulatedFleet;
let operator: Operator;
let garbageServer: http.Server | undefined;
/** Short name → full (namespace-prefixed) node name. */
const n: Record<string, string> = {};

async function createDiagnostic(name: string, spec: Record<string, unknown>): Promise<void> {
  await createIn(ns.name, name, spec);
}

async function readDiagnostic(name: string): Promise<GPUDiagnostic> {
  return readIn(ns.name, name);
}

async function waitFinished(name: string, timeoutMs = 20_000): Promise<GPUDiagnostic> {
  return waitFinishedIn(ns.name, name, { timeoutMs, pollMs: 150 });
}

async function diagnose(name: string, spec: Record<string, unknown>): Promise<GPUDiagnostic> {
  await createDiagnostic(name, spec);
  return waitFinished(name);
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function condition(obj: GPUDiagnostic, type: string): { status?: string; reason?: string; message?: string } | undefined {
  return obj.status?.conditions?.find((c) => c.type === type);
}

function nodeOf(obj: GPUDiagnostic, short: string): StatusNode {
  const node = obj.status?.nodes?.find((x) => x.name === n[short]);
  if (node === undefined)
    throw new Error(`node ${short} missing from ${obj.metadata.name ?? ''}: ${JSON.stringify(obj.status?.nodes?.map((x) => x.name))}`);
  return node;
}

/** Finding codes of one GPU (by index) of a node in the status. */
function gpuCodes(node: StatusNode, index: number): string[] {
  return (node.gpus?.find((g) => g.index === index)?.findings ?? []).map((f) => f.code);
}

/** Every finding code of a node: its GPUs' and its own. */
function nodeCodes(node: StatusNode): string[] {
  return [...(node.gpus ?? []).flatMap((g) => g.findings ?? []), ...(node.findings ?? [])].map((f) => f.code);
}

let kmsgSeq = 1_000;
/**
 * Logs an XID for one GPU of a simulated node, stamped now: appends a /dev/kmsg record (the
 * timestamp is CLOCK_MONOTONIC in microseconds, as the kernel writes it) to the node's kernel
 * log file, which its agent polls every 500 ms.
 */
async function logXid(short: string, gpu: number, xid: number): Promise<void> {
  const controller = fleet.node(n[short] ?? '').controller;
  if (controller === undefined) throw new Error(`${short} has no fake NVML controller`);
  const bus = resolveGpus(controller.current)[gpu]?.pciBusId;
  if (bus === undefined) throw new Error(`${short} GPU ${gpu} has no PCI bus id`);
  const kmsg = path.join(path.dirname(controller.stateFile), 'kmsg');
  await access(kmsg); // the simulated fleet keeps each node's kernel log next to its NVML state
  const kernelBus = bus.replace(/^0000/, '').toLowerCase().replace(/\.\d$/, '');
  const usec = process.hrtime.bigint() / 1000n;
  kmsgSeq += 1;
  await appendFile(
    kmsg,
    `3,${kmsgSeq},${usec},-;NVRM: Xid (PCI:${kernelBus}): ${xid}, pid=4242, name=python3, logged by operator-resilience\n`,
  );
}

/** Every warning or critical finding on a node (GPU-level and node-level). */
function alarms(node: StatusNode): string[] {
  const all = [...(node.gpus ?? []).flatMap((g) => g.findings ?? []), ...(node.findings ?? [])];
  return all.filter((f) => f.severity === 'warning' || f.severity === 'critical').map((f) => `${f.code}: ${f.message}`);
}

/** Summary invariants every finished diagnostic must hold: the counts add up. */
function expectSummaryAddsUp(obj: GPUDiagnostic): void {
  const s = obj.status?.summary ?? {};
  const byResult = Object.values(s.nodesByResult ?? {}).reduce((a, b) => a + b, 0);
  const byStatus = Object.values(s.nodesByStatus ?? {}).reduce((a, b) => a + b, 0);
  expect(s.nodesCompleted).toBe(s.nodesTargeted);
  expect(byResult).toBe(s.nodesTargeted);
  expect(byStatus).toBe(s.nodesTargeted);
  expect((s.nodesSucceeded ?? 0) + (s.nodesFailed ?? 0)).toBe(s.nodesTargeted);
  expect((obj.status?.nodes?.length ?? 0) + (obj.status?.nodesTruncated ?? 0)).toBe(s.nodesTargeted);
}

/**
 * A node whose "agent" answers every request with HTTP 200 and `{"hello":1}`: a Node object,
 * a Ready agent Pod on it with a Pod IP, and a plain HTTP server on that IP and the agent port.
 */
async function startGarbageAgent(nodeName: string, port: number): Promise<void> {
  const ip = `127.2.${randomInt(1, 255)}.${randomInt(1, 255)}`;
  garbageServer = http.createServer((req, res) => {
    req.resume();
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.end('{"hello":1}');
  });
  const server = garbageServer;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, ip, () => resolve());
  });
  const kc = testCluster().admin();
  const core = kc.makeApiClient(CoreV1Api);
  await core.createNode({ body: { metadata: { name: nodeName, labels: { 'gpudiag.io/test-node': 'garbage' } } } });
  const podName = `gpudiag-agent-${nodeName}`.slice(0, 63).replace(/-+$/, '');
  await core.createNamespacedPod({
    namespace: ns.name,
    body: {
      metadata: { name: podName, labels: { ...AGENT_POD_LABELS } },
      spec: { nodeName, containers: [{ name: 'agent', image: 'gpudiag/agent:dev' }] },
    },
  });
  const now = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
  await kubeRequest(kc, {
    method: 'PATCH',
    path: `/api/v1/namespaces/${ns.name}/pods/${podName}/status`,
    contentType: 'application/merge-patch+json',
    body: {
      status: { phase: 'Running', podIP: ip, podIPs: [{ ip }], conditions: [{ type: 'Ready', status: 'True', lastTransitionTime: now }] },
    },
  });
}

beforeAll(async () => {
  await applyRbac('operator.yaml', ns.name);
  await applyRbac('agent.yaml', ns.name);
  const port = await freePort();
  const specs = uniqueFleetNames(ns.name, [
    { name: 'h100', scenario: HEALTHY_SCENARIO },
    { name: 'thermal', scenario: 'thermal-hw-slowdown' },
    { name: 'nvlink', scenario: 'nvlink-down' },
    { name: 'dbe', scenario: 'a100-dbe-remap-pending' },
    { name: 'lost', scenario: 'gpu-lost-xid79' },
    { name: 'mig', scenario: 'mig-enabled' },
    { name: 't4', scenario: 't4-legacy' },
    { name: 'dyn', scenario: HEALTHY_SCENARIO },
    { name: 'down', scenario: HEALTHY_SCENARIO },
    { name: 'slow', scenario: HEALTHY_SCENARIO },
    { name: 'busy', scenario: HEALTHY_SCENARIO },
    { name: 'noagent', scenario: HEALTHY_SCENARIO, withoutAgent: true },
  ]);
  for (const spec of specs) n[spec.name.slice(ns.name.length + 1)] = spec.name;
  n['garbage'] = `${ns.name}-garbage`;
  fleet = await startTestFleet(ns.name, specs, port, logger);
  await startGarbageAgent(n['garbage'] ?? '', port);
  operator = await startTestOperator(
    ns.name,
    [...testOperatorArgs(ns.name, port), '--per-node-timeout-seconds', '5', '--policy-grace-seconds', '1'],
    'e2e-resilience',
    logger,
  );
});

afterAll(async () => {
  await operator?.stop();
  await fleet?.stop();
  const server = garbageServer;
  if (server !== undefined) await new Promise<void>((resolve) => server.close(() => resolve()));
});

describe('operator resilience: fault kinds', () => {
  it('diagnoses every fault kind through the whole stack; MIG and T4 are not alarmed by what they lack', async () => {
    const names = ['h100', 'thermal', 'nvlink', 'dbe', 'lost', 'mig', 't4'];
    // The XIDs these faults come with, logged again now, as a kernel would keep logging them.
    await logXid('lost', 3, 79);
    await logXid('dbe', 2, 48);
    await sleep(700); // the agents poll their kernel log every 500 ms
    const done = await diagnose('fault-kinds', { nodeNames: names.map((s) => n[s]) });
    expectSummaryAddsUp(done);
    expect(done.status).toMatchObject({
      phase: 'Completed',
      summary: { nodesTargeted: 7, nodesSucceeded: 7, nodesFailed: 0, nodesByStatus: { healthy: 3, critical: 4, degraded: 0, unknown: 0 } },
    });
    expect(condition(done, 'Ready')).toMatchObject({ status: 'True', reason: 'Completed' });
    expect(condition(done, 'Healthy')).toMatchObject({ status: 'False', reason: 'CriticalNodes' });
    expect([...(done.status?.summary?.criticalNodes ?? [])].sort()).toEqual([n['dbe'], n['lost'], n['nvlink'], n['thermal']].sort());

    const thermal = nodeOf(done, 'thermal');
    expect(thermal.status).toBe('critical');
    expect(gpuCodes(thermal, 1)).toEqual(expect.arrayContaining(['HwThermalSlowdown', 'ThermalMargin']));

    const nvlink = nodeOf(done, 'nvlink');
    expect(nvlink.status).toBe('critical');
    expect(gpuCodes(nvlink, 5)).toContain('NvLinkDown');
    expect(nvlink.gpus?.find((g) => g.index === 5)?.findings?.find((f) => f.code === 'NvLinkDown')?.message).toContain('7');

    const dbe = nodeOf(done, 'dbe');
    expect(dbe.status).toBe('critical');
    expect(gpuCodes(dbe, 2)).toEqual(expect.arrayContaining(['VolatileDoubleBitEcc', 'RowRemapPending', 'XidCritical']));
    expect(dbe.xidEvents?.map((e) => e.xid)).toContain(48);

    const lost = nodeOf(done, 'lost');
    expect(lost.status).toBe('critical');
    expect(gpuCodes(lost, 3)).toContain('GpuLost');
    // A lost GPU cannot tell NVML its bus id, so its XID may be a node-level finding.
    expect(nodeCodes(lost)).toContain('XidCritical');
    expect(lost.xidEvents?.find((e) => e.xid === 79)).toMatchObject({ severity: 'critical' });
    // Only the lost GPU is critical; its seven siblings are reported healthy.
    expect(lost.gpus?.filter((g) => g.status === 'critical').map((g) => g.index)).toEqual([3]);

    for (const healthy of ['h100', 'mig', 't4']) {
      const node = nodeOf(done, healthy);
      expect({ node: healthy, status: node.status, result: node.result, alarms: alarms(node) }).toEqual({
        node: healthy,
        status: 'healthy',
        result: 'Succeeded',
        alarms: [],
      });
    }
    expect(nodeOf(done, 'h100').score).toBe(100);
    expect(nodeOf(done, 'mig').gpuCount).toBe(4);
    expect(nodeOf(done, 't4').gpuCount).toBe(2);
    // Worst first: the healthy nodes come last.
    expect(done.status?.nodes?.slice(-3).every((x) => x.status === 'healthy')).toBe(true);
  });

  it(
    'finds a fault injected at run time in the next diagnostic; ' + 'a reset clears the reset-class faults, a reboot-class XID 79 stays',
    async () => {
      const controller = fleet.node(n['dyn'] ?? '').controller;
      if (controller === undefined) throw new Error('dyn has no fake NVML controller');
      const before = await diagnose('dyn-before', { nodeNames: [n['dyn']] });
      expect(nodeOf(before, 'dyn').status).toBe('healthy');

      // GPU 0 takes double-bit ECC errors, GPU 6 falls off the bus; the kernel logs both.
      await controller.inject({ kind: 'double-bit-ecc', gpu: 0, count: 2 });
      await controller.inject({ kind: 'fall-off-bus', gpu: 6 });
      await logXid('dyn', 0, 48);
      await logXid('dyn', 6, 79);
      const faultAt = Date.now();
      await sleep(1_100); // past the agent's 1 s snapshot cache and its kernel-log poll
      const faulty = await diagnose('dyn-fault', { nodeNames: [n['dyn']] });
      const node = nodeOf(faulty, 'dyn');
      expect(node.status).toBe('critical');
      expect(gpuCodes(node, 0)).toEqual(expect.arrayContaining(['VolatileDoubleBitEcc', 'XidCritical']));
      expect(gpuCodes(node, 6)).toContain('GpuLost');
      expect(node.xidEvents?.map((e) => e.xid).sort()).toEqual([48, 79]);
      expect(condition(faulty, 'Healthy')).toMatchObject({ status: 'False', reason: 'CriticalNodes' });

      // The GPUs are reset and back on the bus: the same agent process, nothing restarted. The
      // NVML findings go at once, and so does the reset-class XID 48 (the agent saw the volatile ECC
      // counters start again from zero). The XID 79 stays: NVIDIA's action is a node reboot.
      await controller.load(HEALTHY_SCENARIO);
      await sleep(1_100);
      const reset = await diagnose('dyn-reset', { nodeNames: [n['dyn']] });
      const afterReset = nodeOf(reset, 'dyn');
      expect(nodeCodes(afterReset)).not.toContain('VolatileDoubleBitEcc');
      expect(nodeCodes(afterReset)).not.toContain('GpuLost');
      expect(afterReset.xidEvents?.map((e) => [e.xid, e.persistsUntil])).toEqual([[79, 'reboot']]);

      // Past the lookback the 79 is still there, until the node reboots (its boot ID changes).
      await sleep(Math.max(0, faultAt + 2_500 - Date.now()));
      const cleared = await diagnose('dyn-cleared', { nodeNames: [n['dyn']], xidLookback: '2s' });
      const after = nodeOf(cleared, 'dyn');
      expect({ status: after.status, xids: after.xidEvents?.map((e) => e.xid) }).toEqual({ status: 'critical', xids: [79] });
      expect(gpuCodes(after, 0)).not.toContain('XidCritical');
    },
  );
});

describe('operator resilience: agent failures', () => {
  it('reports down, slow, garbage-answering and missing agents explicitly, alone and all in one diagnostic', async () => {
    await fleet.node(n['down'] ?? '').agent?.stop();
    await slowDownAgent(fleet, n['slow'] ?? '');

    // All at once: the slow agent (about 5.7 s per snapshot) is still collecting when the
    // combined diagnostic asks it. A 3 s per-node deadline leaves the healthy agents ample time.
    const short = { perNodeTimeoutSeconds: 3, timeoutSeconds: 10 };
    await Promise.all([
      createDiagnostic('agent-down', { nodeNames: [n['down'], n['lost']] }),
      createDiagnostic('agent-slow', { ...short, nodeNames: [n['slow']] }),
      createDiagnostic('agent-garbage', { nodeNames: [n['garbage']] }),
      createDiagnostic('no-agent', { nodeNames: [n['noagent']] }),
      createDiagnostic('all-failures', { ...short, nodeNames: [n['h100'], n['down'], n['slow'], n['garbage'], n['noagent']] }),
    ]);
    const [down, slowDone, garbage, noAgent, all] = await Promise.all(
      ['agent-down', 'agent-slow', 'agent-garbage', 'no-agent', 'all-failures'].map((name) => waitFinished(name)),
    );
    if (down === undefined || slowDone === undefined || garbage === undefined || noAgent === undefined || all === undefined)
      throw new Error('missing result');
    for (const d of [down, slowDone, garbage, noAgent, all]) {
      expect(d.status?.phase).toBe('Completed');
      expect(condition(d, 'Ready')).toMatchObject({ status: 'True', reason: 'Completed' });
      expectSummaryAddsUp(d);
    }

    // Agent down: Unreachable (after retries); the reachable critical node still makes Healthy False.
    expect(nodeOf(down, 'down')).toMatchObject({ result: 'Unreachable', status: 'unknown' });
    expect(nodeOf(down, 'down').message).toMatch(/cannot reach the agent|circuit/i);
    expect(nodeOf(down, 'lost')).toMatchObject({ result: 'Succeeded', status: 'critical' });
    expect(down.status?.summary).toMatchObject({
      nodesTargeted: 2,
      nodesSucceeded: 1,
      nodesFailed: 1,
      nodesByResult: { Unreachable: 1, Succeeded: 1 },
    });
    expect(condition(down, 'Healthy')).toMatchObject({ status: 'False', reason: 'CriticalNodes' });

    // Agent slower than spec.perNodeTimeoutSeconds: Timeout, after about that long.
    expect(nodeOf(slowDone, 'slow')).toMatchObject({ result: 'Timeout', status: 'unknown' });
    expect(nodeOf(slowDone, 'slow').message).toMatch(/no complete answer within \d+ ms|per-node deadline of 3000 ms/);
    expect(nodeOf(slowDone, 'slow').durationMs).toBeGreaterThanOrEqual(2_500);
    expect(nodeOf(slowDone, 'slow').durationMs).toBeLessThan(5_000);
    expect(condition(slowDone, 'Healthy')).toMatchObject({ status: 'Unknown', reason: 'NodesNotDiagnosed' });

    // Agent answering 200 with a document that is not a snapshot: Error naming what was wrong.
    expect(nodeOf(garbage, 'garbage')).toMatchObject({ result: 'Error', status: 'unknown' });
    expect(nodeOf(garbage, 'garbage').message).toMatch(
      /^agent answered an invalid snapshot document: apiVersion must be agent\.gpudiag\.io\/v1, got nothing/,
    );

    // Node object without an agent Pod: NoAgent, never dropped.
    expect(nodeOf(noAgent, 'noagent')).toMatchObject({ result: 'NoAgent', status: 'unknown' });
    expect(nodeOf(noAgent, 'noagent').message).toContain(`no gpudiag agent pod on ${n['noagent'] ?? ''}`);

    // All in one: partial results are explicit and add up.
    expect(all.status?.summary).toMatchObject({
      nodesTargeted: 5,
      nodesCompleted: 5,
      nodesSucceeded: 1,
      nodesFailed: 4,
      nodesByResult: { Succeeded: 1, NoAgent: 1, Unreachable: 1, Timeout: 1, Error: 1 },
      nodesByStatus: { healthy: 1, degraded: 0, critical: 0, unknown: 4 },
    });
    expect(Object.fromEntries((all.status?.nodes ?? []).map((x) => [x.name, x.result]))).toEqual({
      [n['h100'] ?? '']: 'Succeeded',
      [n['down'] ?? '']: 'Unreachable',
      [n['slow'] ?? '']: 'Timeout',
      [n['garbage'] ?? '']: 'Error',
      [n['noagent'] ?? '']: 'NoAgent',
    });
    for (const x of all.status?.nodes ?? []) if (x.result !== 'Succeeded') expect(x.message).not.toBe('');
    expect(condition(all, 'Ready')?.message).toContain('1 answered, 4 could not be diagnosed');
    expect(condition(all, 'Healthy')).toMatchObject({ status: 'Unknown', reason: 'NodesNotDiagnosed' });
    // The undiagnosed nodes sort before the healthy one (worst first), which is last.
    expect(all.status?.nodes?.at(-1)?.name).toBe(n['h100']);
  });
});

describe('operator resilience: status update conflicts', () => {
  it('completes with correct results while other writers keep changing the object (409s on status writes)', async () => {
    const busy = fleet.node(n['busy'] ?? '').controller;
    if (busy === undefined) throw new Error('busy has no fake NVML controller');
    await busy.inject({ kind: 'delay', call: 'nvmlSystemGetDriverVersion', ms: 1_500 });
    const name = 'conflicts';
    const admin = testCluster().admin().makeApiClient(CustomObjectsApi);

    // Every other status write of this object is preceded by a metadata change from another
    // writer, so its resourceVersion is stale and the API server answers 409.
    // The operator's API calls all go through ApiClient.request: wrap it for this object's status writes.
    const proto = ApiClient.prototype as unknown as { request: (this: ApiClient, req: ApiRequest) => Promise<unknown> };
    const original = proto.request;
    const statusPath = `${diagnosticsPath(ns.name, name)}/status`;
    let writes = 0;
    let conflicts = 0;
    let bumps = 0;
    const bump = async (): Promise<void> => {
      bumps += 1;
      await admin.patchNamespacedCustomObject({
        ...GPU_DIAGNOSTICS,
        namespace: ns.name,
        name,
        body: [{ op: 'add', path: '/metadata/annotations', value: { 'test.gpudiag.io/bump': String(bumps) } }],
      });
    };
    proto.request = async function (this: ApiClient, req: ApiRequest) {
      if (req.method !== 'PUT' || req.path !== statusPath) return original.call(this, req);
      writes += 1;
      if (writes % 2 === 1) await bump();
      try {
        return await original.call(this, req);
      } catch (err) {
        if (err instanceof KubeRequestError && err.statusCode === 409) conflicts += 1;
        throw err;
      }
    };
    // And a writer of labels running concurrently the whole time.
    let stop = false;
    let labelBumps = 0;
    const labeller = (async () => {
      while (!stop) {
        labelBumps += 1;
        await admin
          .patchNamespacedCustomObject({
            ...GPU_DIAGNOSTICS,
            namespace: ns.name,
            name,
            body: [{ op: 'add', path: '/metadata/labels', value: { 'test.gpudiag.io/bump': String(labelBumps) } }],
          })
          .catch((err: { code?: number }) => {
            if (err.code !== 404) throw err;
          });
        await sleep(40);
      }
    })();
    let done: GPUDiagnostic;
    try {
      await createDiagnostic(name, { nodeNames: [n['busy'], n['h100'], n['lost']] });
      done = await waitFinished(name);
    } finally {
      stop = true;
      proto.request = original;
      await labeller;
    }
    expect(conflicts).toBeGreaterThanOrEqual(2);
    expect(labelBumps).toBeGreaterThan(5);
    expect(done.metadata.generation).toBe(1);
    expect(done.status).toMatchObject({
      phase: 'Completed',
      observedGeneration: 1,
      summary: { nodesTargeted: 3, nodesSucceeded: 3, nodesByStatus: { healthy: 2, critical: 1 }, criticalNodes: [n['lost']] },
    });
    expectSummaryAddsUp(done);
    expect(nodeOf(done, 'busy')).toMatchObject({ result: 'Succeeded', status: 'healthy' });
    expect(nodeOf(done, 'busy').durationMs).toBeGreaterThanOrEqual(1_400);
    // The object stays finished: later reconciles (caused by more label changes) change nothing.
    const rv = (await readDiagnostic(name)).status;
    await admin.patchNamespacedCustomObject({
      ...GPU_DIAGNOSTICS,
      namespace: ns.name,
      name,
      body: [{ op: 'add', path: '/metadata/labels', value: { 'test.gpudiag.io/bump': 'final' } }],
    });
    await sleep(500);
    expect((await readDiagnostic(name)).status).toEqual(rv);
  });
});
