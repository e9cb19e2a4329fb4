/** Reads the CustomResourceDefinitions in crds/ (the API's source of truth). */
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { parse } from 'yaml';

/** The parts of a CRD file that code generation, validation and installation need. */
export interface CrdDocument {
  file: string;
  group: string;
  kind: string;
  plural: string;
  version: string;
  namespaced: boolean;
  schema: OpenApiSchema;
  /** The whole parsed document, as it is applied to the API server. */
  raw: Record<string, unknown>;
}

/** The subset of an OpenAPI v3 schema node that our code walks. */
export interface OpenApiSchema {
  type?: string;
  properties?: Record<string, OpenApiSchema>;
  items?: OpenApiSchema;
  [keyword: string]: unknown;
}

function field(obj: unknown, key: string, file: string): unknown {
  if (obj === null || typeof obj !== 'object' || !(key in obj)) throw new Error(`${file}: missing ${key}`);
  return (obj as Record<string, unknown>)[key];
}

/** Parses one CRD YAML document, failing with the file name when a required part is missing. */
export function parseCrd(text: string, file: string): CrdDocument {
  const raw = parse(text, { maxAliasCount: -1 }) as Record<string, unknown>;
  const spec = field(raw, 'spec', file);
  const names = field(spec, 'names', file);
  const versions = field(spec, 'versions', file);
  if (!Array.isArray(versions) || versions.length !== 1) throw new Error(`${file}: expected exactly one version`);
  const version = versions[0] as unknown;
  const schema = field(field(version, 'schema', file), 'openAPIV3Schema', file) as OpenApiSchema;
  return {
    file,
    group: String(field(spec, 'group', file)),
    kind: String(field(names, 'kind', file)),
    plural: String(field(names, 'plural', file)),
    version: String(field(version, 'name', file)),
    namespaced: field(spec, 'scope', file) === 'Namespaced',
    schema,
    raw,
  };
}

/** Loads every *.yaml CRD in a directory, sorted by file name. */
export async function loadCrds(dir: string): Promise<CrdDocument[]> {
  const names = (await readdir(dir)).filter((n) => n.endsWith('.yaml')).sort();
  return Promise.all(names.map(async (n) => parseCrd(await readFile(path.join(dir, n), 'utf8'), path.join(dir, n))));
}
