/** The chart from charts/ installed with a real helm (dev/tools/build-helm.sh builds and caches it). */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { repoRoot } from '../control-plane/binaries.js';

const run = promisify(execFile);

/** Values a development or test install on the real node needs (dev/real-node/values.yaml documents each). */
export const REAL_NODE_VALUES = path.join(repoRoot, 'dev', 'real-node', 'values.yaml');

/** The path of the pinned helm binary (built from the Go module proxy on first use). */
export async function ensureHelm(): Promise<string> {
  const { stdout } = await run('bash', [path.join(repoRoot, 'dev', 'tools', 'build-helm.sh')], { timeout: 30 * 60_000 });
  return stdout.trim().split('\n').at(-1) ?? '';
}

/** Options of one `helm install`. */
export interface ChartInstall {
  kubeconfig: string;
  release: string;
  namespace: string;
  /** Values files after the chart's own (REAL_NODE_VALUES for the dev node). */
  valuesFiles: readonly string[];
  /** `--set` pairs, last. */
  set?: Readonly<Record<string, string>>;
  /** How long helm waits for the pods to be Ready (`--wait`). */
  timeoutSeconds?: number;
  signal?: AbortSignal;
}

/** `helm install --wait` of charts/gpudiag, exactly as a user would; rejects with helm's output. */
export async function helmInstall(helm: string, install: ChartInstall): Promise<string> {
  const args = [
    'install',
    install.release,
    path.join(repoRoot, 'charts', 'gpudiag'),
    '--kubeconfig',
    install.kubeconfig,
    '--namespace',
    install.namespace,
    '--create-namespace',
    ...install.valuesFiles.flatMap((f) => ['--values', f]),
    ...Object.entries(install.set ?? {}).flatMap(([k, v]) => ['--set', `${k}=${v}`]),
    '--wait',
    '--timeout',
    `${install.timeoutSeconds ?? 300}s`,
  ];
  try {
    const { stdout } = await run(helm, args, { maxBuffer: 16 << 20, ...(install.signal !== undefined ? { signal: install.signal } : {}) });
    return stdout;
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string };
    throw new Error(`helm ${args.join(' ')} failed:\n${(e.stderr ?? '') || (e.stdout ?? '')}`, { cause: err });
  }
}
