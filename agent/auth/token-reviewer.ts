/**
 * Caller authentication for the agent: a bearer token verified by the Kubernetes TokenReview
 * API (answers cached briefly in a bounded LRU, keyed by a hash of the token), then an
 * allow-list of usernames. A TokenReview that does not answer in time is a 503, never a hang.
 */
import { createHash } from 'node:crypto';
import { AuthenticationV1Api, type KubeConfig } from '@kubernetes/client-node';
import { apiCall } from '../../lib/kube/call-options.js';
import { LruCache } from '../../lib/lru-cache.js';

/** The outcome of checking a request's credentials. */
export type AuthDecision =
  | { allowed: true; username: string }
  | { allowed: false; status: 401 | 403 | 503; reason: string; username?: string };

/** How long a TokenReview answer is reused (positive and negative alike). */
export const TOKEN_REVIEW_CACHE_MS = 30_000;
/** A TokenReview that has not answered within this is given up (the request answers 503). */
export const TOKEN_REVIEW_TIMEOUT_MS = 10_000;
/** Most cached answers; the least recently used is dropped beyond it. */
const MAX_CACHE_ENTRIES = 1024;
/** Longest bearer token considered (projected tokens are about 1 KiB). */
const MAX_TOKEN_CHARS = 16 * 1024;

/** Something that turns a token into a username (TokenReview in production); must honour `signal`. */
export type TokenAuthenticator = (token: string, signal: AbortSignal) => Promise<{ authenticated: boolean; username?: string; error?: string }>;

/** A TokenAuthenticator backed by the TokenReview API, requiring the given audience. */
export function tokenReviewAuthenticator(kc: KubeConfig, audience: string): TokenAuthenticator {
  const api = kc.makeApiClient(AuthenticationV1Api);
  return async (token, signal) => {
    const review = await api.createTokenReview({ body: { spec: { token, audiences: [audience] } } }, apiCall(signal, TOKEN_REVIEW_TIMEOUT_MS));
    const username = review.status?.user?.username;
    return {
      authenticated: review.status?.authenticated === true,
      ...(username !== undefined ? { username } : {}),
      ...(review.status?.error !== undefined ? { error: review.status.error } : {}),
    };
  };
}

/** Checks bearer tokens against an authenticator and an allow-list, with a short cache. */
export class CallerAuthorizer {
  private readonly cache: LruCache<string, { authenticated: boolean; username?: string }>;

  constructor(
    private readonly authenticate: TokenAuthenticator,
    private readonly allowedCallers: ReadonlySet<string>,
    now: () => number = Date.now,
  ) {
    this.cache = new LruCache(MAX_CACHE_ENTRIES, now);
  }

  /** Decides on an Authorization header value (or its absence). */
  async check(authorization: string | undefined, signal: AbortSignal): Promise<AuthDecision> {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization ?? '');
    if (match?.[1] === undefined || match[1].length > MAX_TOKEN_CHARS) return { allowed: false, status: 401, reason: 'a bearer token is required' };
    const token = match[1];
    const key = createHash('sha256').update(token).digest('hex');
    let result = this.cache.get(key);
    if (result === undefined) {
      try {
        const answer = await this.authenticate(token, signal);
        result = answer.username === undefined ? { authenticated: answer.authenticated } : { authenticated: answer.authenticated, username: answer.username };
      } catch (err) {
        return { allowed: false, status: 503, reason: `token review failed: ${err instanceof Error ? err.message : String(err)}` };
      }
      this.cache.set(key, result, TOKEN_REVIEW_CACHE_MS);
    }
    const { authenticated, username } = result;
    if (!authenticated || username === undefined) return { allowed: false, status: 401, reason: 'the token is not valid for this agent' };
    if (!this.allowedCallers.has(username)) return { allowed: false, status: 403, reason: `${username} may not call this agent`, username };
    return { allowed: true, username };
  }
}
