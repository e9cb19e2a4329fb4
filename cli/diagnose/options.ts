/**
 * The one parser of `gpudiag diagnose`'s arguments: flags and node names in, a frozen set of
 * options (the GPUDiagnostic spec among them) out, or a DiagnoseUsageError naming the flag.
 */
import { parseArgs } from 'node:util';
import type { GPUDiagnosticSpec } from '../../api/index.js';
import { readableFileFlag } from '../../lib/flags.js';
import { isDnsLabel, isDnsSubdomain } from '../../lib/kube/names.js';
import { quote } from '../../lib/text.js';
import { parseGoDuration } from '../../operator/scoring/policy.js';
import { CHECKS, DIAGNOSE_OUTPUTS } from '../registry.js';
import { parseLabelSelector, SelectorSyntaxError } from './selector.js';

/** Output formats. */
export type DiagnoseOutput = (typeof DIAGNOSE_OUTPUTS)[number];
type Check = (typeof CHECKS)[number];

/** What `gpudiag diagnose` was asked to do. */
export interface DiagnoseOptions {
  readonly help: boolean;
  readonly spec: GPUDiagnosticSpec;
  /** How long to follow the diagnostic; 0 creates it and prints its name. */
  readonly waitMs: number;
  readonly output: DiagnoseOutput;
  readonly kubeconfig?: string;
  readonly context?: string;
  readonly namespace?: string;
}

/** A bad flag or argument; the message names it. */
export class DiagnoseUsageError extends Error {
  override readonly name = 'DiagnoseUsageError';
}

/** Default of --wait: long enough for a 1000-node fleet (the diagnostic's own deadline is 60 s), short enough for a script. */
export const DEFAULT_WAIT = '5m';
/** Default of --ttl: the record stays a day for audit, then the operator deletes it, so scripted runs do not pile up. */
export const DEFAULT_TTL = '24h';
const MAX_WAIT_MS = 24 * 3_600_000;
const MAX_TTL_SECONDS = 31_536_000;
const MAX_LOOKBACK_MS = 720 * 3_600_000;
/** spec.nodeNames holds at most this many (the CRD's maxItems). */
const MAX_NODES = 1000;

const OPTIONS = {
  selector: { type: 'string', short: 'l' },
  checks: { type: 'string' },
  policy: { type: 'string' },
  'xid-lookback': { type: 'string' },
  wait: { type: 'string' },
  ttl: { type: 'string' },
  output: { type: 'string', short: 'o' },
  kubeconfig: { type: 'string' },
  context: { type: 'string' },
  namespace: { type: 'string', short: 'n' },
  help: { type: 'boolean', short: 'h' },
} as const;

function durationMs(flag: string, text: string, maxMs: number): number {
  let ms: number;
  try {
    ms = parseGoDuration(text);
  } catch (err) {
    throw new DiagnoseUsageError(`--${flag} must be a duration such as 30s, 5m or 1h30m, got ${quote(text)}`, { cause: err });
  }
  if (ms > maxMs) throw new DiagnoseUsageError(`--${flag} must be at most ${maxMs / 3_600_000}h, got ${quote(text)}`);
  return ms;
}

function checksFlag(text: string): Check[] {
  const names = text.split(',').map((c) => c.trim());
  const bad = names.find((c) => !(CHECKS as readonly string[]).includes(c));
  if (bad !== undefined) throw new DiagnoseUsageError(`--checks takes a comma-separated list of ${CHECKS.join(', ')}; got ${quote(bad)}`);
  return [...new Set(names as Check[])];
}

function nodeNames(positionals: readonly string[]): string[] {
  for (const name of positionals) {
    if (!isDnsSubdomain(name)) throw new DiagnoseUsageError(`NODE must be a node name (a DNS-1123 subdomain), got ${quote(name)}`);
  }
  const unique = [...new Set(positionals)];
  if (unique.length > MAX_NODES)
    throw new DiagnoseUsageError(`at most ${MAX_NODES} NODE names, got ${unique.length} (use --selector for more)`);
  return unique;
}

function choice<T extends string>(flag: string, text: string | undefined, choices: readonly T[], fallback: T): T {
  if (text === undefined) return fallback;
  const found = choices.find((c) => c === text);
  if (found === undefined) throw new DiagnoseUsageError(`--${flag} must be ${choices.join(', ')}, got ${quote(text)}`);
  return found;
}

/** Builds the spec from the selection flags; only what was asked for, the CRD's defaults do the rest. */
function specOf(values: Partial<Record<keyof typeof OPTIONS, string | boolean>>, nodes: string[]): GPUDiagnosticSpec {
  const str = (k: keyof typeof OPTIONS): string | undefined => (typeof values[k] === 'string' ? values[k] : undefined);
  const selector = str('selector');
  let nodeSelector: GPUDiagnosticSpec['nodeSelector'];
  try {
    nodeSelector = selector === undefined ? undefined : parseLabelSelector(selector);
  } catch (err) {
    if (!(err instanceof SelectorSyntaxError)) throw err;
    throw new DiagnoseUsageError(`--selector: ${err.message}`, { cause: err });
  }
  const checks = str('checks');
  const policy = str('policy');
  if (policy !== undefined && !isDnsSubdomain(policy))
    throw new DiagnoseUsageError(`--policy must name a GPUHealthPolicy (a DNS-1123 subdomain), got ${quote(policy)}`);
  const lookback = str('xid-lookback');
  if (lookback !== undefined) durationMs('xid-lookback', lookback, MAX_LOOKBACK_MS);
  const ttlMs = durationMs('ttl', str('ttl') ?? DEFAULT_TTL, MAX_TTL_SECONDS * 1000);
  return {
    ...(nodes.length > 0 ? { nodeNames: nodes } : {}),
    ...(nodeSelector !== undefined ? { nodeSelector } : {}),
    ...(checks !== undefined ? { checks: checksFlag(checks) } : {}),
    ...(lookback !== undefined ? { xidLookback: lookback } : {}),
    ...(policy !== undefined ? { policyRef: { name: policy } } : {}),
    ttlSecondsAfterFinished: Math.ceil(ttlMs / 1000),
  };
}

function readArgs(args: readonly string[]): ReturnType<typeof parseArgsStrict> {
  try {
    return parseArgsStrict(args);
  } catch (err) {
    // node:util's messages name the flag: "Unknown option '--nodes'", "Option '-o, --output <value>' argument missing".
    const message = err instanceof Error ? err.message : String(err);
    throw new DiagnoseUsageError(message.replace(/^TypeError \[[A-Z_]+\]: /, '').replace(/\n/g, ' '), { cause: err });
  }
}

function parseArgsStrict(args: readonly string[]) {
  return parseArgs({ args: [...args], options: OPTIONS, strict: true, allowPositionals: true });
}

/** Parses the arguments after `gpudiag diagnose`; throws DiagnoseUsageError. */
export function parseDiagnoseArgs(args: readonly string[]): DiagnoseOptions {
  const { values, positionals } = readArgs(args);
  if (values.help === true) return Object.freeze({ help: true, spec: {}, waitMs: 0, output: 'table' });
  const kubeconfig = values.kubeconfig;
  if (kubeconfig !== undefined) readableFileFlag('kubeconfig', kubeconfig, (m) => new DiagnoseUsageError(m));
  if (values.context === '') throw new DiagnoseUsageError('--context must name a kubeconfig context');
  const namespace = values.namespace;
  if (namespace !== undefined && !isDnsLabel(namespace))
    throw new DiagnoseUsageError(`--namespace must be a namespace name (RFC 1123 label), got ${quote(namespace)}`);
  return Object.freeze({
    help: false,
    spec: specOf(values, nodeNames(positionals)),
    waitMs: durationMs('wait', values.wait ?? DEFAULT_WAIT, MAX_WAIT_MS),
    output: choice('output', values.output, DIAGNOSE_OUTPUTS, 'table'),
    ...(kubeconfig !== undefined ? { kubeconfig } : {}),
    ...(values.context !== undefined ? { context: values.context } : {}),
    ...(namespace !== undefined ? { namespace } : {}),
  });
}
