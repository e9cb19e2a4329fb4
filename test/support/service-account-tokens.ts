/**
 * ServiceAccount tokens signed in tests with node:crypto: the claims the API server puts in a
 * bound token (TokenRequest), with keys of either type an issuer signs with, and a JWKS of them.
 */
import { generateKeyPairSync, randomBytes, sign, type KeyObject } from 'node:crypto';

/** A signing key and its public JWK, as an issuer's JWKS lists it. */
export interface TestSigningKey {
  alg: 'RS256' | 'ES256';
  kid: string;
  privateKey: KeyObject;
  publicKey: KeyObject;
  jwk: Record<string, unknown>;
}

/** A fresh key pair: RSA 2048 for RS256, P-256 for ES256. */
export function signingKey(alg: 'RS256' | 'ES256', kid = `${alg.toLowerCase()}-${randomBytes(4).toString('hex')}`): TestSigningKey {
  const pair =
    alg === 'RS256' ? generateKeyPairSync('rsa', { modulusLength: 2048 }) : generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  return { alg, kid, ...pair, jwk: { ...pair.publicKey.export({ format: 'jwk' }), kid, use: 'sig', alg } };
}

/** A JWKS document of `keys`. */
export function jwks(...keys: TestSigningKey[]): { keys: Record<string, unknown>[] } {
  return { keys: keys.map((k) => k.jwk) };
}

/** What a bound token is for. */
export interface BoundTokenFields {
  issuer: string;
  namespace?: string;
  name?: string;
  audience?: string | string[];
  /** Seconds since the epoch; default now. */
  issuedAt?: number;
  lifetimeSeconds?: number;
}

/** The claims of a bound (pod-projected) ServiceAccount token, as the API server writes them. */
export function boundClaims(fields: BoundTokenFields): Record<string, unknown> {
  const namespace = fields.namespace ?? 'gpudiag';
  const name = fields.name ?? 'gpudiag-operator';
  const iat = fields.issuedAt ?? Math.floor(Date.now() / 1000);
  return {
    aud: typeof fields.audience === 'string' ? [fields.audience] : (fields.audience ?? ['gpudiag-agent']),
    exp: iat + (fields.lifetimeSeconds ?? 600),
    iat,
    nbf: iat,
    iss: fields.issuer,
    jti: randomBytes(8).toString('hex'),
    'kubernetes.io': {
      namespace,
      node: { name: 'node-1', uid: '0e1c5f0a-0000-4000-8000-000000000001' },
      pod: { name: `${name}-7d9f8c6b5-x2x4q`, uid: '0e1c5f0a-0000-4000-8000-000000000002' },
      serviceaccount: { name, uid: '0e1c5f0a-0000-4000-8000-000000000003' },
    },
    sub: `system:serviceaccount:${namespace}:${name}`,
  };
}

/** base64url of a JSON value (or of a string as is). */
export function base64url(value: unknown): string {
  return Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url');
}

/** A compact JWS of `claims` signed by `key`, with `header` fields added to (or replacing) alg and kid. */
export function signToken(key: TestSigningKey, claims: Record<string, unknown>, header: Record<string, unknown> = {}): string {
  const input = `${base64url({ alg: key.alg, kid: key.kid, ...header })}.${base64url(claims)}`;
  const signer = key.alg === 'ES256' ? { key: key.privateKey, dsaEncoding: 'ieee-p1363' as const } : key.privateKey;
  return `${input}.${sign('sha256', Buffer.from(input), signer).toString('base64url')}`;
}
