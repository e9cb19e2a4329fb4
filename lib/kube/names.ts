/** Kubernetes name and label syntax, shared by every parser of names from outside. */

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const LABEL_NAME = /^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9])?$/;

/** A DNS-1123 label (namespace names): at most 63 lower-case alphanumerics and '-'. */
export function isDnsLabel(value: string): boolean {
  return value.length <= 63 && DNS_LABEL.test(value);
}

/** A DNS-1123 subdomain (node, object and Lease names): at most 253 characters. */
export function isDnsSubdomain(value: string): boolean {
  return value.length <= 253 && DNS_SUBDOMAIN.test(value);
}

/** A label key: an optional DNS-subdomain prefix and '/', then a name of at most 63 characters. */
export function isLabelKey(value: string): boolean {
  const slash = value.indexOf('/');
  const prefix = slash < 0 ? undefined : value.slice(0, slash);
  const name = slash < 0 ? value : value.slice(slash + 1);
  return (prefix === undefined || isDnsSubdomain(prefix)) && LABEL_NAME.test(name);
}

/** A label value: empty, or at most 63 alphanumerics, '-', '_' and '.', alphanumeric at both ends. */
export function isLabelValue(value: string): boolean {
  return value.length <= 63 && LABEL_VALUE.test(value);
}

/**
 * Problems of an equality-based label selector (`k=v`, `k==v`, `k!=v`, `k`, `!k`,
 * comma-separated; empty selects everything): the first bad term, or undefined when valid.
 */
export function equalitySelectorProblem(selector: string, options: { equalityOnly?: boolean } = {}): string | undefined {
  if (selector.trim() === '') return options.equalityOnly === true ? 'empty selector' : undefined;
  for (const raw of selector.split(',')) {
    const term = raw.trim();
    const m = /^(!?)([^=!]+?)(?:(==|=|!=)(.*))?$/.exec(term);
    if (m === null) return term;
    const [, negated, key = '', operator, value = ''] = m;
    if (!isLabelKey(key)) return term;
    if (options.equalityOnly === true && (negated !== '' || operator !== '=')) return term;
    if (operator !== undefined && (negated !== '' || !isLabelValue(value))) return term;
  }
  return undefined;
}
