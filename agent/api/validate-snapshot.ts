/**
 * Validates an agent's answer against agent/api/snapshot.schema.json (generated from
 * snapshot-document.ts). The operator treats anything that fails as a per-node Error that
 * names the first problems, never as data.
 */
import { readFileSync } from 'node:fs';
import { Ajv, type ValidateFunction } from 'ajv';
import { SNAPSHOT_API_VERSION, type NodeSnapshotDocument } from './snapshot-document.js';

const schemaUrl = new URL('../../../agent/api/snapshot.schema.json', import.meta.url);
let compiled: ValidateFunction | undefined;

/** The result of validating a snapshot document. */
export type SnapshotValidation = { ok: true; document: NodeSnapshotDocument } | { ok: false; problems: string[] };

/**
 * Most problems reported for one invalid document. Validation stops at the first problem
 * (allErrors off): a hostile document of a million bad items costs one error object, not a million.
 */
const MAX_PROBLEMS = 5;

/** Checks that `body` is a NodeSnapshotDocument of the version this build understands. */
export function validateSnapshotDocument(body: unknown): SnapshotValidation {
  compiled ??= new Ajv({ allErrors: false, strict: false }).compile(JSON.parse(readFileSync(schemaUrl, 'utf8')) as object);
  const apiVersion = (body as { apiVersion?: unknown } | null)?.apiVersion;
  if (apiVersion !== SNAPSHOT_API_VERSION) {
    return {
      ok: false,
      problems: [`apiVersion must be ${SNAPSHOT_API_VERSION}, got ${JSON.stringify(apiVersion)?.slice(0, 60) ?? 'nothing'}`],
    };
  }
  if (compiled(body)) return { ok: true, document: body as NodeSnapshotDocument };
  const problems = (compiled.errors ?? []).slice(0, MAX_PROBLEMS).map((e) => `${e.instancePath || '(root)'} ${e.message ?? e.keyword}`);
  return { ok: false, problems };
}
