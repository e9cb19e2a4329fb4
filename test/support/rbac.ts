/**
 * Applies the RBAC manifests from config/rbac/ into a test namespace, exactly as written except
 * for names: namespaced objects move to the test namespace and cluster-scoped ones get the
 * namespace as a suffix, so test files never share (or widen) each other's permissions.
 */
import path from 'node:path';
import type { KubernetesObject } from '@kubernetes/client-node';
import { applyObjects, readManifests } from '../../dev/apply.js';
import { repoRoot } from '../../dev/control-plane/binaries.js';
import { testCluster } from './cluster.js';

interface RbacObject extends KubernetesObject {
  roleRef?: { kind: string; name: string };
  subjects?: { kind: string; name: string; namespace?: string }[];
}

const CLUSTER_SCOPED = new Set(['ClusterRole', 'ClusterRoleBinding']);

/** Applies config/rbac/<file> for `namespace`; returns the applied objects. */
export async function applyRbac(file: string, namespace: string): Promise<KubernetesObject[]> {
  const objects = (await readManifests([path.join(repoRoot, 'config', 'rbac', file)])) as RbacObject[];
  const rewritten = objects.map((o) => {
    const copy = JSON.parse(JSON.stringify(o)) as RbacObject;
    const metadata = copy.metadata ?? {};
    if (CLUSTER_SCOPED.has(copy.kind ?? '')) metadata.name = `${metadata.name ?? ''}-${namespace}`;
    else metadata.namespace = namespace;
    copy.metadata = metadata;
    if (copy.roleRef?.kind === 'ClusterRole') copy.roleRef.name = `${copy.roleRef.name}-${namespace}`;
    for (const s of copy.subjects ?? []) if (s.kind === 'ServiceAccount') s.namespace = namespace;
    return copy;
  });
  await applyObjects(testCluster().admin(), rewritten);
  return rewritten;
}
