/**
 * The local gpudiag environment behind `gpudiag dev up`: a control plane with the CRDs and
 * samples installed. Components start in order and stop in reverse; later parts of the product
 * (the operator, a simulated GPU fleet) join as further components.
 */
import { copyFile, mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { applyObjects, installCrds, readManifests } from './apply.js';
import { repoRoot } from './control-plane/binaries.js';
import { ControlPlane } from './control-plane/control-plane.js';

/** Options for the local environment. */
export interface DevEnvironmentOptions {
  /** State directory (kubeconfig, logs, data); `.gpudiag` in the current directory by default. */
  stateDir: string;
  /** Apply config/samples/ after the CRDs. */
  applySamples: boolean;
  onProgress: (message: string) => void;
  signal: AbortSignal;
}

/** A running local environment. */
export interface DevEnvironment {
  server: string;
  kubeconfigPath: string;
  logDir: string;
  stop(): Promise<void>;
}

/** Starts the control plane, installs CRDs and samples, and writes `<stateDir>/kubeconfig`. */
export async function startDevEnvironment(options: DevEnvironmentOptions): Promise<DevEnvironment> {
  const { stateDir, onProgress, signal } = options;
  const controlPlaneDir = path.join(stateDir, 'control-plane');
  // Each run starts from an empty store: the environment is disposable by design.
  await rm(controlPlaneDir, { recursive: true, force: true });
  await mkdir(controlPlaneDir, { recursive: true });
  const controlPlane = await ControlPlane.start({ dir: controlPlaneDir, keepDir: true, onProgress, signal });
  try {
    const kc = controlPlane.adminKubeConfig();
    onProgress('installing CRDs from crds/');
    await installCrds(kc, path.join(repoRoot, 'crds'));
    if (options.applySamples) {
      onProgress('applying config/samples/');
      await applyObjects(kc, await readManifests([path.join(repoRoot, 'config', 'samples')]));
    }
    const kubeconfigPath = path.join(stateDir, 'kubeconfig');
    await copyFile(controlPlane.endpoint.adminKubeconfigPath, kubeconfigPath);
    return {
      server: controlPlane.endpoint.server,
      kubeconfigPath,
      logDir: path.join(controlPlaneDir, 'logs'),
      stop: () => controlPlane.stop(),
    };
  } catch (err) {
    await controlPlane.stop();
    throw err;
  }
}
