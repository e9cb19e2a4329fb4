/**
 * Kubernetes label selectors (matchLabels + matchExpressions) evaluated exactly as
 * apimachinery does, with the same validation of keys, values and operators.
 */

/** One label requirement of a selector's matchExpressions. */
export interface LabelSelectorRequirement {
  key: string;
  operator: 'In' | 'NotIn' | 'Exists' | 'DoesNotExist';
  values?: string[];
}

/** A Kubernetes label selector (the shape of GPUDiagnosticSpec.nodeSelector). */
export interface LabelSelector {
  matchLabels?: Record<string, string>;
  matchExpressions?: LabelSelectorRequirement[];
}

/** A selector that failed validation; `field` is the path of the offending part. */
export class InvalidSelectorError extends Error {
  constructor(
    readonly field: string,
    detail: string,
  ) {
    super(`${field}: ${detail}`);
    this.name = 'InvalidSelectorError';
  }
}

/** A validated selector, ready to test label sets. */
export type CompiledSelector = (labels: Readonly<Record<string, string>> | undefined) => boolean;

const NAME_PART = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const MAX_NAME_PART = 63;
const MAX_PREFIX = 253;
const OPERATORS = new Set(['In', 'NotIn', 'Exists', 'DoesNotExist']);

/** Quotes untrusted text for an error message: JSON-escaped and bounded. */
function quote(text: unknown): string {
  const s = typeof text === 'string' ? text : String(text);
  return JSON.stringify(s.length > 64 ? `${s.slice(0, 64)}...` : s);
}

/** Why `key` is not a valid label key (a qualified name), or undefined when it is. */
export function labelKeyProblem(key: unknown): string | undefined {
  if (typeof key !== 'string') return 'must be a string';
  const slash = key.indexOf('/');
  const prefix = slash >= 0 ? key.slice(0, slash) : undefined;
  const name = slash >= 0 ? key.slice(slash + 1) : key;
  if (prefix !== undefined) {
    if (prefix.length === 0) return `${quote(key)} has an empty prefix before "/"`;
    if (prefix.length > MAX_PREFIX) return `${quote(key)} has a prefix longer than ${MAX_PREFIX} characters`;
    if (!DNS1123_SUBDOMAIN.test(prefix))
      return `${quote(key)} has a prefix that is not a DNS-1123 subdomain (lower-case alphanumerics, "-" and ".")`;
  }
  if (name.length === 0) return `${quote(key)} has an empty name part`;
  if (name.length > MAX_NAME_PART) return `${quote(key)} has a name part longer than ${MAX_NAME_PART} characters`;
  if (!NAME_PART.test(name))
    return (
      `${quote(key)} is not a qualified name (alphanumerics, "-", "_" and ".", starting and ending with an alphanumeric, optional ` +
      `DNS prefix and "/")`
    );
  return undefined;
}

/** Why `value` is not a valid label value, or undefined when it is (the empty string is valid). */
export function labelValueProblem(value: unknown): string | undefined {
  if (typeof value !== 'string') return 'must be a string';
  if (value.length === 0) return undefined;
  if (value.length > MAX_NAME_PART) return `${quote(value)} is longer than ${MAX_NAME_PART} characters`;
  if (!NAME_PART.test(value))
    return `${quote(value)} is not a valid label value (alphanumerics, "-", "_" and ".", starting and ending with an alphanumeric)`;
  return undefined;
}

type Requirement = (labels: Readonly<Record<string, string>>) => boolean;

function has(labels: Readonly<Record<string, string>>, key: string): boolean {
  return Object.prototype.hasOwnProperty.call(labels, key);
}

function compileExpression(expr: LabelSelectorRequirement, field: string): Requirement {
  if (expr === null || typeof expr !== 'object') throw new InvalidSelectorError(field, 'must be an object with key and operator');
  const keyProblem = labelKeyProblem(expr.key);
  if (keyProblem !== undefined) throw new InvalidSelectorError(`${field}.key`, keyProblem);
  if (!OPERATORS.has(expr.operator))
    throw new InvalidSelectorError(`${field}.operator`, `${quote(expr.operator)} is not one of In, NotIn, Exists, DoesNotExist`);
  const values = expr.values ?? [];
  if (!Array.isArray(values)) throw new InvalidSelectorError(`${field}.values`, 'must be a list of strings');
  const key = expr.key;
  switch (expr.operator) {
    case 'In':
    case 'NotIn': {
      if (values.length === 0) throw new InvalidSelectorError(`${field}.values`, `must be non-empty for operator ${expr.operator}`);
      values.forEach((v, i) => {
        const problem = labelValueProblem(v);
        if (problem !== undefined) throw new InvalidSelectorError(`${field}.values[${i}]`, problem);
      });
      const set = new Set(values);
      return expr.operator === 'In'
        ? (labels) => has(labels, key) && set.has(labels[key] as string)
        : (labels) => !has(labels, key) || !set.has(labels[key] as string);
    }
    case 'Exists':
    case 'DoesNotExist':
      if (values.length > 0) throw new InvalidSelectorError(`${field}.values`, `must be empty for operator ${expr.operator}`);
      return expr.operator === 'Exists' ? (labels) => has(labels, key) : (labels) => !has(labels, key);
  }
}

/**
 * Validates `selector` and returns a matcher. An empty or absent selector matches every label
 * set (the CRDs' documented meaning). Throws InvalidSelectorError naming the field, under `field`.
 */
export function compileSelector(selector: LabelSelector | undefined, field = 'nodeSelector'): CompiledSelector {
  if (selector === undefined || selector === null) return () => true;
  if (typeof selector !== 'object') throw new InvalidSelectorError(field, 'must be an object');
  const requirements: Requirement[] = [];
  const matchLabels = selector.matchLabels ?? {};
  if (typeof matchLabels !== 'object' || Array.isArray(matchLabels))
    throw new InvalidSelectorError(`${field}.matchLabels`, 'must be a map of label keys to values');
  for (const [key, value] of Object.entries(matchLabels)) {
    const keyProblem = labelKeyProblem(key);
    if (keyProblem !== undefined) throw new InvalidSelectorError(`${field}.matchLabels`, `key ${keyProblem}`);
    const valueProblem = labelValueProblem(value);
    if (valueProblem !== undefined) throw new InvalidSelectorError(`${field}.matchLabels[${quote(key)}]`, valueProblem);
    requirements.push((labels) => has(labels, key) && labels[key] === value);
  }
  const expressions = selector.matchExpressions ?? [];
  if (!Array.isArray(expressions)) throw new InvalidSelectorError(`${field}.matchExpressions`, 'must be a list');
  expressions.forEach((expr, i) => requirements.push(compileExpression(expr, `${field}.matchExpressions[${i}]`)));
  return (labels) => {
    const set = labels ?? {};
    return requirements.every((r) => r(set));
  };
}

/** True when `labels` satisfies `selector` (matchLabels and every matchExpression); empty selector matches all. */
export function matchesSelector(
  labels: Readonly<Record<string, string>> | undefined,
  selector: LabelSelector | undefined,
  field = 'nodeSelector',
): boolean {
  return compileSelector(selector, field)(labels);
}
