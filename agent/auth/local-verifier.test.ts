/**
 * Local token verification against a local HTTPS stand-in for the API server's OIDC discovery
 * and JWKS: tokens of both key types, the issuer check, the rate-limited refresh on an unknown
 * key id, and the decisions CallerAuthorizer makes on the verifier's answers.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { sendJson, startApiServerStandIn, type ApiServerStandIn } from '../../test/support/api-server-stand-in.js';
import { boundClaims, jwks, signingKey, signToken, type TestSigningKey } from '../../test/support/service-account-tokens.js';
import { DISCOVERY_PATH, IssuerKeys, JWKS_PATH, KEY_REFRESH_MIN_INTERVAL_MS, KEYS_MAX_AGE_MS } from './issuer-keys.js';
import { localTokenVerifier } from './local-verifier.js';
import { CallerAuthorizer, TOKEN_REVIEW_CACHE_MS, VerificationUnavailableError } from './token-reviewer.js';

const AUDIENCE = 'gpudiag-agent';
const OPERATOR = 'system:serviceaccount:gpudiag:gpudiag-operator';
const DISCOVERY = `GET ${DISCOVERY_PATH}`;
const JWKS = `GET ${JWKS_PATH}`;
const rsa = signingKey('RS256');
const ec = signingKey('ES256');
const signal = new AbortController().signal;

let api: ApiServerStandIn;
let issuer: string;
/** What the stand-in's JWKS holds now. */
let published: TestSigningKey[];
let now: number;

beforeAll(async () => {
  api = await startApiServerStandIn();
  issuer = `${api.url}/`;
});
afterAll(async () => {
  await api?.close();
});
beforeEach(() => {
  api.requests.length = 0;
  published = [rsa, ec];
  now = Date.now();
  api.handler = (req, res) => {
    if (req.url === DISCOVERY_PATH)
      // jwks_uri names a host the agent must not use: keys come from the API server's own path.
      sendJson(res, 200, {
        issuer,
        jwks_uri: 'https://keys.example.invalid/openid/v1/jwks',
        id_token_signing_alg_values_supported: ['RS256'],
      });
    // As the API server does: the JWKS only as its own media type.
    else if (req.url === JWKS_PATH && req.headers.accept !== 'application/jwk-set+json') sendJson(res, 406, { message: 'Not Acceptable' });
    else if (req.url === JWKS_PATH) sendJson(res, 200, jwks(...published));
    else sendJson(res, 404, { kind: 'Status', reason: 'NotFound', message: 'not found' });
  };
});

/** A bound token for the operator, issued now (the test clock), signed by `key`. */
function token(key: TestSigningKey, fields: Parameters<typeof boundClaims>[0] = { issuer }): string {
  return signToken(key, boundClaims({ issuedAt: Math.floor(now / 1000), ...fields }));
}

function verifier(): ReturnType<typeof localTokenVerifier> {
  return localTokenVerifier(api.connection, { audience: AUDIENCE, now: () => now });
}

describe('localTokenVerifier', () => {
  it('accepts RS256 and ES256 tokens of the issuer, fetching discovery and the JWKS once, from the API server itself', async () => {
    const verify = verifier();
    const expiresAtMs = (Math.floor(now / 1000) + 600) * 1000;
    expect(await verify(token(rsa), signal)).toEqual({ authenticated: true, username: OPERATOR, method: 'local', expiresAtMs });
    expect(await verify(token(ec), signal)).toEqual({ authenticated: true, username: OPERATOR, method: 'local', expiresAtMs });
    await Promise.all(Array.from({ length: 20 }, () => verify(token(rsa), signal)));
    expect(api.requests).toEqual([DISCOVERY, JWKS]);
    expect(verify.keys.refreshes).toEqual({ success: 1, failure: 0 });
  });

  it.each<[string, () => string, string]>([
    ['another audience', () => token(rsa, { issuer, audience: 'https://kubernetes.default.svc' }), 'the token is not for the audience'],
    ['another issuer', () => token(rsa, { issuer: 'https://elsewhere.example/' }), 'the token issuer "https://elsewhere.example/"'],
    ['an expired token', () => token(rsa, { issuer, issuedAt: Math.floor(now / 1000) - 3600 }), 'the token expired at'],
    ['a token not yet valid', () => token(rsa, { issuer, issuedAt: Math.floor(now / 1000) + 3600 }), 'the token is not valid before'],
    ['a token without kid', () => signToken(rsa, boundClaims({ issuer }), { kid: undefined }), 'the token header has no key id (kid)'],
    ['alg none', () => token(rsa).replace(/^[^.]+/, Buffer.from('{"alg":"none","kid":"x"}').toString('base64url')), 'alg none'],
    ['a key used with another algorithm', () => signToken(ec, boundClaims({ issuer }), { kid: rsa.kid }), 'the token says ES256'],
    ['garbage', () => 'not-a-token', 'the token is not a JWT'],
  ])('refuses %s with the reason', async (_what, make, reason) => {
    expect(await verifier()(make(), signal)).toEqual({ authenticated: false, method: 'local', error: expect.stringContaining(reason) });
  });

  it('refuses a tampered payload', async () => {
    const [h, , s] = token(rsa).split('.');
    const claims = boundClaims({ issuer, name: 'admin', namespace: 'kube-system', issuedAt: Math.floor(now / 1000) });
    const tampered = `${h}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.${s}`;
    expect(await verifier()(tampered, signal)).toMatchObject({ authenticated: false, error: 'the token signature does not verify' });
  });

  it('an unknown key id refreshes the keys once and accepts the token when the issuer has the new key', async () => {
    const verify = verifier();
    await verify(token(rsa), signal);
    const rotated = signingKey('RS256');
    published = [rsa, ec, rotated];
    now += KEY_REFRESH_MIN_INTERVAL_MS;
    expect(await verify(token(rotated), signal)).toMatchObject({ authenticated: true, username: OPERATOR });
    expect(api.requests).toEqual([DISCOVERY, JWKS, DISCOVERY, JWKS]);
  });

  it('a key id the issuer does not have is refused, and more unknown key ids within the rate limit fetch nothing', async () => {
    const verify = verifier();
    await verify(token(rsa), signal);
    now += KEY_REFRESH_MIN_INTERVAL_MS;
    const stranger = signingKey('RS256', 'made-up');
    expect(await verify(token(stranger), signal)).toEqual({
      authenticated: false,
      method: 'local',
      error: 'the token is signed with a key the issuer does not have (kid "made-up")',
    });
    expect(api.requests).toEqual([DISCOVERY, JWKS, DISCOVERY, JWKS]);
    // A flood of random key ids, concurrent and then one by one, within the window: no fetch at all.
    await Promise.all(Array.from({ length: 50 }, (_, i) => verify(token(signingKey('ES256', `random-${i}`)), signal)));
    now += KEY_REFRESH_MIN_INTERVAL_MS - 1;
    expect(await verify(token(stranger), signal)).toMatchObject({ authenticated: false });
    expect(api.requests).toHaveLength(4);
    // Once the window has passed, one more refresh.
    now += 1;
    await verify(token(stranger), signal);
    expect(api.requests).toHaveLength(6);
    expect(await verify(token(rsa), signal)).toMatchObject({ authenticated: true });
  });

  it('concurrent unknown key ids share one refresh', async () => {
    const verify = verifier();
    await verify(token(rsa), signal);
    now += KEY_REFRESH_MIN_INTERVAL_MS;
    await Promise.all(Array.from({ length: 10 }, (_, i) => verify(token(signingKey('ES256', `c-${i}`)), signal)));
    expect(api.requests).toEqual([DISCOVERY, JWKS, DISCOVERY, JWKS]);
  });

  it('discovery failing throws VerificationUnavailableError, and is not asked again within the rate limit', async () => {
    api.handler = (_req, res) => sendJson(res, 404, { kind: 'Status', reason: 'NotFound', message: 'the server could not find it' });
    const verify = verifier();
    await expect(verify(token(rsa), signal)).rejects.toMatchObject({
      name: 'VerificationUnavailableError',
      method: 'local',
      message: 'the service-account issuer keys are unavailable: the server could not find it',
    });
    await expect(verify(token(rsa), signal)).rejects.toBeInstanceOf(VerificationUnavailableError);
    expect(api.requests).toEqual([DISCOVERY]);
    expect(verify.keys.refreshes).toEqual({ success: 0, failure: 1 });
  });

  it('refuses a JWKS without usable keys, and a discovery document without issuer, as unavailable keys', async () => {
    published = [];
    await expect(verifier()(token(rsa), signal)).rejects.toThrow('holds no usable signing key');
    api.handler = (_req, res) => sendJson(res, 200, { jwks_uri: 'x' });
    await expect(verifier()(token(rsa), signal)).rejects.toThrow(`${DISCOVERY_PATH} names no issuer`);
  });

  it('keys older than KEYS_MAX_AGE_MS are fetched again; if that fails the old keys still verify', async () => {
    const verify = verifier();
    await verify(token(rsa), signal);
    now += KEYS_MAX_AGE_MS;
    api.handler = (_req, res) => sendJson(res, 503, { kind: 'Status', reason: 'ServiceUnavailable', message: 'etcd is down' });
    expect(await verify(token(rsa), signal)).toMatchObject({ authenticated: true });
    expect(api.requests).toEqual([DISCOVERY, JWKS, DISCOVERY]);
    expect(verify.keys.refreshes).toEqual({ success: 1, failure: 1 });
  });

  it('one IssuerKeys serves verifiers of different audiences', async () => {
    const keys = new IssuerKeys(api.connection);
    const forAgents = localTokenVerifier(keys, { audience: AUDIENCE });
    const forOthers = localTokenVerifier(keys, { audience: 'other' });
    expect(await forAgents(token(rsa), signal)).toMatchObject({ authenticated: true });
    expect(await forOthers(token(rsa, { issuer, audience: 'other' }), signal)).toMatchObject({ authenticated: true });
    expect(api.requests).toEqual([DISCOVERY, JWKS]);
  });
});

describe('CallerAuthorizer in front of the local verifier', () => {
  it('allows the operator, answers 403 to another ServiceAccount and 401 with the reason to a bad token; counts each', async () => {
    const counted: string[] = [];
    const authorizer = new CallerAuthorizer(
      verifier(),
      new Set([OPERATOR]),
      () => now,
      (m, r) => counted.push(`${m}:${r}`),
    );
    expect(await authorizer.check(`Bearer ${token(rsa)}`, signal)).toEqual({ allowed: true, username: OPERATOR });
    expect(await authorizer.check(`Bearer ${token(ec, { issuer, name: 'someone-else' })}`, signal)).toEqual({
      allowed: false,
      status: 403,
      reason: 'system:serviceaccount:gpudiag:someone-else may not call this agent',
      username: 'system:serviceaccount:gpudiag:someone-else',
    });
    expect(await authorizer.check(`Bearer ${token(rsa, { issuer, audience: 'x' })}`, signal)).toEqual({
      allowed: false,
      status: 401,
      reason: 'the token is not valid for this agent: the token is not for the audience "gpudiag-agent"',
    });
    expect(counted).toEqual(['local:allowed', 'local:denied', 'local:denied']);
  });

  it('answers 503 when the keys are unavailable, and counts a local error', async () => {
    api.handler = (_req, res) => sendJson(res, 403, { kind: 'Status', reason: 'Forbidden', message: 'forbidden' });
    const counted: string[] = [];
    const authorizer = new CallerAuthorizer(
      verifier(),
      new Set([OPERATOR]),
      () => now,
      (m, r) => counted.push(`${m}:${r}`),
    );
    expect(await authorizer.check(`Bearer ${token(rsa)}`, signal)).toEqual({
      allowed: false,
      status: 503,
      reason: 'token verification failed: the service-account issuer keys are unavailable: forbidden',
    });
    expect(counted).toEqual(['local:error']);
  });

  it('a cached answer never outlives the token', async () => {
    const counted: string[] = [];
    const authorizer = new CallerAuthorizer(
      verifier(),
      new Set([OPERATOR]),
      () => now,
      (_method, r) => counted.push(r),
    );
    // Expires 10 s from now: reused for 10 s, not for the whole TOKEN_REVIEW_CACHE_MS.
    const shortLived = token(rsa, { issuer, issuedAt: Math.floor(now / 1000) - 590 });
    const expiry = (Math.floor(now / 1000) + 10) * 1000;
    expect(expiry - now).toBeLessThan(TOKEN_REVIEW_CACHE_MS);
    await authorizer.check(`Bearer ${shortLived}`, signal);
    now = expiry - 1;
    await authorizer.check(`Bearer ${shortLived}`, signal);
    expect(counted).toEqual(['allowed']);
    now = expiry;
    await authorizer.check(`Bearer ${shortLived}`, signal);
    expect(counted).toEqual(['allowed', 'allowed']);
  });
});
