/** The API paths of gpudiag's kinds, for plain JSON requests (lib/kube/api-client.ts). */
import { GPU_DIAGNOSTICS, GPU_HEALTH_POLICIES } from './index.js';

/** GPUDiagnostics in every namespace (no namespace), in one namespace, or one of them. */
export function diagnosticsPath(namespace?: string, name?: string): string {
  const group = `/apis/${GPU_DIAGNOSTICS.group}/${GPU_DIAGNOSTICS.version}`;
  if (namespace === undefined) return `${group}/${GPU_DIAGNOSTICS.plural}`;
  const base = `${group}/namespaces/${encodeURIComponent(namespace)}/${GPU_DIAGNOSTICS.plural}`;
  return name === undefined ? base : `${base}/${encodeURIComponent(name)}`;
}

/** GPUHealthPolicies (cluster-scoped), or one of them. */
export function policiesPath(name?: string): string {
  const base = `/apis/${GPU_HEALTH_POLICIES.group}/${GPU_HEALTH_POLICIES.version}/${GPU_HEALTH_POLICIES.plural}`;
  return name === undefined ? base : `${base}/${encodeURIComponent(name)}`;
}
