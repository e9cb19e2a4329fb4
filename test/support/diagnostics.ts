/** GPUDiagnostic helpers for end-to-end tests; every status read goes through the kstatus checker. */
import { CustomObjectsApi } from '@kubernetes/client-node';
import { GPU_DIAGNOSTICS, type GPUDiagnostic } from '../../api/index.js';
import { testCluster } from './cluster.js';
import { assertKstatus } from './kstatus.js';

function diagnostics(): CustomObjectsApi {
  return testCluster().admin().makeApiClient(CustomObjectsApi);
}

/** Creates a GPUDiagnostic as the admin. */
export async function createDiagnostic(namespace: string, name: string, spec: Record<string, unknown>): Promise<void> {
  await diagnostics().createNamespacedCustomObject({
    ...GPU_DIAGNOSTICS,
    namespace,
    body: { apiVersion: 'gpudiag.io/v1alpha1', kind: 'GPUDiagnostic', metadata: { name }, spec },
  });
}

/** Reads a GPUDiagnostic and checks its conditions against kstatus. */
export async function readDiagnostic(namespace: string, name: string): Promise<GPUDiagnostic> {
  const obj = (await diagnostics().getNamespacedCustomObject({ ...GPU_DIAGNOSTICS, namespace, name })) as GPUDiagnostic;
  assertKstatus(obj);
  return obj;
}

/** How to wait for a diagnostic. */
export interface WaitOptions {
  timeoutMs: number;
  pollMs: number;
  /** Collects every status seen (tests that look at intermediate states). */
  seen?: GPUDiagnostic[];
}

/** Polls until Completed or Failed, checking kstatus on every status seen. */
export async function waitFinished(namespace: string, name: string, options: WaitOptions): Promise<GPUDiagnostic> {
  const deadline = Date.now() + options.timeoutMs;
  for (;;) {
    const obj = await readDiagnostic(namespace, name);
    options.seen?.push(obj);
    if (obj.status?.phase === 'Completed' || obj.status?.phase === 'Failed') return obj;
    if (Date.now() > deadline) throw new Error(`${name} not finished after ${options.timeoutMs} ms: ${JSON.stringify(obj.status)}`);
    await new Promise((r) => setTimeout(r, options.pollMs));
  }
}
