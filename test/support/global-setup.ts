/** jest globalSetup: one real control plane (etcd + kube-apiserver) with the CRDs for the whole run. */
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { installCrds } from '../../dev/apply.js';
import { repoRoot } from '../../dev/control-plane/binaries.js';
import { ControlPlane } from '../../dev/control-plane/control-plane.js';
import { ENDPOINT_ENV, type TestEndpoint } from './endpoint.js';

export default async function globalSetup(): Promise<void> {
  const started = Date.now();
  const controlPlane = await ControlPlane.start({ onProgress: (m) => process.stderr.write(`[control-plane] ${m}\n`) });
  try {
    await installCrds(controlPlane.adminKubeConfig(), path.join(repoRoot, 'crds'));
    const endpoint: TestEndpoint = { ...controlPlane.endpoint, pids: controlPlane.pids };
    const file = path.join(controlPlane.endpoint.dir, 'endpoint.json');
    await writeFile(file, JSON.stringify(endpoint));
    // Workers are forked after globalSetup, so they inherit this variable.
    process.env[ENDPOINT_ENV] = file;
    (globalThis as { gpudiagControlPlane?: ControlPlane }).gpudiagControlPlane = controlPlane;
    process.stderr.write(`[control-plane] ready at ${controlPlane.endpoint.server} in ${Date.now() - started} ms\n`);
  } catch (err) {
    await controlPlane.stop();
    throw err;
  }
}
