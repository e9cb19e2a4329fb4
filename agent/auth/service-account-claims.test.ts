/** The claims of a bound ServiceAccount token, table by table: each refusal names what is wrong. */
import { describe, expect, it } from '@jest/globals';
import { boundClaims } from '../../test/support/service-account-tokens.js';
import { checkServiceAccountClaims, type ClaimPolicy } from './service-account-claims.js';

const ISSUER = 'https://kubernetes.default.svc.cluster.local';
const NOW_S = 1_750_000_000;
const policy: ClaimPolicy = { issuer: ISSUER, audience: 'gpudiag-agent', nowMs: NOW_S * 1000, skewMs: 60_000 };
const good = boundClaims({ issuer: ISSUER, issuedAt: NOW_S - 100, lifetimeSeconds: 600 });
const bound = good['kubernetes.io'] as Record<string, unknown>;

describe('checkServiceAccountClaims', () => {
  it('accepts a bound token and names its ServiceAccount as TokenReview would', () => {
    expect(checkServiceAccountClaims(good, policy)).toEqual({
      ok: true,
      value: { username: 'system:serviceaccount:gpudiag:gpudiag-operator', expiresAtMs: (NOW_S + 500) * 1000 },
    });
    expect(checkServiceAccountClaims({ ...good, aud: 'gpudiag-agent' }, policy)).toMatchObject({ ok: true });
    expect(checkServiceAccountClaims({ ...good, aud: ['other', 'gpudiag-agent'] }, policy)).toMatchObject({ ok: true });
  });

  it.each<[string, number, boolean]>([
    ['expired 59 s ago (within the skew)', NOW_S - 59, true],
    ['expired 61 s ago', NOW_S - 61, false],
  ])('exp: %s', (_what, exp, ok) => {
    expect(checkServiceAccountClaims({ ...good, exp }, policy)).toMatchObject({ ok });
  });

  it.each<[string, number, boolean]>([
    ['valid from 59 s from now (within the skew)', NOW_S + 59, true],
    ['valid from 61 s from now', NOW_S + 61, false],
  ])('nbf: %s', (_what, nbf, ok) => {
    expect(checkServiceAccountClaims({ ...good, nbf }, policy)).toMatchObject({ ok });
  });

  it.each<[string, Record<string, unknown>, string]>([
    ['another issuer', { iss: 'https://evil.example' }, 'the token issuer "https://evil.example" is not the cluster\'s'],
    ['no issuer', { iss: undefined }, "the token issuer (none) is not the cluster's"],
    ['another audience', { aud: ['https://kubernetes.default.svc'] }, 'the token is not for the audience "gpudiag-agent"'],
    ['no audience', { aud: undefined }, 'the token is not for the audience'],
    ['an audience object', { aud: { 0: 'gpudiag-agent' } }, 'the token is not for the audience'],
    ['no expiry', { exp: undefined }, 'the token has no expiry (exp)'],
    ['an expiry string', { exp: String(NOW_S + 100) }, 'the token has no expiry (exp)'],
    ['expired', { exp: NOW_S - 3600 }, `the token expired at ${new Date((NOW_S - 3600) * 1000).toISOString()}`],
    ['not yet valid', { nbf: NOW_S + 3600 }, `the token is not valid before ${new Date((NOW_S + 3600) * 1000).toISOString()}`],
    ['an nbf string', { nbf: 'soon' }, 'the token has a not-before time (nbf) that is not a number'],
    ['a user subject', { sub: 'alice' }, 'the token subject (sub) is not a ServiceAccount'],
    ['a subject with extra parts', { sub: 'system:serviceaccount:a:b:c' }, 'is not system:serviceaccount:<namespace>:<name>'],
    ['a subject with a bad namespace', { sub: 'system:serviceaccount:Bad_NS:b' }, 'is not system:serviceaccount:<namespace>:<name>'],
    ['no kubernetes.io claim', { 'kubernetes.io': undefined }, 'the token has no kubernetes.io claim'],
    [
      'a kubernetes.io claim of another namespace',
      { 'kubernetes.io': { ...bound, namespace: 'kube-system' } },
      'the token subject (sub) and its kubernetes.io claim name different ServiceAccounts',
    ],
    [
      'a kubernetes.io claim of another ServiceAccount',
      { 'kubernetes.io': { ...bound, serviceaccount: { name: 'other', uid: 'u' } } },
      'name different ServiceAccounts',
    ],
    [
      'a ServiceAccount without uid',
      { 'kubernetes.io': { ...bound, serviceaccount: { name: 'gpudiag-operator' } } },
      'the kubernetes.io claim has no ServiceAccount uid',
    ],
    [
      'a pod without uid',
      { 'kubernetes.io': { ...bound, pod: { name: 'p' } } },
      'the kubernetes.io claim has a pod without a name and uid',
    ],
  ])('refuses %s', (_what, change, reason) => {
    expect(checkServiceAccountClaims({ ...good, ...change }, policy)).toEqual({ ok: false, reason: expect.stringContaining(reason) });
  });
});
