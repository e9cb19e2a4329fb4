/**
 * config/kube-state-metrics/gpudiag.yaml names both CRDs by their real group, version and kind,
 * and every path it reads exists in their schemas in crds/ (with the enum a StateSet lists), so a
 * renamed status field breaks this test.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { beforeAll, describe, expect, it } from '@jest/globals';
import { parse } from 'yaml';
import { repoRoot } from '../../dev/control-plane/binaries.js';
import { ksmResources, type KsmResource } from '../support/exported-metrics.js';

interface Schema {
  type?: string;
  enum?: string[];
  properties?: Record<string, Schema>;
  items?: Schema;
}
interface Crd {
  spec: { group: string; scope: string; names: { kind: string }; versions: { name: string; schema: { openAPIV3Schema: Schema } }[] };
}

const CRDS = ['gpudiag.io_gpudiagnostics.yaml', 'gpudiag.io_gpuhealthpolicies.yaml'];
let crds: Crd[];
let resources: KsmResource[];
let config: {
  spec: { resources: { groupVersionKind: { group: string; version: string; kind: string }; labelsFromPath: Record<string, string[]> }[] };
};

beforeAll(async () => {
  crds = await Promise.all(CRDS.map(async (f) => parse(await readFile(path.join(repoRoot, 'crds', f), 'utf8')) as Crd));
  resources = await ksmResources();
  config = parse(await readFile(path.join(repoRoot, 'config', 'kube-state-metrics', 'gpudiag.yaml'), 'utf8')) as typeof config;
});

/** The schema at a path; an array's elements are stepped into implicitly, as kube-state-metrics does. */
function at(schema: Schema | undefined, segments: string[]): Schema | undefined {
  let s = schema;
  for (const seg of segments) {
    if (s?.type === 'array') s = s.items;
    s = s?.properties?.[seg];
  }
  return s;
}

describe('kube-state-metrics config', () => {
  it('covers both CRDs by their real group, version and kind, with namespace only where they have one', () => {
    const gvks = config.spec.resources.map((r) => r.groupVersionKind);
    expect(gvks.sort((a, b) => a.kind.localeCompare(b.kind))).toEqual(
      crds
        .map((c) => ({ group: c.spec.group, version: c.spec.versions[0]?.name, kind: c.spec.names.kind }))
        .sort((a, b) => a.kind.localeCompare(b.kind)),
    );
    for (const r of config.spec.resources) {
      const crd = crds.find((c) => c.spec.names.kind === r.groupVersionKind.kind);
      expect({ kind: r.groupVersionKind.kind, namespace: 'namespace' in r.labelsFromPath }).toEqual({
        kind: r.groupVersionKind.kind,
        namespace: crd?.spec.scope === 'Namespaced',
      });
      for (const p of Object.values(r.labelsFromPath)) expect(p[0]).toBe('metadata');
    }
  });

  it('reads only paths the CRD schemas have, and every condition field it labels by', () => {
    let checked = 0;
    for (const r of resources) {
      const schema = crds.find((c) => c.spec.names.kind === r.kind)?.spec.versions[0]?.schema.openAPIV3Schema;
      for (const m of r.metrics) {
        const base = at(schema, m.paths.base);
        expect({ metric: `${r.prefix}_${m.name}`, path: m.paths.base.join('.'), exists: base !== undefined }).toEqual({
          metric: `${r.prefix}_${m.name}`,
          path: m.paths.base.join('.'),
          exists: true,
        });
        for (const rel of m.paths.relative) {
          const found = rel.length === 0 ? base?.items : at(base, rel);
          expect({ metric: m.name, path: [...m.paths.base, ...rel].join('.'), exists: found !== undefined }).toEqual({
            metric: m.name,
            path: [...m.paths.base, ...rel].join('.'),
            exists: true,
          });
          checked += 1;
        }
        checked += 1;
      }
    }
    expect(checked).toBeGreaterThan(20);
  });

  it("exports each CRD's conditions by type, status and reason, and the phase with exactly its enum", async () => {
    for (const r of resources) {
      expect(r.metrics.find((m) => m.name === 'status_condition')).toMatchObject({
        type: 'Info',
        paths: { base: ['status', 'conditions'] },
        labels: ['type', 'status', 'reason'],
      });
    }
    const raw = await readFile(path.join(repoRoot, 'config', 'kube-state-metrics', 'gpudiag.yaml'), 'utf8');
    const phase = at(crds[0]?.spec.versions[0]?.schema.openAPIV3Schema, ['status', 'phase']);
    expect(raw).toContain(`list: [${(phase?.enum ?? []).join(', ')}]`);
  });
});
