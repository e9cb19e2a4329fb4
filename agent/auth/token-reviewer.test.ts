/** CallerAuthorizer: decisions, the short answer cache (positive and negative alike, bounded), and failures never cached. */
import { describe, expect, it } from '@jest/globals';
import { CallerAuthorizer, TOKEN_REVIEW_CACHE_MS, type TokenAuthenticator, type TokenReviewAnswer } from './token-reviewer.js';

const OPERATOR = 'system:serviceaccount:gpudiag:gpudiag-operator';

/** An authenticator that answers from a table and counts its calls per token. */
function fakeReview(answers: Record<string, TokenReviewAnswer | Error>): { authenticate: TokenAuthenticator; calls: Map<string, number> } {
  const calls = new Map<string, number>();
  const authenticate: TokenAuthenticator = async (token) => {
    calls.set(token, (calls.get(token) ?? 0) + 1);
    const answer = answers[token] ?? { authenticated: false };
    if (answer instanceof Error) throw answer;
    return answer;
  };
  return { authenticate, calls };
}

const signal = new AbortController().signal;

describe('CallerAuthorizer', () => {
  it.each<[string, string | undefined, Record<string, unknown>]>([
    ['no header', undefined, { allowed: false, status: 401 }],
    ['not a bearer token', 'Basic dXNlcjpwYXNz', { allowed: false, status: 401 }],
    ['an allowed caller', 'Bearer op', { allowed: true, username: OPERATOR }],
    ['another identity', 'Bearer stranger', { allowed: false, status: 403, username: 'system:serviceaccount:x:y' }],
    ['a token TokenReview refuses', 'Bearer bad', { allowed: false, status: 401 }],
    ['TokenReview failing', 'Bearer down', { allowed: false, status: 503, reason: 'token review failed: connect ECONNREFUSED' }],
    ['an oversized token', `Bearer ${'x'.repeat(16 * 1024 + 1)}`, { allowed: false, status: 401 }],
  ])('%s', async (_what, header, expected) => {
    const { authenticate } = fakeReview({
      op: { authenticated: true, username: OPERATOR },
      stranger: { authenticated: true, username: 'system:serviceaccount:x:y' },
      down: new Error('connect ECONNREFUSED'),
    });
    expect(await new CallerAuthorizer(authenticate, new Set([OPERATOR])).check(header, signal)).toMatchObject(expected);
  });

  it('reuses answers, positive and negative, for TOKEN_REVIEW_CACHE_MS; failures are asked again at once', async () => {
    let now = 0;
    const { authenticate, calls } = fakeReview({ op: { authenticated: true, username: OPERATOR }, down: new Error('timeout') });
    const authorizer = new CallerAuthorizer(authenticate, new Set([OPERATOR]), () => now);
    for (const token of ['op', 'bad', 'down', 'op', 'bad', 'down']) await authorizer.check(`Bearer ${token}`, signal);
    expect(Object.fromEntries(calls)).toEqual({ op: 1, bad: 1, down: 2 });
    now = TOKEN_REVIEW_CACHE_MS;
    await authorizer.check('Bearer op', signal);
    await authorizer.check('Bearer bad', signal);
    expect(Object.fromEntries(calls)).toEqual({ op: 2, bad: 2, down: 2 });
  });

  it('keeps at most 1024 answers: a flood of distinct tokens evicts the least recently used', async () => {
    const { authenticate, calls } = fakeReview({ op: { authenticated: true, username: OPERATOR } });
    const authorizer = new CallerAuthorizer(authenticate, new Set([OPERATOR]));
    await authorizer.check('Bearer op', signal);
    for (let i = 0; i < 1024; i++) await authorizer.check(`Bearer flood-${i}`, signal);
    await authorizer.check('Bearer op', signal);
    expect(calls.get('op')).toBe(2);
    // The most recent flood tokens are still cached.
    await authorizer.check('Bearer flood-1023', signal);
    expect(calls.get('flood-1023')).toBe(1);
  });
});
