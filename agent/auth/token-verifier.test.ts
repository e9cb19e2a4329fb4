/**
 * The --token-verification modes against a local HTTPS stand-in for the API server: `auto`
 * falls back to TokenReview when discovery is unavailable (logged once, retried later) and
 * goes back to local verification when it returns; `local` never asks TokenReview; `tokenreview`
 * never fetches keys.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { ApiServerConnection } from '../../lib/kube/connection.js';
import type { Logger } from '../../lib/logger.js';
import { sendJson, startApiServerStandIn, type ApiServerStandIn, type StandInHandler } from '../../test/support/api-server-stand-in.js';
import { boundClaims, jwks, signingKey, signToken } from '../../test/support/service-account-tokens.js';
import { DISCOVERY_PATH, JWKS_PATH } from './issuer-keys.js';
import { FALLBACK_RETRY_MS, issuerKeysOf, tokenVerifier } from './token-verifier.js';

const REVIEWS = '/apis/authentication.k8s.io/v1/tokenreviews';
const OPERATOR = 'system:serviceaccount:gpudiag:gpudiag-operator';
const key = signingKey('RS256');
const signal = new AbortController().signal;

let api: ApiServerStandIn;
let issuer: string;
let now: number;
let logged: string[];

/** A logger that records `level: message`. */
const logger: Logger = {
  error: (m) => logged.push(`error: ${m}`),
  warn: (m) => logged.push(`warn: ${m}`),
  info: (m) => logged.push(`info: ${m}`),
  debug: () => undefined,
  child: () => logger,
};

/** Discovery and JWKS when `discovery` is 'served', else that status there; TokenReview always answers for the operator. */
function apiServer(discovery: { status: number } | 'served'): StandInHandler {
  return (req, res) => {
    if (req.url === REVIEWS) sendJson(res, 201, { status: { authenticated: true, user: { username: OPERATOR } } });
    else if (discovery !== 'served') sendJson(res, discovery.status, { kind: 'Status', message: `HTTP ${discovery.status}` });
    else if (req.url === DISCOVERY_PATH) sendJson(res, 200, { issuer, jwks_uri: `${issuer}openid/v1/jwks` });
    else if (req.url === JWKS_PATH) sendJson(res, 200, jwks(key));
    else sendJson(res, 404, {});
  };
}

const token = (): string => signToken(key, boundClaims({ issuer, issuedAt: Math.floor(now / 1000) }));
const paths = (): string[] => api.requests.map((r) => r.split(' ')[1] ?? '');

beforeAll(async () => {
  api = await startApiServerStandIn();
  issuer = `${api.url}/`;
});
afterAll(async () => {
  await api?.close();
});
beforeEach(() => {
  api.requests.length = 0;
  logged = [];
  now = Date.now();
});

describe('tokenVerifier auto', () => {
  it.each([404, 403])('falls back to TokenReview when discovery answers %i, says so once, and retries discovery later', async (status) => {
    api.handler = apiServer({ status });
    const verify = tokenVerifier(api.connection, { mode: 'auto', audience: 'gpudiag-agent', logger, now: () => now });
    expect(await verify(token(), signal)).toMatchObject({ authenticated: true, username: OPERATOR });
    expect(await verify(token(), signal)).toMatchObject({ authenticated: true });
    expect(paths()).toEqual([DISCOVERY_PATH, REVIEWS, REVIEWS]);
    expect(logged).toEqual(['warn: token verification falls back to TokenReview: the issuer keys are unavailable']);

    // Still unavailable at the retry: TokenReview goes on, without another warning.
    now += FALLBACK_RETRY_MS;
    await verify(token(), signal);
    expect(paths()).toEqual([DISCOVERY_PATH, REVIEWS, REVIEWS, DISCOVERY_PATH, REVIEWS]);
    expect(logged).toHaveLength(1);

    // Discovery is back: local again, and no more TokenReviews.
    api.handler = apiServer('served');
    now += FALLBACK_RETRY_MS;
    api.requests.length = 0;
    expect(await verify(token(), signal)).toMatchObject({ authenticated: true, method: 'local' });
    expect(await verify(token(), signal)).toMatchObject({ authenticated: true, method: 'local' });
    expect(paths()).toEqual([DISCOVERY_PATH, JWKS_PATH]);
    expect(logged[1]).toBe('info: token verification is local again: the issuer keys are available');
    expect(issuerKeysOf(verify)?.refreshes).toEqual({ success: 1, failure: 2 });
  });

  it('falls back when the API server cannot be reached for the keys (TokenReview then fails too: 503)', async () => {
    const unreachable = new ApiServerConnection({ server: 'https://127.0.0.1:1', insecureSkipTlsVerify: true, token: 't' });
    const verify = tokenVerifier(unreachable, { mode: 'auto', audience: 'gpudiag-agent', logger, now: () => now });
    await expect(verify(token(), signal)).rejects.toThrow(`POST ${REVIEWS}: request failed`);
    expect(logged).toEqual(['warn: token verification falls back to TokenReview: the issuer keys are unavailable']);
  });

  it('with the keys available, hostile tokens never reach TokenReview', async () => {
    api.handler = apiServer('served');
    const verify = tokenVerifier(api.connection, { mode: 'auto', audience: 'gpudiag-agent', logger, now: () => now });
    const stranger = signingKey('ES256', 'random');
    const answers = await Promise.all([
      verify(token(), signal),
      verify('garbage', signal),
      verify(signToken(stranger, boundClaims({ issuer })), signal),
      verify(signToken(key, boundClaims({ issuer }), { alg: 'HS256' }), signal),
    ]);
    expect(answers.map((a) => a.authenticated)).toEqual([true, false, false, false]);
    expect(paths()).toEqual([DISCOVERY_PATH, JWKS_PATH]);
  });
});

describe('tokenVerifier local and tokenreview', () => {
  it('local: discovery unavailable is an error (the request answers 503), never a TokenReview', async () => {
    api.handler = apiServer({ status: 404 });
    const verify = tokenVerifier(api.connection, { mode: 'local', audience: 'gpudiag-agent', logger });
    await expect(verify(token(), signal)).rejects.toMatchObject({ name: 'VerificationUnavailableError', method: 'local' });
    expect(paths()).toEqual([DISCOVERY_PATH]);
  });

  it('tokenreview: every token goes to TokenReview and no key is fetched', async () => {
    api.handler = apiServer('served');
    const verify = tokenVerifier(api.connection, { mode: 'tokenreview', audience: 'gpudiag-agent', logger });
    expect(await verify(token(), signal)).toMatchObject({ authenticated: true, username: OPERATOR });
    expect(paths()).toEqual([REVIEWS]);
    expect(issuerKeysOf(verify)).toBeUndefined();
  });
});
