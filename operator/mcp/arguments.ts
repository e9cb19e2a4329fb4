/**
 * Argument schemas shared by the tools. Every message names the argument, so a model (or a
 * person) can correct the call; the SDK appends the argument's path to the message.
 */
import { z } from 'zod';
import { isLabelKey, isLabelValue } from '../../lib/kube/names.js';
import { quote } from '../../lib/text.js';

const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const GO_DURATION = /^(\d+(\.\d+)?(h|m|s|ms))+$/;
const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;

/**
 * A tool's arguments: the shape, and nothing else. A misspelled argument (`nodez`) is an error
 * that names it, never silently dropped (which would widen the call to the whole fleet).
 */
export function toolArguments<S extends z.ZodRawShape>(shape: S): z.ZodObject<S, z.core.$strict> {
  const allowed = Object.keys(shape);
  return z.strictObject(shape, {
    error: (issue) =>
      issue.code === 'unrecognized_keys'
        ? `unknown argument${issue.keys.length > 1 ? 's' : ''} ${issue.keys
            .slice(0, 5)
            .map((k) => quote(k, 40))
            .join(', ')}; this tool takes ${allowed.length > 0 ? allowed.join(', ') : 'no arguments'}`
        : undefined,
  });
}

/** The longest XID lookback a GPUDiagnostic accepts (spec.xidLookback). */
export const MAX_LOOKBACK_HOURS = 720;

/** A node name (RFC 1123 subdomain). */
export function nodeName(argument: string): z.ZodString {
  return z
    .string({ error: `${argument} must be a string` })
    .max(253, { error: `${argument} must be at most 253 characters` })
    .regex(DNS_SUBDOMAIN, {
      error: `${argument} must be a node name (RFC 1123: lower-case letters, digits, '-' and '.', starting and ending alphanumeric)`,
    });
}

/** A namespace name (RFC 1123 label). */
export function namespaceName(argument = 'namespace'): z.ZodString {
  return z
    .string({ error: `${argument} must be a string` })
    .max(63, { error: `${argument} must be at most 63 characters` })
    .regex(DNS_LABEL, { error: `${argument} must be a namespace name (RFC 1123 label: lower-case letters, digits and '-')` });
}

/** An object name (RFC 1123 subdomain): GPUDiagnostic or GPUHealthPolicy names. */
export function objectName(argument: string): z.ZodString {
  return z
    .string({ error: `${argument} must be a string` })
    .max(253, { error: `${argument} must be at most 253 characters` })
    .regex(DNS_SUBDOMAIN, { error: `${argument} must be an object name (RFC 1123 subdomain)` });
}

/** A list of node names, at most `max`. */
export function nodeNames(argument = 'nodeNames', max = 100): z.ZodArray<z.ZodString> {
  return z
    .array(nodeName(`${argument}[]`), { error: `${argument} must be an array of node names` })
    .min(1, { error: `${argument} must name at least one node` })
    .max(max, { error: `${argument} may name at most ${max} nodes` });
}

/** Node labels that must all match (keys and values follow Kubernetes label syntax). */
export const matchLabels = z
  .record(
    z.string().max(316, { error: 'nodeSelector keys are at most 316 characters' }),
    z.string({ error: 'nodeSelector values must be strings' }).max(63, { error: 'nodeSelector values are at most 63 characters' }),
    {
      error: 'nodeSelector must be an object of label key to value',
    },
  )
  .superRefine((labels, ctx) => {
    const keys = Object.keys(labels);
    if (keys.length > 32) ctx.addIssue({ code: 'custom', message: 'nodeSelector may have at most 32 labels' });
    for (const key of keys) {
      if (!isLabelKey(key))
        ctx.addIssue({
          code: 'custom',
          path: [key],
          message: 'nodeSelector keys must be label keys (optional DNS prefix/, name of at most 63 alphanumerics, - _ .)',
        });
      if (!isLabelValue(labels[key] ?? ''))
        ctx.addIssue({
          code: 'custom',
          path: [key],
          message: 'nodeSelector values must be label values (at most 63 alphanumerics, - _ ., starting and ending alphanumeric)',
        });
    }
  });

/** Health statuses, best to worst. */
export const HEALTH_STATUSES = ['healthy', 'degraded', 'critical', 'unknown'] as const;
/** Severities, least severe first. */
export const SEVERITIES = ['info', 'warning', 'critical'] as const;
/** The checks a GPUDiagnostic can run. */
export const CHECKS = ['inventory', 'health', 'xid', 'ecc', 'thermal', 'power', 'nvlink', 'pcie', 'processes'] as const;

/** A severity argument. */
export function severity(argument: string): z.ZodEnum<{ info: 'info'; warning: 'warning'; critical: 'critical' }> {
  return z.enum(SEVERITIES, { error: `${argument} must be one of ${SEVERITIES.join(', ')}` });
}

/** `since`: an RFC 3339 time or a Go duration back from now (e.g. 30m, 24h), at most 720h back. */
export const since = z
  .string({ error: 'since must be a string' })
  .max(64, { error: 'since must be at most 64 characters' })
  .refine((s) => GO_DURATION.test(s) || (RFC3339.test(s) && !Number.isNaN(Date.parse(s))), {
    error: 'since must be an RFC 3339 time (2025-01-31T12:00:00Z) or a Go duration (30m, 1h30m, 24h)',
  });

/** How many seconds to wait for a diagnostic to finish before answering with its progress so far. */
export const waitSeconds = z
  .number({ error: 'waitSeconds must be a number' })
  .int({ error: 'waitSeconds must be an integer' })
  .min(1, { error: 'waitSeconds must be at least 1' })
  .max(600, { error: 'waitSeconds must be at most 600' });

/** Parses a Go duration into milliseconds. */
export function goDurationMs(text: string): number {
  let total = 0;
  for (const m of text.matchAll(/(\d+(?:\.\d+)?)(ms|h|m|s)/g)) {
    const n = Number(m[1]);
    const unit = m[2];
    total += unit === 'h' ? n * 3_600_000 : unit === 'm' ? n * 60_000 : unit === 's' ? n * 1000 : n;
  }
  return total;
}

/** Turns `since` into a GPUDiagnostic xidLookback (a Go duration, capped at 720h, at least 1s) and the cut-off time. */
export function lookbackFromSince(value: string, now: Date): { lookback: string; cutoff: Date } {
  const ms = GO_DURATION.test(value) ? goDurationMs(value) : now.getTime() - Date.parse(value);
  const capped = Math.min(Math.max(ms, 1000), MAX_LOOKBACK_HOURS * 3_600_000);
  const seconds = Math.ceil(capped / 1000);
  return { lookback: `${seconds}s`, cutoff: new Date(now.getTime() - capped) };
}

/** True when `a` is at least as severe as `b`. */
export function atLeast(a: (typeof SEVERITIES)[number], b: (typeof SEVERITIES)[number]): boolean {
  return SEVERITIES.indexOf(a) >= SEVERITIES.indexOf(b);
}
