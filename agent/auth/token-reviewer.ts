/**
 * Caller authentication for the agent: a bearer token verified by the Kubernetes TokenReview
 * API (results cached briefly, keyed by a hash of the token), then an allow-list of usernames.
 */
import { createHash } from 'node:crypto';
import { AuthenticationV1Api, type KubeConfig } from '@kubernetes/client-node';

/** The outcome of checking a request's credentials. */
export type AuthDecision =
  | { allowed: true; username: string }
  | { allowed: false; status: 401 | 403 | 503; reason: string; username?: string };

/** How long a TokenReview answer is reused (positive and negative alike). */
export const TOKEN_REVIEW_CACHE_MS = 30_000;
/** Most cached answers; the oldest is dropped beyond it. */
const MAX_CACHE_ENTRIES = 1024;

/** Something that turns a token into a username (TokenReview in production). */
export type TokenAuthenticator = (token: string, signal: AbortSignal) => Promise<{ authenticated: boolean; username?: string; error?: string }>;

/** A TokenAuthenticator backed by the TokenReview API, requiring the given audience. */
export function tokenReviewAuthenticator(kc: KubeConfig, audience: string): TokenAuthenticator {
  const api = kc.makeApiClient(AuthenticationV1Api);
  return async (token) => {
    const review = await api.createTokenReview({ body: { spec: { token, audiences: [audience] } } });
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
  private readonly cache = new Map<string, { expires: number; result: { authenticated: boolean; username?: string } }>();

  constructor(
    private readonly authenticate: TokenAuthenticator,
    private readonly allowedCallers: ReadonlySet<string>,
    private readonly now: () => number = Date.now,
  ) {}

  /** Decides on an Authorization header value (or its absence). */
  async check(authorization: string | undefined, signal: AbortSignal): Promise<AuthDecision> {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization ?? '');
    if (match?.[1] === undefined) return { allowed: false, status: 401, reason: 'a bearer token is required' };
    const token = match[1];
    const key = createHash('sha256').update(token).digest('hex');
    let result = this.cache.get(key);
    if (result === undefined || result.expires <= this.now()) {
      try {
        const answer = await this.authenticate(token, signal);
        result = { expires: this.now() + TOKEN_REVIEW_CACHE_MS, result: answer.username === undefined ? { authenticated: answer.authenticated } : { authenticated: answer.authenticated, username: answer.username } };
      } catch (err) {
        return { allowed: false, status: 503, reason: `token review failed: ${err instanceof Error ? err.message : String(err)}` };
      }
      if (this.cache.size >= MAX_CACHE_ENTRIES) this.cache.delete(this.cache.keys().next().value as string);
      this.cache.set(key, result);
    }
    const { authenticated, username } = result.result;
    if (!authenticated || username === undefined) return { allowed: false, status: 401, reason: 'the token is not valid for this agent' };
    if (!this.allowedCallers.has(username)) return { allowed: false, status: 403, reason: `${username} may not call this agent`, username };
    return { allowed: true, username };
  }
}
