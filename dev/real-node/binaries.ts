/** Locates (building on first use) the node's Kubernetes binaries and its sandbox image. */
import { execFile } from 'node:child_process';
import { access, constants } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { repoRoot } from '../control-plane/binaries.js';

const run = promisify(execFile);

/** The sandbox image dev/real-node/build.sh builds (its tag is the recipe's revision). */
export const PAUSE_IMAGE = 'localhost/gpudiag-pause:1';

/** Absolute paths of what a real node runs, besides the Debian packages. */
export interface RealNodeBinaries {
  kubelet: string;
  kubeControllerManager: string;
  kubeScheduler: string;
  kubeProxy: string;
  /** The OCI archive of PAUSE_IMAGE. */
  pauseArchive: string;
}

/**
 * Runs dev/real-node/build.sh (instant when cached: it builds the binaries at the control
 * plane's Kubernetes version and installs containerd and friends only when missing).
 */
export async function ensureRealNodeBinaries(onProgress: (message: string) => void = () => undefined): Promise<RealNodeBinaries> {
  onProgress('locating the node binaries (the first run builds them from the Go module proxy: several minutes)');
  let dir: string;
  try {
    const { stdout } = await run('bash', [path.join(repoRoot, 'dev', 'real-node', 'build.sh')], {
      maxBuffer: 1 << 20,
      timeout: 60 * 60_000,
    });
    dir = stdout.trim().split('\n').at(-1) ?? '';
  } catch (err) {
    const stderr = (err as { stderr?: string }).stderr ?? '';
    throw new Error(`building the real node failed:\n${stderr.split('\n').slice(-20).join('\n')}`, { cause: err });
  }
  const binaries: RealNodeBinaries = {
    kubelet: path.join(dir, 'kubelet'),
    kubeControllerManager: path.join(dir, 'kube-controller-manager'),
    kubeScheduler: path.join(dir, 'kube-scheduler'),
    kubeProxy: path.join(dir, 'kube-proxy'),
    pauseArchive: path.join(dir, `pause-${PAUSE_IMAGE.split(':')[1] ?? ''}.oci.tar`),
  };
  for (const file of Object.values(binaries)) {
    await access(file, constants.R_OK).catch((err: unknown) => {
      throw new Error(`${file} is missing after dev/real-node/build.sh`, { cause: err });
    });
  }
  return binaries;
}
