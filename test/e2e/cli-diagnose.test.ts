/**
 * End to end: the real `node bin/gpudiag.js diagnose` child process, as a certificate user bound
 * to gpudiag-mcp-user (config/rbac/operator-mcp.yaml: create/get/watch GPUDiagnostics), against
 * a real API server, the operator and a simulated fleet over the fake NVML library. The exit
 * codes are what scripts gate on: 0 healthy, 1 unhealthy, 2 could not diagnose.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { CustomObjectsApi } from '@kubernetes/client-node';
import { GPU_DIAGNOSTICS, type GPUDiagnosticStatus } from '../../api/index.js';
import { repoRoot } from '../../dev/control-plane/binaries.js';
import { freePort } from '../../dev/control-plane/control-plane.js';
import { uniqueFleetNames, type SimulatedFleet } from '../../dev/fleet/simulated-fleet.js';
import { createLogger } from '../../lib/logger.js';
import type { Operator } from '../../operator/operator.js';
import { testCluster, useTestNamespace } from '../support/cluster.js';
import { slowDownAgent, startTestFleet, startTestOperator, testOperatorArgs } from '../support/operator-env.js';
import { applyRbac } from '../support/rbac.js';
import { mcpUserKubeconfig } from './mcp-harness.js';

const ns = useTestNamespace('e2e-cli');
const logger = createLogger({ silent: true });
let fleet: SimulatedFleet;
let operator: Operator;
let nodes: Record<'healthy' | 'lost' | 'slow', string>;
let kubeconfig = '';
let dir = '';

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `gpudiag diagnose ARGS` as the test user; stdout and stderr are pipes, as in a script. */
async function diagnose(args: string[]): Promise<Run> {
  const child = spawn(process.execPath, [path.join(repoRoot, 'bin', 'gpudiag.js'), 'diagnose', ...args], {
    env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', HOME: dir, KUBECONFIG: kubeconfig },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString('utf8')));
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
  const code = await new Promise<number | null>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', resolve);
  });
  return { code, stdout, stderr };
}

/** The table's data rows as cells (split on runs of two or more spaces). */
function tableRows(stdout: string): string[][] {
  const lines = stdout.split('\n');
  expect(lines[0]).toMatch(/^NODE\s+GPU\s+STATUS\s+SCORE\s+WORST FINDING\s+XIDS$/);
  const end = lines.indexOf('');
  return lines.slice(1, end).map((l) => l.split(/\s{2,}/));
}

beforeAll(async () => {
  const cluster = testCluster();
  await applyRbac('operator.yaml', ns.name);
  await applyRbac('agent.yaml', ns.name);
  await applyRbac('operator-mcp.yaml', ns.name);
  const port = await freePort();
  const specs = uniqueFleetNames(ns.name, [
    { name: 'healthy', scenario: 'h100-sxm-8x-healthy' },
    { name: 'lost', scenario: 'gpu-lost-xid79' },
    { name: 'slow', scenario: 'h100-sxm-8x-healthy' },
  ]);
  nodes = { healthy: specs[0]?.name ?? '', lost: specs[1]?.name ?? '', slow: specs[2]?.name ?? '' };
  fleet = await startTestFleet(ns.name, specs, port, logger);
  // About 6 s per snapshot: past the 5 s per-node deadline, so a diagnostic of it outlasts a short --wait.
  await slowDownAgent(fleet, nodes.slow);
  const args = [...testOperatorArgs(ns.name, port), '--per-node-timeout-seconds', '5', '--policy-grace-seconds', '1'];
  operator = await startTestOperator(ns.name, args, 'e2e-cli-operator', logger, () =>
    cluster.serviceAccountToken(ns.name, 'gpudiag-operator', ['gpudiag-agent']),
  );
  dir = await mkdtemp(path.join(os.tmpdir(), 'gpudiag-cli-e2e-'));
  // Its context's namespace is the test namespace: the CLI creates its diagnostics there by default.
  kubeconfig = await mcpUserKubeconfig(ns.name, 'user', `${ns.name}-cli-user`, dir);
}, 120_000);

afterAll(async () => {
  await operator?.stop();
  await fleet?.stop();
  if (dir !== '') await rm(dir, { recursive: true, force: true });
});

describe('gpudiag diagnose (child process, real API server, operator and agents)', () => {
  it('exits 0 on a healthy node and prints one table row per GPU, then the summary', async () => {
    const run = await diagnose([nodes.healthy, '--checks', 'health,xid']);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const rows = tableRows(run.stdout);
    expect(rows).toHaveLength(8);
    expect(rows.every((r) => r[0] === nodes.healthy && r[2] === 'healthy' && r[3] === '100')).toBe(true);
    expect(rows.map((r) => r[1]?.split(' ')[0])).toEqual(['0', '1', '2', '3', '4', '5', '6', '7']);
    expect(run.stdout).toMatch(
      new RegExp(`GPUDiagnostic ${ns.name}/cli-diagnose-\\w+ Completed; 1 node\\(s\\): 0 critical, 0 degraded, 0 not diagnosed, 1 healthy`),
    );
  });

  it('exits 1 when a node is unhealthy, the faulty node first with its finding and XID', async () => {
    const run = await diagnose([nodes.healthy, nodes.lost]);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('unhealthy: 1 node(s) critical');
    const rows = tableRows(run.stdout);
    // The lost GPU (index 3, no bus id left to read), then the node's own row: the XID 79 the
    // kernel logged for a bus id no reported GPU has.
    expect(rows[0]).toEqual([nodes.lost, '3', 'critical', '40', expect.stringMatching(/^GpuLost: GPU 3 is lost/), '-']);
    expect(rows[1]).toEqual([nodes.lost, '-', 'critical', '-', expect.stringMatching(/^XidCritical: XID 79 /), '79']);
    expect(rows.slice(2).map((r) => r[2])).toEqual(Array(15).fill('healthy'));
  });

  it('exits 2 for a node that does not exist (no agent), naming why', async () => {
    const missing = `${ns.name}-no-such-node`;
    const run = await diagnose([missing]);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('1 of 1 node(s) could not be diagnosed');
    expect(tableRows(run.stdout)[0]).toEqual([missing, '-', 'unknown', '-', expect.stringContaining('NoAgent'), '-']);
  });

  it('exits 2 when --wait expires first, and says the diagnostic keeps running', async () => {
    const run = await diagnose([nodes.slow, '--wait', '1s']);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(new RegExp(`GPUDiagnostic ${ns.name}/cli-diagnose-\\w+ did not finish within --wait; it keeps running`));
    // Pipes get no progress line.
    expect(run.stderr).not.toContain('\r');
  });

  it('-o json prints the status as JSON; --wait=0 prints the created name only', async () => {
    const json = await diagnose([nodes.lost, '-o', 'json']);
    expect(json.code).toBe(1);
    const status = JSON.parse(json.stdout) as GPUDiagnosticStatus;
    expect(status.phase).toBe('Completed');
    expect(status.nodes?.[0]).toMatchObject({ name: nodes.lost, status: 'critical' });

    const created = await diagnose([nodes.healthy, '--wait=0']);
    expect(created.code).toBe(0);
    const name = created.stdout.trim();
    expect(name).toMatch(/^cli-diagnose-\w+$/);
    const api = testCluster().admin().makeApiClient(CustomObjectsApi);
    const obj = (await api.getNamespacedCustomObject({ ...GPU_DIAGNOSTICS, namespace: ns.name, name })) as {
      metadata: { labels: Record<string, string> };
      spec: Record<string, unknown>;
    };
    expect(obj.metadata.labels['gpudiag.io/created-by']).toBe('cli');
    expect(obj.spec).toMatchObject({ nodeNames: [nodes.healthy], ttlSecondsAfterFinished: 86_400 });
  });

  it('exits 2 when the API server refuses: --kubeconfig of a user without RBAC', async () => {
    const stranger = await testCluster().as({ user: `${ns.name}-stranger`, groups: ['gpudiag-e2e'] });
    const file = path.join(dir, 'stranger.kubeconfig');
    await writeFile(file, stranger.exportConfig(), { mode: 0o600 });
    const run = await diagnose([nodes.healthy, '--kubeconfig', file, '-n', ns.name]);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain(`cannot create a GPUDiagnostic in ${ns.name}: HTTP 403 Forbidden`);
  });
});
