/**
 * The Argo CD health checks in config/argocd/ run under gopher-lua (dev/tools/lua-health, what
 * Argo CD embeds): their own test cases in Argo CD's layout, the statuses the operator's compute
 * functions really write, inputs the API server would accept, and the argocd-cm snippet in
 * docs/gitops.md kept equal to the scripts.
 */
import { execFile } from 'node:child_process';
import { cp, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { parse, parseAllDocuments, stringify } from 'yaml';
import type { GPUDiagnosticStatus, GPUHealthPolicyStatus } from '../../api/index.js';
import { validateGPUDiagnostic, validateGPUHealthPolicy, describeErrors } from '../../api/validation.js';
import { repoRoot } from '../../dev/control-plane/binaries.js';
import { computeDiagnosticStatus, type DiagnosticObservation } from '../../operator/diagnostic/compute.js';
import type { NodeResultInput } from '../../operator/diagnostic/results.js';
import { computePolicyStatus, type PolicyObservation } from '../../operator/policy/compute.js';
import { BUILT_IN_POLICY, scoreNode } from '../../operator/scoring/index.js';
import { h100, lostGpu, NOW, nodeSnapshot } from '../../operator/scoring/test-fixtures.js';
import { kstatusViolations } from '../support/kstatus.js';

const run = promisify(execFile);
const CUSTOMIZATIONS = path.join(repoRoot, 'config', 'argocd', 'resource_customizations', 'gpudiag.io');
const KINDS = ['GPUDiagnostic', 'GPUHealthPolicy'] as const;
type Kind = (typeof KINDS)[number];
const BUILD_SCRIPT = 'dev/tools/build-lua-health.sh';

interface HealthStatus {
  status: string;
  message?: string;
}
interface RunnerResult {
  inputPath: string;
  want: HealthStatus;
  got?: HealthStatus;
  error?: string;
  pass: boolean;
}
interface RunnerReport {
  results: RunnerResult[];
  passed: number;
  failed: number;
}
interface HealthTest {
  healthStatus: HealthStatus;
  inputPath: string;
}

let runner: string;
let tmp: string;

/** Runs the runner over kind directories; resolves with its exit code and JSON report. */
async function runLuaHealth(dirs: string[]): Promise<{ code: number; report: RunnerReport }> {
  try {
    const { stdout } = await run(runner, ['--json', ...dirs], { timeout: 30_000 });
    return { code: 0, report: JSON.parse(stdout) as RunnerReport };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    if (e.code !== 1 || e.stdout === undefined) throw new Error(`lua-health failed: ${e.stderr ?? String(err)}`, { cause: err });
    return { code: 1, report: JSON.parse(e.stdout) as RunnerReport };
  }
}

async function healthTests(kind: Kind): Promise<HealthTest[]> {
  return (parse(await readFile(path.join(CUSTOMIZATIONS, kind, 'health_test.yaml'), 'utf8')) as { tests: HealthTest[] }).tests;
}

/** A kind directory in tmp holding the real health.lua and the given cases. */
async function caseDir(name: string, kind: Kind, cases: { file: string; object: unknown; want: HealthStatus }[]): Promise<string> {
  const dir = path.join(tmp, name, kind);
  await mkdir(path.join(dir, 'testdata'), { recursive: true });
  await cp(path.join(CUSTOMIZATIONS, kind, 'health.lua'), path.join(dir, 'health.lua'));
  for (const c of cases) await writeFile(path.join(dir, 'testdata', c.file), stringify(c.object));
  const tests = cases.map((c) => ({ healthStatus: c.want, inputPath: `testdata/${c.file}` }));
  await writeFile(path.join(dir, 'health_test.yaml'), stringify({ tests }));
  return dir;
}

beforeAll(async () => {
  try {
    const { stdout } = await run('bash', [path.join(repoRoot, BUILD_SCRIPT), '--check']);
    runner = stdout.trim();
  } catch (err) {
    const stderr = (err as { stderr?: string }).stderr ?? String(err);
    throw new Error(
      `the Argo CD health-check runner is not built: run \`bash ${BUILD_SCRIPT}\` (needs Go; .ci/run does it). ${stderr.trim()}`,
      { cause: err },
    );
  }
  tmp = await mkdtemp(path.join(os.tmpdir(), 'gpudiag-argocd-health-'));
});

afterAll(async () => {
  if (tmp !== undefined) await rm(tmp, { recursive: true, force: true });
});

describe('Argo CD health checks: their own test cases', () => {
  it('every case of both kinds passes under gopher-lua', async () => {
    const { code, report } = await runLuaHealth(KINDS.map((k) => path.join(CUSTOMIZATIONS, k)));
    expect(report.results.filter((r) => !r.pass)).toEqual([]);
    expect(code).toBe(0);
    const expected = (await Promise.all(KINDS.map(healthTests))).flat().length;
    expect(report.passed).toBe(expected);
  });

  it.each(KINDS)('%s: the cases cover Healthy, Progressing and Degraded, and every testdata file is used', async (kind) => {
    const tests = await healthTests(kind);
    for (const s of ['Healthy', 'Progressing', 'Degraded']) expect(tests.some((t) => t.healthStatus.status === s)).toBe(true);
    const files = (await readdir(path.join(CUSTOMIZATIONS, kind, 'testdata'))).map((f) => `testdata/${f}`).sort();
    expect(tests.map((t) => t.inputPath).sort()).toEqual(files);
  });

  it.each(KINDS)('%s: every testdata object is one the API server accepts, with kstatus-consistent conditions', async (kind) => {
    const validate = kind === 'GPUDiagnostic' ? validateGPUDiagnostic : validateGPUHealthPolicy;
    for (const t of await healthTests(kind)) {
      const obj = parse(await readFile(path.join(CUSTOMIZATIONS, kind, t.inputPath), 'utf8')) as Record<string, unknown>;
      const result = validate(obj);
      expect([t.inputPath, result.ok ? '' : describeErrors(result.errors)]).toEqual([t.inputPath, '']);
      expect([t.inputPath, kstatusViolations(obj)]).toEqual([t.inputPath, []]);
      expect(obj['kind']).toBe(kind);
    }
  });
});

describe('the runner judges like Argo CD', () => {
  const created = {
    apiVersion: 'gpudiag.io/v1alpha1',
    kind: 'GPUDiagnostic',
    metadata: { name: 'd', namespace: 'default', generation: 1 },
    spec: {},
  };

  it('reports a case whose expectation differs, and exits 1', async () => {
    const dir = await caseDir('mismatch', 'GPUDiagnostic', [
      { file: 'new.yaml', object: created, want: { status: 'Healthy', message: 'not what it says' } },
    ]);
    const { code, report } = await runLuaHealth([dir]);
    expect(code).toBe(1);
    expect(report.results).toEqual([
      expect.objectContaining({
        pass: false,
        want: { status: 'Healthy', message: 'not what it says' },
        got: { status: 'Progressing', message: 'Waiting for the gpudiag operator to observe the diagnostic' },
      }),
    ]);
  });

  it('gives a script only what argocd-cm gives it: no string library', async () => {
    const dir = await caseDir('open-libs', 'GPUDiagnostic', [{ file: 'new.yaml', object: created, want: { status: 'Healthy' } }]);
    await writeFile(path.join(dir, 'health.lua'), 'return { status = "Healthy", message = string.format("%d", 1) }\n');
    const { code, report } = await runLuaHealth([dir]);
    expect(code).toBe(1);
    expect(report.results[0]?.error).toMatch(/string/);
  });

  it('turns a status Argo CD does not know into Unknown, as Argo CD does', async () => {
    const dir = await caseDir('invalid', 'GPUDiagnostic', [
      { file: 'new.yaml', object: created, want: { status: 'Unknown', message: 'Lua returned an invalid health status' } },
    ]);
    await writeFile(path.join(dir, 'health.lua'), 'return { status = "Fine" }\n');
    expect((await runLuaHealth([dir])).code).toBe(0);
  });
});

const healthyNode: NodeResultInput = {
  node: 'gpu-node-1',
  result: 'Succeeded',
  score: scoreNode({ ...nodeSnapshot({ gpus: [h100(0)] }), node: 'gpu-node-1' }, BUILT_IN_POLICY, NOW),
};
const brokenNode: NodeResultInput = {
  node: 'gpu-node-2',
  result: 'Succeeded',
  score: scoreNode({ ...nodeSnapshot({ gpus: [lostGpu(0)] }), node: 'gpu-node-2' }, BUILT_IN_POLICY, NOW),
};
const unreachableNode: NodeResultInput = { node: 'gpu-node-3', result: 'Unreachable', message: 'connection refused' };

type Conditions = NonNullable<GPUDiagnosticStatus['conditions']>;
const conditionOf = (conditions: Conditions | undefined, type: string): Conditions[number] | undefined =>
  conditions?.find((c) => c.type === type);
const labelled = (c: Conditions[number] | undefined): string => `${c?.reason}: ${c?.message}`;
const healthyMessage = (conditions: Conditions | undefined): string =>
  `${conditionOf(conditions, 'Ready')?.message}; ${conditionOf(conditions, 'Healthy')?.message}`;

describe('Argo CD health of the statuses the operator writes', () => {
  it('GPUDiagnostic: Progressing while pending or running, Healthy when completed (whatever it found), Degraded when failed', async () => {
    const start = '2025-06-01T12:00:00Z';
    const steps: [string, DiagnosticObservation, 'Progressing' | 'Healthy' | 'Degraded'][] = [
      ['pending', { kind: 'pending', message: 'waiting for GPUHealthPolicy "p" (spec.policyRef.name) to be created' }, 'Progressing'],
      ['running', { kind: 'running', startTime: start, targeted: 2, completed: [healthyNode], restarted: false }, 'Progressing'],
      ['restarted', { kind: 'running', startTime: start, targeted: 2, completed: [], restarted: true }, 'Progressing'],
      ['all-healthy', { kind: 'finished', startTime: start, targeted: 1, results: [healthyNode] }, 'Healthy'],
      ['critical', { kind: 'finished', startTime: start, targeted: 2, results: [healthyNode, brokenNode] }, 'Healthy'],
      ['unreachable', { kind: 'finished', startTime: start, targeted: 2, results: [healthyNode, unreachableNode] }, 'Healthy'],
      ...(['InvalidSpec', 'PolicyNotFound', 'InvalidPolicy', 'NoMatchingNodes'] as const).map(
        (reason): [string, DiagnosticObservation, 'Degraded'] => [
          `stalled-${reason}`,
          { kind: 'stalled', reason, message: `because ${reason}` },
          'Degraded',
        ],
      ),
    ];
    const cases = steps.map(([name, observation, want]) => {
      const status = computeDiagnosticStatus(undefined, 1, observation, NOW);
      const message =
        want === 'Healthy'
          ? healthyMessage(status.conditions)
          : labelled(conditionOf(status.conditions, want === 'Degraded' ? 'Stalled' : 'Reconciling'));
      const object = {
        apiVersion: 'gpudiag.io/v1alpha1',
        kind: 'GPUDiagnostic',
        metadata: { name, namespace: 'default', generation: 1 },
        spec: {},
        status,
      };
      return { file: `${name}.yaml`, object, want: { status: want, message } };
    });
    const { report } = await runLuaHealth([await caseDir('diagnostic', 'GPUDiagnostic', cases)]);
    expect(report.results.filter((r) => !r.pass)).toEqual([]);
    expect(report.passed).toBe(cases.length);
    expect(cases.find((c) => c.file === 'critical.yaml')?.want.message).toContain('gpu-node-2');
  });

  it('GPUHealthPolicy: Progressing for a new generation, Healthy when checked, Suspended, Degraded when stalled', async () => {
    const policy = (name: string, generation: number, status: GPUHealthPolicyStatus): Record<string, unknown> => ({
      apiVersion: 'gpudiag.io/v1alpha1',
      kind: 'GPUHealthPolicy',
      metadata: { name, generation },
      spec: { interval: '10m' },
      status,
    });
    const next = new Date(NOW.getTime() + 600_000);
    const checked = (results: NodeResultInput[]): PolicyObservation => ({ kind: 'checked', results, nextCheckTime: next });
    const healthy = computePolicyStatus(undefined, 1, checked([healthyNode]), NOW);
    const cases: { file: string; object: unknown; want: HealthStatus }[] = [];
    const add = (name: string, generation: number, status: GPUHealthPolicyStatus, want: HealthStatus): void => {
      cases.push({ file: `${name}.yaml`, object: policy(name, generation, status), want });
    };
    const checking = computePolicyStatus(undefined, 1, { kind: 'checking', governed: 2 }, NOW);
    add('checking', 1, checking, { status: 'Progressing', message: labelled(conditionOf(checking.conditions, 'Reconciling')) });
    add('healthy', 1, healthy, { status: 'Healthy', message: healthyMessage(healthy.conditions) });
    const critical = computePolicyStatus(healthy, 1, checked([healthyNode, brokenNode, unreachableNode]), NOW);
    add('critical', 1, critical, { status: 'Healthy', message: healthyMessage(critical.conditions) });
    add('edited', 2, healthy, { status: 'Progressing', message: 'Waiting for the gpudiag operator to observe generation 2' });
    const rechecking = computePolicyStatus(healthy, 2, { kind: 'checking', governed: 1 }, NOW);
    add('rechecking', 2, rechecking, { status: 'Progressing', message: labelled(conditionOf(rechecking.conditions, 'Reconciling')) });
    const suspended = computePolicyStatus(healthy, 2, { kind: 'suspended' }, NOW);
    add('suspended', 2, suspended, { status: 'Suspended', message: conditionOf(suspended.conditions, 'Ready')?.message ?? '' });
    for (const reason of ['InvalidSpec', 'InvalidPolicy'] as const) {
      const stalled = computePolicyStatus(healthy, 2, { kind: 'stalled', reason, message: `because ${reason}` }, NOW);
      add(`stalled-${reason}`, 2, stalled, { status: 'Degraded', message: `${reason}: because ${reason}` });
    }
    const { report } = await runLuaHealth([await caseDir('policy', 'GPUHealthPolicy', cases)]);
    expect(report.results.filter((r) => !r.pass)).toEqual([]);
    expect(report.passed).toBe(cases.length);
    expect(cases.find((c) => c.file === 'critical.yaml')?.want.message).toContain('gpu-node-2');
  });
});

describe('docs/gitops.md', () => {
  it('shows the argocd-cm resource.customizations with exactly the scripts in config/argocd/', async () => {
    const doc = await readFile(path.join(repoRoot, 'docs', 'gitops.md'), 'utf8');
    const blocks = [...doc.matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => m[1] ?? '');
    const configMaps = blocks
      .flatMap((b) =>
        parseAllDocuments(b).map((d) => d.toJS() as { kind?: string; metadata?: { name?: string }; data?: Record<string, string> }),
      )
      .filter((o) => o?.kind === 'ConfigMap' && o.metadata?.name === 'argocd-cm');
    expect(configMaps).toHaveLength(1);
    for (const kind of KINDS) {
      const script = await readFile(path.join(CUSTOMIZATIONS, kind, 'health.lua'), 'utf8');
      expect(configMaps[0]?.data?.[`resource.customizations.health.gpudiag.io_${kind}`]).toBe(script);
    }
  });
});
