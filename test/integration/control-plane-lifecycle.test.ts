/**
 * The control plane and `gpudiag dev up` start, serve and stop without leaving processes
 * behind: on stop, on SIGINT/SIGTERM (even mid-start), and when the owner is SIGKILLed.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from '@jest/globals';
import { CoreV1Api } from '@kubernetes/client-node';
import { repoRoot } from '../../dev/control-plane/binaries.js';
import { ControlPlane } from '../../dev/control-plane/control-plane.js';
import { kubectl } from '../support/kubectl.js';
import { processesMentioning, waitForNoProcesses } from '../support/processes.js';

const tempDirs: string[] = [];
async function tempDir(): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'gpudiag-lifecycle-'));
  tempDirs.push(dir);
  return dir;
}
afterAll(async () => {
  await Promise.all(tempDirs.map((d) => rm(d, { recursive: true, force: true })));
});

/** Resolves when the child's stderr (or stdout) has printed text matching the pattern. */
function waitForOutput(child: ChildProcess, pattern: RegExp, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    let seen = '';
    const timer = setTimeout(() => reject(new Error(`timed out waiting for ${pattern}; output so far:\n${seen}`)), timeoutMs);
    const onData = (chunk: Buffer): void => {
      seen += chunk.toString();
      if (pattern.test(seen)) {
        clearTimeout(timer);
        resolve(seen);
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
  });
}

function exitOf(child: ChildProcess): Promise<number | string> {
  return new Promise((resolve) => child.once('exit', (code, signal) => resolve(code ?? signal ?? 'unknown')));
}

describe('control plane lifecycle', () => {
  it('starts, serves and stops leaving no etcd or kube-apiserver behind', async () => {
    const dir = await tempDir();
    expect(await processesMentioning(dir)).toEqual([]);
    const cp = await ControlPlane.start({ dir });
    const running = await processesMentioning(dir);
    expect(running.sort()).toEqual([...cp.pids].sort());
    const namespaces = await cp.adminKubeConfig().makeApiClient(CoreV1Api).listNamespace();
    expect(namespaces.items.map((n) => n.metadata?.name)).toContain('default');
    await cp.stop();
    expect(await processesMentioning(dir)).toEqual([]);
  });

  it('gpudiag dev up serves the CRDs and samples, diagnoses its simulated fleet, and SIGINT stops everything', async () => {
    const stateDir = await tempDir();
    const child = spawn(process.execPath, [path.join(repoRoot, 'bin', 'gpudiag.js'), 'dev', 'up', '--state-dir', stateDir], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const exited = exitOf(child);
    const output = await waitForOutput(child, /Press Ctrl-C to stop/, 60_000);
    const kubeconfig = path.join(stateDir, 'kubeconfig');
    expect(output).toContain(`export KUBECONFIG=`);
    expect(output).toContain('kubectl get gpudiag -A');
    const res = await kubectl(kubeconfig, ['get', 'gpudiag', '-A', '-o', 'name']);
    expect(res.stdout).toContain('gpudiagnostic.gpudiag.io/fleet-health');
    expect(res.stdout).toContain('gpuhealthpolicy.gpudiag.io/production');
    expect((await processesMentioning(stateDir)).length).toBeGreaterThanOrEqual(2);
    // The operator and the simulated fleet diagnose the sample within seconds.
    let phase = '';
    for (const deadline = Date.now() + 30_000; phase !== 'Completed' && Date.now() < deadline;) {
      phase = (await kubectl(kubeconfig, ['get', 'gdiag', 'fleet-health', '-n', 'default', '-o', 'jsonpath={.status.phase}'])).stdout;
      if (phase !== 'Completed') await new Promise((r) => setTimeout(r, 250));
    }
    expect(phase).toBe('Completed');
    const table = await kubectl(kubeconfig, ['get', 'gdiag', 'fleet-health', '-n', 'default', '--no-headers']);
    expect(table.stdout.split(/\s+/).slice(0, 6)).toEqual(['fleet-health', 'Completed', '4', '4', 'False', '2']);
    child.kill('SIGINT');
    expect(await exited).toBe(0);
    expect(await waitForNoProcesses(stateDir, 2_000)).toEqual([]);
  });

  it('gpudiag dev up stopped by SIGTERM mid-start leaves nothing behind', async () => {
    const stateDir = await tempDir();
    const child = spawn(process.execPath, [path.join(repoRoot, 'bin', 'gpudiag.js'), 'dev', 'up', '--state-dir', stateDir], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const exited = exitOf(child);
    await waitForOutput(child, /starting kube-apiserver/, 60_000);
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(await waitForNoProcesses(stateDir, 2_000)).toEqual([]);
  });

  it('an owner killed with SIGKILL does not orphan etcd or kube-apiserver (watchdog)', async () => {
    const dir = await tempDir();
    const script = `import { ControlPlane } from ${JSON.stringify(path.join(repoRoot, 'dist/dev/control-plane/control-plane.js'))};
await ControlPlane.start({ dir: ${JSON.stringify(dir)} });
process.stdout.write('ready\\n');
setInterval(() => undefined, 1000);`;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
    const exited = exitOf(child);
    try {
      await waitForOutput(child, /ready/, 60_000);
      const controlPlaneProcesses = await processesMentioning(`--data-dir ${dir}`).then(async (etcd) => [
        ...etcd,
        ...(await processesMentioning(`--cert-dir ${dir}`)),
      ]);
      expect(controlPlaneProcesses).toHaveLength(2);
    } finally {
      child.kill('SIGKILL');
    }
    await exited;
    expect(await waitForNoProcesses(dir, 15_000)).toEqual([]);
  });
});
