/**
 * kubectl's label-selector syntax (`-l pool=training,zone in (a,b),!cordoned`) read into the
 * LabelSelector a GPUDiagnostic's spec.nodeSelector holds. Keys and values are checked as
 * apimachinery checks them, so a bad selector is refused here with a message, not by the API.
 */
import {
  labelKeyProblem,
  labelValueProblem,
  type LabelSelector,
  type LabelSelectorRequirement,
} from '../../operator/fanout/label-selector.js';
import { quote } from '../../lib/text.js';

/** A selector that cannot be read; the message names the bad term. */
export class SelectorSyntaxError extends Error {
  override readonly name = 'SelectorSyntaxError';
}

/** Longest selector read: bounds the work on hostile input (the API server's own limit is larger, but no real selector is). */
const MAX_SELECTOR_CHARS = 4096;

/** Splits on commas outside parentheses (`a in (x,y),b` is two terms). */
function terms(selector: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < selector.length; i += 1) {
    const c = selector[i];
    if (c === '(') depth += 1;
    else if (c === ')') depth -= 1;
    if (depth < 0 || depth > 1) throw new SelectorSyntaxError(`unbalanced parentheses in ${quote(selector)}`);
    if (c === ',' && depth === 0) {
      out.push(selector.slice(start, i).trim());
      start = i + 1;
    }
  }
  if (depth !== 0) throw new SelectorSyntaxError(`unbalanced parentheses in ${quote(selector)}`);
  out.push(selector.slice(start).trim());
  return out;
}

function checkKey(key: string, term: string): string {
  const problem = labelKeyProblem(key);
  if (problem !== undefined) throw new SelectorSyntaxError(`bad label key in ${quote(term)}: ${problem}`);
  return key;
}

function checkValue(value: string, term: string): string {
  const problem = labelValueProblem(value);
  if (problem !== undefined) throw new SelectorSyntaxError(`bad label value in ${quote(term)}: ${problem}`);
  return value;
}

const SET_TERM = /^(\S+)\s+(in|notin)\s*\(([^()]*)\)$/;
const EQUALITY_TERM = /^([^=!\s]+)\s*(==|=|!=)\s*(\S*)$/;
const EXISTS_TERM = /^(!?)\s*([^=!\s()]+)$/;

/** Parses a kubectl label selector; empty text is an error (omit the flag to select every node). */
export function parseLabelSelector(selector: string): LabelSelector {
  if (selector.length > MAX_SELECTOR_CHARS) throw new SelectorSyntaxError(`longer than ${MAX_SELECTOR_CHARS} characters`);
  if (selector.trim() === '') throw new SelectorSyntaxError('empty selector (omit the flag to select every node)');
  const matchLabels: Record<string, string> = {};
  const matchExpressions: LabelSelectorRequirement[] = [];
  for (const term of terms(selector)) {
    if (term === '') throw new SelectorSyntaxError(`empty term in ${quote(selector)}`);
    const set = SET_TERM.exec(term);
    if (set !== null) {
      const [, key = '', op, list = ''] = set;
      const values = list.split(',').map((v) => checkValue(v.trim(), term));
      if (values.some((v) => v === '')) throw new SelectorSyntaxError(`empty value in ${quote(term)}`);
      matchExpressions.push({ key: checkKey(key, term), operator: op === 'in' ? 'In' : 'NotIn', values });
      continue;
    }
    const eq = EQUALITY_TERM.exec(term);
    if (eq !== null) {
      const [, key = '', op, raw = ''] = eq;
      const v = checkValue(raw, term);
      checkKey(key, term);
      if (op === '!=') matchExpressions.push({ key, operator: 'NotIn', values: [v] });
      else if (Object.hasOwn(matchLabels, key) && matchLabels[key] !== v)
        throw new SelectorSyntaxError(`${quote(key)} cannot equal both ${quote(matchLabels[key] ?? '')} and ${quote(v)}`);
      else matchLabels[key] = v;
      continue;
    }
    const exists = EXISTS_TERM.exec(term);
    if (exists === null)
      throw new SelectorSyntaxError(
        `cannot read ${quote(term)} (expected key=value, key!=value, key in (a,b), key notin (a,b), key or !key)`,
      );
    const [, not, key = ''] = exists;
    matchExpressions.push({ key: checkKey(key, term), operator: not === '!' ? 'DoesNotExist' : 'Exists' });
  }
  return {
    ...(Object.keys(matchLabels).length > 0 ? { matchLabels } : {}),
    ...(matchExpressions.length > 0 ? { matchExpressions } : {}),
  };
}
