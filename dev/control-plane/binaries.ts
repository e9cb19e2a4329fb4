/** Locates (building on first use) the pinned etcd and kube-apiserver binaries. */
import { execFile } from 'node:child_process';
import { access, constants } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** Absolute paths of the control-plane binaries. */
export interface ControlPlaneBinaries {
  etcd: string;
  kubeApiserver: string;
}

/** The repository root, derived from this module's location (dist/dev/control-plane/). */
export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');

/**
 * Returns the binaries from GPUDIAG_CONTROL_PLANE_DIR when set, else from the version-pinned
 * cache that dev/control-plane/build.sh fills (a cold build takes a few minutes).
 */
export async function ensureControlPlaneBinaries(
  onProgress: (message: string) => void = () => undefined,
  env: NodeJS.ProcessEnv = process.env,
): Promise<ControlPlaneBinaries> {
  let dir = env['GPUDIAG_CONTROL_PLANE_DIR'];
  if (dir === undefined || dir === '') {
    onProgress('locating control-plane binaries (the first run builds them from the Go module proxy: several minutes)');
    const script = path.join(repoRoot, 'dev', 'control-plane', 'build.sh');
    try {
      const { stdout } = await run('bash', [script], { maxBuffer: 1 << 20, timeout: 45 * 60_000 });
      dir = stdout.trim().split('\n').at(-1) ?? '';
    } catch (err) {
      const stderr = (err as { stderr?: string }).stderr ?? '';
      throw new Error(`building the control plane failed:\n${stderr.split('\n').slice(-20).join('\n')}`, { cause: err });
    }
  }
  const binaries = { etcd: path.join(dir, 'etcd'), kubeApiserver: path.join(dir, 'kube-apiserver') };
  for (const bin of Object.values(binaries)) {
    await access(bin, constants.X_OK).catch((err: unknown) => {
      throw new Error(`control-plane binary ${bin} is missing or not executable`, { cause: err });
    });
  }
  return binaries;
}
