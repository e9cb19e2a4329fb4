/**
 * End to end over the simulated fleet: one node per kernel-log scenario (real XID, SXid and
 * bus-loss lines in each node's kmsg stand-in), the operator against the real API server, and
 * the sample GPUDiagnostic config/samples/gpudiagnostic-xid-scenarios.yaml over those nodes. Each node must come out as NVIDIA's catalog
 * says: the decoded bucket, not the driver's "Fatal" word, decides.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { parse } from 'yaml';
import type { GPUDiagnostic } from '../../api/index.js';
import { SCENARIO_LABEL } from '../../dev/fleet/simulated-fleet.js';
import { createLogger } from '../../lib/logger.js';
import { useTestNamespace } from '../support/cluster.js';
import { createDiagnostic, waitFinished } from '../support/diagnostics.js';
import { startScenarioEnv, type ScenarioEnv } from '../support/operator-env.js';

type StatusNode = NonNullable<NonNullable<GPUDiagnostic['status']>['nodes']>[number];
type StatusXid = NonNullable<StatusNode['xidEvents']>[number];
type StatusGpu = NonNullable<StatusNode['gpus']>[number];

const ns = useTestNamespace('e2e-xid');
const logger = createLogger({ silent: true });
const SCENARIOS = ['nvlink5-storm', 'xid154-recovered', 'xid45-after-149', 'xid74-ignorable', 'bus-loss-no-xid', 'nvswitch-sxid'] as const;
type Scenario = (typeof SCENARIOS)[number];

let env: ScenarioEnv | undefined;
let done: GPUDiagnostic;
let nodeNames: ReadonlyMap<string, string> = new Map();

function node(scenario: Scenario): StatusNode {
  const name = nodeNames.get(scenario);
  const found = done.status?.nodes?.find((n) => n.name === name);
  if (found === undefined)
    throw new Error(`no status for ${scenario} (${name ?? '?'}): ${JSON.stringify(done.status?.nodes?.map((n) => n.name))}`);
  return found;
}

function gpu(n: StatusNode, index: number): StatusGpu {
  const found = n.gpus?.find((g) => g.index === index);
  if (found === undefined) throw new Error(`${n.name} has no GPU ${index} in its status`);
  return found;
}

/** The node's XID events of one code, as [immediateAction, severity, count] sorted, plus the events themselves. */
function xids(n: StatusNode, xid: number): StatusXid[] {
  return (n.xidEvents ?? []).filter((e) => e.xid === xid);
}

function buckets(events: StatusXid[]): [string | undefined, string | undefined, number][] {
  return events
    .map((e): [string | undefined, string | undefined, number] => [e.immediateAction, e.severity, e.count])
    .sort((a, b) => String(a).localeCompare(String(b)));
}

function gpuStatuses(n: StatusNode): string[] {
  return [...(n.gpus ?? [])].sort((a, b) => a.index - b.index).map((g) => `${g.index}:${g.status}`);
}

beforeAll(async () => {
  env = await startScenarioEnv(ns.name, SCENARIOS, {
    label: 'gpudiag.io/e2e',
    identity: 'e2e-xid-operator',
    logger,
    operatorArgs: ['--per-node-timeout-seconds', '10'],
  });
  nodeNames = env.nodeNames;
  // The shipped sample's spec, narrowed to this file's nodes (the API server is shared).
  const sample = parse(await readFile(path.resolve(process.cwd(), 'config/samples/gpudiagnostic-xid-scenarios.yaml'), 'utf8')) as {
    spec: { nodeSelector: Record<string, unknown> };
  };
  await createDiagnostic(ns.name, 'xid-scenarios', {
    ...sample.spec,
    nodeSelector: { ...sample.spec.nodeSelector, matchLabels: { 'gpudiag.io/e2e': ns.name } },
  });
  done = await waitFinished(ns.name, 'xid-scenarios', { timeoutMs: 60_000, pollMs: 250 });
}, 120_000);

afterAll(async () => {
  await env?.stop();
});

describe('operator: XID scenarios from real kernel-log lines', () => {
  it('completes over every scenario node and classifies each node', () => {
    expect(done.status).toMatchObject({
      phase: 'Completed',
      summary: { nodesTargeted: SCENARIOS.length, nodesSucceeded: SCENARIOS.length, nodesFailed: 0 },
    });
    expect(Object.fromEntries(SCENARIOS.map((s) => [s, node(s).status]))).toEqual({
      'nvlink5-storm': 'critical',
      'xid154-recovered': 'healthy',
      'xid45-after-149': 'critical',
      'xid74-ignorable': 'healthy',
      'bus-loss-no-xid': 'critical',
      'nvswitch-sxid': 'critical',
    });
  });

  it(
    'nvlink5-storm: only the 149 on link 1 asks for a reset; ' + 'the "Fatal" 149s on links 0 and 14, the 144s and 145s decode to IGNORE',
    () => {
      const n = node('nvlink5-storm');
      const nvlink149 = xids(n, 149);
      expect(buckets(nvlink149)).toEqual([
        ['IGNORE', 'info', 12],
        ['IGNORE', 'info', 12],
        ['RESET_GPU', 'critical', 3],
      ]);
      const reset = nvlink149.find((e) => e.immediateAction === 'RESET_GPU');
      expect(reset).toMatchObject({ persistsUntil: 'gpu-reset', pciBusId: '0000:1b:00', gpu: 'GPU-4e2c9f31-7a0b-5d18-c3e6-91f0a2b7d845' });
      expect(reset?.message).toContain('Link 01');
      expect(reset?.decoded).toContain('NETIR_LINK_EVT link 1: RESET_GPU (decode table V2');
      // The driver wrote "Fatal" on every 149; the table says IGNORE for links 0 and 14.
      const ignored = nvlink149.filter((e) => e.immediateAction === 'IGNORE');
      expect(ignored.map((e) => e.message?.match(/Link \d+/)?.[0]).sort()).toEqual(['Link 00', 'Link 14']);
      for (const e of ignored) expect(e.message).toContain('Fatal');
      expect(buckets(xids(n, 144))).toEqual([['IGNORE', 'info', 12]]);
      expect(buckets(xids(n, 145))).toEqual([['IGNORE', 'info', 12]]);
      expect(gpuStatuses(n)).toEqual([
        '0:critical',
        '1:healthy',
        '2:healthy',
        '3:healthy',
        '4:healthy',
        '5:healthy',
        '6:healthy',
        '7:healthy',
      ]);
      expect(gpu(n, 0).findings?.map((f) => [f.code, f.severity])).toEqual(expect.arrayContaining([['XidCritical', 'critical']]));
    },
  );

  it('xid154-recovered: the latest 154 ("to 0x0 (None)") is IGNORE, supersedes the earlier ones and clears the 149s', () => {
    const n = node('xid154-recovered');
    const recovery = xids(n, 154);
    expect(recovery).toHaveLength(3);
    const latest = [...recovery].sort((a, b) => Date.parse(b.lastSeen ?? '') - Date.parse(a.lastSeen ?? ''))[0];
    expect(latest).toMatchObject({ immediateAction: 'IGNORE', severity: 'info' });
    expect(latest?.message).toContain('to 0x0 (None)');
    expect(buckets(recovery)).toEqual([
      ['IGNORE', 'info', 1],
      ['IGNORE', 'info', 1],
      ['IGNORE', 'info', 1],
    ]);
    expect(buckets(xids(n, 149))).toEqual([
      ['IGNORE', 'info', 1],
      ['IGNORE', 'info', 1],
    ]);
    expect(gpu(n, 2).status).not.toBe('critical');
    expect(n.status).toBe('healthy');
  });

  it('xid45-after-149: the 45s "caused by previous Xid 149" are IGNORE (sympathetic); the 149 decides', () => {
    const n = node('xid45-after-149');
    expect(xids(n, 45).map((e) => [e.immediateAction, e.severity, e.count, e.pid])).toEqual([['IGNORE (sympathetic)', 'info', 2, 1818990]]);
    expect(buckets(xids(n, 149))).toEqual([['RESET_GPU', 'critical', 1]]);
    expect(gpu(n, 3).status).toBe('critical');
    expect(gpuStatuses(n).filter((s) => !s.endsWith(':healthy'))).toEqual(['3:critical']);
  });

  it('xid74-ignorable: an XID 74 with only ignorable register bits leaves the GPU healthy', () => {
    const n = node('xid74-ignorable');
    expect(xids(n, 74).map((e) => [e.immediateAction, e.severity, e.count, e.pciBusId])).toEqual([['IGNORE', 'info', 2, '0000:9a:00']]);
    expect(xids(n, 74)[0]?.decoded).toContain('field 1 bit 0 ignorable');
    expect(gpu(n, 4)).toMatchObject({ status: 'healthy', findings: [expect.objectContaining({ code: 'XidInfo', severity: 'info' })] });
    expect(n.status).toBe('healthy');
  });

  it('bus-loss-no-xid: both bus-loss forms (one line, and the multi-line probe message) make those GPUs critical without any XID', () => {
    const n = node('bus-loss-no-xid');
    expect(n.xidEvents ?? []).toEqual([]);
    expect(gpuStatuses(n).filter((s) => !s.endsWith(':healthy'))).toEqual(['1:critical', '5:critical']);
    for (const index of [1, 5])
      expect(gpu(n, index).findings).toEqual(
        expect.arrayContaining([expect.objectContaining({ code: 'GpuFellOffBus', severity: 'critical' })]),
      );
  });

  it('selects the scenario nodes by their gpudiag.io/scenario label (docs/development.md)', async () => {
    await createDiagnostic(ns.name, 'by-label', {
      checks: ['health', 'xid'],
      nodeSelector: {
        matchLabels: { 'gpudiag.io/e2e': ns.name },
        matchExpressions: [{ key: SCENARIO_LABEL, operator: 'In', values: ['nvlink5-storm', 'nvswitch-sxid'] }],
      },
    });
    const byLabel = await waitFinished(ns.name, 'by-label', { timeoutMs: 60_000, pollMs: 250 });
    expect(byLabel.status?.nodes?.map((n) => [n.name, n.status]).sort()).toEqual([
      [nodeNames.get('nvlink5-storm'), 'critical'],
      [nodeNames.get('nvswitch-sxid'), 'critical'],
    ]);
  });

  it('nvswitch-sxid: fatal SXids are a node-level critical finding per switch, the non-fatal ones a warning; the GPUs stay healthy', () => {
    const n = node('nvswitch-sxid');
    const findings = n.findings ?? [];
    const fatal = findings.filter((f) => f.code === 'NvSwitchFatalSxid');
    expect(fatal.map((f) => f.severity)).toEqual(['critical', 'critical', 'critical']);
    expect(fatal.map((f) => f.message.match(/NVSwitch (\S+)/)?.[1]).sort()).toEqual(['0000:05:00', '0000:06:00', '0000:07:00']);
    expect(findings.filter((f) => f.code === 'NvSwitchNonFatalSxid').map((f) => [f.severity, f.message.includes('links 44, 45')])).toEqual([
      ['warning', true],
    ]);
    expect(n.xidEvents ?? []).toEqual([]);
    expect(gpuStatuses(n).every((s) => s.endsWith(':healthy'))).toBe(true);
  });
});
