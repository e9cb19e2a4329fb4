/** Compact JWS decoding and signatures: what a hostile bearer token can try, each refused with its reason. */
import { createHmac, generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from '@jest/globals';
import { base64url, signingKey, signToken } from '../../test/support/service-account-tokens.js';
import { decodeJws, MAX_JWS_CHARS, verifyJwsSignature, type DecodedJws } from './jws.js';

const rsa = signingKey('RS256', 'rsa-1');
const ec = signingKey('ES256', 'ec-1');
const claims = { sub: 'system:serviceaccount:gpudiag:gpudiag-operator', aud: ['gpudiag-agent'] };

function decoded(token: string): DecodedJws {
  const result = decodeJws(token);
  if (!result.ok) throw new Error(result.reason);
  return result.value;
}

describe('decodeJws', () => {
  it('reads the algorithm, key id and claims of a well-formed token', () => {
    expect(decoded(signToken(rsa, claims))).toMatchObject({ alg: 'RS256', kid: 'rsa-1', claims });
    expect(decoded(signToken(ec, claims))).toMatchObject({ alg: 'ES256', kid: 'ec-1', claims });
  });

  const header = base64url({ alg: 'RS256', kid: 'k' });
  const payload = base64url(claims);
  it.each<[string, string, string]>([
    ['alg none', `${base64url({ alg: 'none' })}.${payload}.`, 'unsigned tokens (alg none) are refused'],
    ['alg NONE', `${base64url({ alg: 'NONE' })}.${payload}.c2ln`, 'unsigned tokens (alg none) are refused'],
    ['HS256', `${base64url({ alg: 'HS256' })}.${payload}.c2ln`, 'HMAC-signed tokens (alg "HS256") are refused'],
    ['RS512', `${base64url({ alg: 'RS512' })}.${payload}.c2ln`, 'algorithm "RS512" is not accepted (RS256, ES256)'],
    ['no alg', `${base64url({ kid: 'k' })}.${payload}.c2ln`, 'the token header has no algorithm (alg)'],
    ['a numeric kid', `${base64url({ alg: 'RS256', kid: 7 })}.${payload}.c2ln`, 'key id (kid) that is not a string'],
    ['crit', `${base64url({ alg: 'RS256', crit: ['exp'] })}.${payload}.c2ln`, 'critical extensions (crit)'],
    ['two parts', `${header}.${payload}`, 'the token is not a JWT (three dot-separated parts)'],
    ['four parts', `${header}.${payload}.c2ln.c2ln`, 'the token is not a JWT'],
    ['padding in the header', `${header}=.${payload}.c2ln`, "the token's header is not base64url"],
    ['standard base64 in the payload', `${header}.${payload}+/.c2ln`, "the token's payload is not base64url"],
    ['an impossible base64 length', `${header}.${payload}.c2lua`, "the token's signature is not base64url"],
    ['a header that is not JSON', `${base64url('{"alg":')}.${payload}.c2ln`, "the token's header is not JSON"],
    ['a payload that is a JSON array', `${header}.${base64url([1])}.c2ln`, "the token's payload is not a JSON object"],
    ['a payload that is not JSON', `${header}.${base64url('\u0000garbage')}.c2ln`, "the token's payload is not JSON"],
    ['no signature', `${header}.${payload}.`, 'the token has no signature'],
    ['an oversized token', `${header}.${'a'.repeat(MAX_JWS_CHARS)}.c2ln`, `the token is longer than ${MAX_JWS_CHARS} characters`],
  ])('refuses %s', (_what, token, reason) => {
    expect(decodeJws(token)).toEqual({ ok: false, reason: expect.stringContaining(reason) });
  });
});

describe('verifyJwsSignature', () => {
  it('accepts RS256 and ES256 signatures made with the key', () => {
    expect(verifyJwsSignature(decoded(signToken(rsa, claims)), rsa.publicKey)).toEqual({ ok: true, value: undefined });
    expect(verifyJwsSignature(decoded(signToken(ec, claims)), ec.publicKey)).toEqual({ ok: true, value: undefined });
  });

  it('refuses a tampered payload, another key, and a truncated signature', () => {
    const [h, , s] = signToken(rsa, claims).split('.');
    const tampered = `${h}.${base64url({ ...claims, sub: 'system:serviceaccount:kube-system:admin' })}.${s}`;
    const bad = { ok: false, reason: 'the token signature does not verify' };
    expect(verifyJwsSignature(decoded(tampered), rsa.publicKey)).toEqual(bad);
    expect(verifyJwsSignature(decoded(signToken(rsa, claims)), signingKey('RS256').publicKey)).toEqual(bad);
    expect(verifyJwsSignature(decoded(signToken(ec, claims).slice(0, -4)), ec.publicKey)).toEqual(bad);
    const [eh, ep] = signToken(ec, claims).split('.');
    expect(verifyJwsSignature(decoded(`${eh}.${ep}.${Buffer.alloc(64).toString('base64url')}`), ec.publicKey)).toEqual(bad);
  });

  it('refuses a token whose algorithm does not fit the key type', () => {
    expect(verifyJwsSignature(decoded(signToken(ec, claims, { alg: 'RS256' })), ec.publicKey)).toEqual({
      ok: false,
      reason: 'the token says RS256 but its key is ec',
    });
    expect(verifyJwsSignature(decoded(signToken(rsa, claims, { alg: 'ES256' })), rsa.publicKey)).toMatchObject({
      ok: false,
      reason: expect.stringContaining('the token says ES256 but its key is not a P-256 EC key'),
    });
    const p384 = generateKeyPairSync('ec', { namedCurve: 'secp384r1' }).publicKey;
    expect(verifyJwsSignature(decoded(signToken(ec, claims)), p384)).toMatchObject({ ok: false });
  });

  it('refuses an RSA key shorter than 2048 bits', () => {
    const weak = generateKeyPairSync('rsa', { modulusLength: 1024 });
    const token = signToken({ ...rsa, privateKey: weak.privateKey }, claims);
    expect(verifyJwsSignature(decoded(token), weak.publicKey)).toEqual({
      ok: false,
      reason: "the issuer's RSA key is shorter than 2048 bits",
    });
  });

  it('HS256 "signed" with the public key as the secret is refused before any key is used', () => {
    const secret = rsa.publicKey.export({ type: 'spki', format: 'pem' });
    const input = `${base64url({ alg: 'HS256', kid: 'rsa-1' })}.${base64url(claims)}`;
    const forged = `${input}.${createHmac('sha256', secret).update(input).digest('base64url')}`;
    expect(decodeJws(forged)).toMatchObject({ ok: false, reason: expect.stringContaining('HMAC-signed tokens') });
  });
});
