/**
 * ajv validators compiled from the CRD schemas (api/generated/schemas.ts). The API server
 * already enforces the schema on writes; the operator re-checks objects it reads so that a
 * stale or hand-edited object yields a clear, field-named error instead of a crash. CEL rules
 * (x-kubernetes-validations) are enforced by the API server only.
 */
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import addFormatsModule from 'ajv-formats';
import { gpuDiagnosticSchema, gpuHealthPolicySchema } from './generated/schemas.js';
import type { GPUDiagnostic, GPUHealthPolicy } from './generated/types.js';

// ajv-formats ships CommonJS with a default export; under NodeNext it arrives wrapped.
const addFormats = addFormatsModule as unknown as (ajv: Ajv) => Ajv;

/** One validation problem, with the JSON path of the offending field (e.g. `spec.timeoutSeconds`). */
export interface FieldError {
  field: string;
  message: string;
}

/** The outcome of validating an object: the typed object, or every problem found. */
export type ValidationResult<T> = { ok: true; value: T } | { ok: false; errors: FieldError[] };

const kubernetesKeywords = [
  'x-kubernetes-validations',
  'x-kubernetes-list-type',
  'x-kubernetes-list-map-keys',
  'x-kubernetes-map-type',
  'x-kubernetes-preserve-unknown-fields',
  'x-kubernetes-int-or-string',
  'x-kubernetes-embedded-resource',
];

function newAjv(): Ajv {
  const ajv = new Ajv({ allErrors: true, strict: true, useDefaults: false });
  for (const keyword of kubernetesKeywords) ajv.addKeyword({ keyword });
  addFormats(ajv);
  return ajv;
}

function toFieldErrors(errors: ErrorObject[] | null | undefined): FieldError[] {
  return (errors ?? []).map((e) => {
    const pointer = e.instancePath.replace(/^\//, '').split('/').filter(Boolean);
    if (e.keyword === 'required' && typeof e.params['missingProperty'] === 'string') pointer.push(e.params['missingProperty']);
    if (e.keyword === 'additionalProperties' && typeof e.params['additionalProperty'] === 'string')
      pointer.push(e.params['additionalProperty']);
    const field =
      pointer
        .map((p) => (/^\d+$/.test(p) ? `[${p}]` : `.${p}`))
        .join('')
        .replace(/^\./, '') || '(root)';
    return { field, message: e.message ?? e.keyword };
  });
}

function validator<T>(schema: Record<string, unknown>): (obj: unknown) => ValidationResult<T> {
  let compiled: ValidateFunction | undefined;
  return (obj) => {
    compiled ??= newAjv().compile(schema);
    return compiled(obj) ? { ok: true, value: obj as T } : { ok: false, errors: toFieldErrors(compiled.errors) };
  };
}

/** Validates a GPUDiagnostic read from the API server against the CRD schema. */
export const validateGPUDiagnostic = validator<GPUDiagnostic>(gpuDiagnosticSchema);
/** Validates a GPUHealthPolicy read from the API server against the CRD schema. */
export const validateGPUHealthPolicy = validator<GPUHealthPolicy>(gpuHealthPolicySchema);

/** Formats validation errors as one line, e.g. `spec.timeoutSeconds: must be <= 3600`. */
export function describeErrors(errors: FieldError[]): string {
  return errors.map((e) => `${e.field}: ${e.message}`).join('; ');
}
