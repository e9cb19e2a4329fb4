/**
 * The claims of a bound ServiceAccount token, checked as the API server checks them, less what
 * needs its storage (that the ServiceAccount, pod or secret still exists): issuer, audience,
 * validity window with a small clock skew, and the identity, where `sub` and the `kubernetes.io`
 * claim must name the same ServiceAccount. A pure function of the claims, the policy and the time.
 */
import { isDnsLabel, isDnsSubdomain } from '../../lib/kube/names.js';
import { isRecord } from '../../lib/records.js';
import { quote } from '../../lib/text.js';
import type { Checked } from './jws.js';

/** What the token must satisfy. */
export interface ClaimPolicy {
  /** The issuer's `iss`, as OIDC discovery gives it. */
  issuer: string;
  /** The agent's --token-audience. */
  audience: string;
  nowMs: number;
  /** Clock difference tolerated on exp and nbf. */
  skewMs: number;
}

/** Who the token belongs to, and until when. */
export interface ServiceAccountIdentity {
  /** `system:serviceaccount:<namespace>:<name>`, as TokenReview would name it. */
  username: string;
  expiresAtMs: number;
}

const refuse = (reason: string): { ok: false; reason: string } => ({ ok: false, reason });
const SUBJECT_PREFIX = 'system:serviceaccount:';

/** Seconds since the epoch as a claim holds them (RFC 7519 NumericDate), or undefined. */
function numericDate(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isFinite(value) ? value : undefined;
}

/** `iss`, `aud`, `exp`, `nbf`. */
function checkValidity(claims: Record<string, unknown>, policy: ClaimPolicy): Checked<number> {
  if (claims['iss'] !== policy.issuer) {
    const iss = claims['iss'];
    return refuse(`the token issuer ${typeof iss === 'string' ? quote(iss) : '(none)'} is not the cluster's (${quote(policy.issuer)})`);
  }
  const aud = claims['aud'];
  const audiences = typeof aud === 'string' ? [aud] : Array.isArray(aud) ? aud : [];
  if (!audiences.includes(policy.audience)) return refuse(`the token is not for the audience ${quote(policy.audience)}`);
  const exp = numericDate(claims['exp']);
  if (exp === undefined) return refuse('the token has no expiry (exp)');
  if (exp * 1000 + policy.skewMs <= policy.nowMs) return refuse(`the token expired at ${new Date(exp * 1000).toISOString()}`);
  const nbf = claims['nbf'];
  if (nbf !== undefined) {
    const notBefore = numericDate(nbf);
    if (notBefore === undefined) return refuse('the token has a not-before time (nbf) that is not a number');
    if (notBefore * 1000 - policy.skewMs > policy.nowMs)
      return refuse(`the token is not valid before ${new Date(notBefore * 1000).toISOString()}`);
  }
  return { ok: true, value: exp * 1000 };
}

/** `sub` and the `kubernetes.io` claim: the same ServiceAccount, with well-formed names. */
function checkIdentity(claims: Record<string, unknown>): Checked<string> {
  const sub = claims['sub'];
  if (typeof sub !== 'string' || !sub.startsWith(SUBJECT_PREFIX)) return refuse('the token subject (sub) is not a ServiceAccount');
  const [namespace = '', name = '', ...rest] = sub.slice(SUBJECT_PREFIX.length).split(':');
  if (rest.length > 0 || !isDnsLabel(namespace) || !isDnsSubdomain(name))
    return refuse(`the token subject ${quote(sub)} is not system:serviceaccount:<namespace>:<name>`);
  const bound = claims['kubernetes.io'];
  if (!isRecord(bound)) return refuse('the token has no kubernetes.io claim (it is not a bound ServiceAccount token)');
  const account = bound['serviceaccount'];
  if (bound['namespace'] !== namespace || !isRecord(account) || account['name'] !== name)
    return refuse('the token subject (sub) and its kubernetes.io claim name different ServiceAccounts');
  if (typeof account['uid'] !== 'string') return refuse('the kubernetes.io claim has no ServiceAccount uid');
  const pod = bound['pod'];
  if (pod !== undefined && !(isRecord(pod) && typeof pod['name'] === 'string' && typeof pod['uid'] === 'string'))
    return refuse('the kubernetes.io claim has a pod without a name and uid');
  return { ok: true, value: sub };
}

/** Checks a verified token's claims; the username is `sub`, as TokenReview reports it. */
export function checkServiceAccountClaims(claims: Record<string, unknown>, policy: ClaimPolicy): Checked<ServiceAccountIdentity> {
  const validity = checkValidity(claims, policy);
  if (!validity.ok) return validity;
  const identity = checkIdentity(claims);
  if (!identity.ok) return identity;
  return { ok: true, value: { username: identity.value, expiresAtMs: validity.value } };
}
