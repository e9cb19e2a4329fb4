/** Applies manifests with server-side apply and waits for CRDs to be served. */
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { ApiextensionsV1Api, type KubeConfig, type KubernetesObject } from '@kubernetes/client-node';
import { discoverResource, kubeRequest, objectPath, type ResourceInfo } from '../lib/kube/raw-request.js';
import { parseAllDocuments } from 'yaml';

/** The field manager gpudiag's own tooling applies with. */
export const FIELD_MANAGER = 'gpudiag-dev';

/** Reads every YAML document from the given files and directories (non-recursive, sorted). */
export async function readManifests(paths: readonly string[]): Promise<KubernetesObject[]> {
  const files: string[] = [];
  for (const p of paths) {
    const entries = await readdir(p).then(
      (names) =>
        names
          .filter((n) => /\.ya?ml$/.test(n))
          .sort()
          .map((n) => path.join(p, n)),
      (err: unknown) => {
        if ((err as NodeJS.ErrnoException).code === 'ENOTDIR') return [p];
        throw new Error(`cannot read manifests from ${p}`, { cause: err });
      },
    );
    files.push(...entries);
  }
  const objects: KubernetesObject[] = [];
  for (const file of files) {
    for (const doc of parseAllDocuments(await readFile(file, 'utf8'))) {
      if (doc.errors.length > 0) throw new Error(`${file}: ${doc.errors[0]?.message ?? 'invalid YAML'}`);
      const obj = doc.toJS({ maxAliasCount: -1 }) as KubernetesObject | null;
      if (obj !== null) objects.push(obj);
    }
  }
  return objects;
}

/** Server-side applies each object (create or update), in order, sending it exactly as written. */
export async function applyObjects(kc: KubeConfig, objects: readonly KubernetesObject[]): Promise<void> {
  const resources = new Map<string, ResourceInfo>();
  for (const obj of objects) {
    const label = `${obj.kind ?? '?'} ${obj.metadata?.namespace ? `${obj.metadata.namespace}/` : ''}${obj.metadata?.name ?? '?'}`;
    try {
      if (!obj.apiVersion || !obj.kind || !obj.metadata?.name) throw new Error('apiVersion, kind and metadata.name are required');
      const key = `${obj.apiVersion}/${obj.kind}`;
      let resource = resources.get(key);
      if (resource === undefined) {
        resource = await discoverResource(kc, obj.apiVersion, obj.kind);
        resources.set(key, resource);
      }
      await kubeRequest(kc, {
        method: 'PATCH',
        path: `${objectPath(obj.apiVersion, resource, obj.metadata.name, obj.metadata.namespace)}?fieldManager=${FIELD_MANAGER}&force=true`,
        body: obj,
        contentType: 'application/apply-patch+yaml',
      });
    } catch (err) {
      throw new Error(`applying ${label} failed: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    }
  }
}

/** Waits until every named CRD reports Established=True, so its resources can be used. */
export async function waitForCrdsEstablished(kc: KubeConfig, names: readonly string[], timeoutMs = 30_000): Promise<void> {
  const api = kc.makeApiClient(ApiextensionsV1Api);
  const deadline = Date.now() + timeoutMs;
  for (const name of names) {
    for (;;) {
      const crd = await api.readCustomResourceDefinition({ name });
      if (crd.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True')) break;
      if (Date.now() > deadline) throw new Error(`CRD ${name} not established after ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

/** Installs the CRDs found in crdDir and waits for them to be established. */
export async function installCrds(kc: KubeConfig, crdDir: string): Promise<string[]> {
  const crds = await readManifests([crdDir]);
  await applyObjects(kc, crds);
  const names = crds.map((c) => c.metadata?.name ?? '');
  await waitForCrdsEstablished(kc, names);
  return names;
}
