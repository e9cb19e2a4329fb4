/**
 * Caller authentication for the agent: a bearer token verified by a TokenAuthenticator (locally
 * against the issuer's keys, agent/auth/token-verifier.ts, or by the Kubernetes TokenReview API
 * here; answers cached briefly in a bounded LRU, keyed by a hash of the token), then an
 * allow-list of usernames. A verifier that does not answer in time is a 503, never a hang.
 * The review is one POST over node:https (lib/kube/raw-request), so the agent never loads
 * client-node; any KubeTarget carries the credentials (the agent's lean ApiServerConnection,
 * or a client-node KubeConfig in tests and the dev environment).
 */
import { createHash } from 'node:crypto';
import { kubeRequest, type KubeTarget } from '../../lib/kube/raw-request.js';
import { LruCache } from '../../lib/lru-cache.js';
import { isRecord } from '../../lib/records.js';
import { clip } from '../../lib/text.js';

/** The outcome of checking a request's credentials. */
export type AuthDecision =
  { allowed: true; username: string } | { allowed: false; status: 401 | 403 | 503; reason: string; username?: string };

/** How long a TokenReview answer is reused (positive and negative alike). */
export const TOKEN_REVIEW_CACHE_MS = 30_000;
/** A TokenReview that has not answered within this is given up (the request answers 503). */
export const TOKEN_REVIEW_TIMEOUT_MS = 10_000;
/** Largest TokenReview answer read (a user with many groups and extras is a few KiB). */
const MAX_REVIEW_BYTES = 256 * 1024;
/** Most cached answers; the least recently used is dropped beyond it. */
const MAX_CACHE_ENTRIES = 1024;
/** Longest bearer token considered (projected tokens are about 1 KiB). */
export const MAX_TOKEN_CHARS = 16 * 1024;
/** Longest verifier reason passed on to the caller (TokenReview's `error` is the API server's text). */
const MAX_REASON_CHARS = 200;

/** How a token was verified: against the issuer's keys in this process, or by the API server. */
export type VerificationMethod = 'local' | 'tokenreview';
/** What a verification ended in, as the agent's metrics count it. */
export type VerificationResult = 'allowed' | 'denied' | 'error';
/** Called once per verification (cache hits are not verifications). */
export type VerificationObserver = (method: VerificationMethod, result: VerificationResult) => void;

/** What a verifier said about one token. */
export interface TokenReviewAnswer {
  authenticated: boolean;
  username?: string;
  /** Why the token was refused. */
  error?: string;
  /** Default `tokenreview`. */
  method?: VerificationMethod;
  /** When the token stops being valid: a cached answer never outlives it. */
  expiresAtMs?: number;
}

/** A verifier could not decide (the API server or its keys are unreachable): the request answers 503, and nothing is cached. */
export class VerificationUnavailableError extends Error {
  constructor(
    readonly method: VerificationMethod,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = 'VerificationUnavailableError';
  }
}

/** Something that turns a token into a username (TokenReview in production); must honour `signal`. */
export type TokenAuthenticator = (token: string, signal: AbortSignal) => Promise<TokenReviewAnswer>;

/** The status of a TokenReview answer, read field by field (the answer is untrusted JSON). */
export function readTokenReviewStatus(review: unknown): TokenReviewAnswer {
  const status = isRecord(review) && isRecord(review['status']) ? review['status'] : {};
  const user = isRecord(status['user']) ? status['user'] : {};
  const username = typeof user['username'] === 'string' ? user['username'] : undefined;
  const error = typeof status['error'] === 'string' && status['error'] !== '' ? status['error'] : undefined;
  return {
    authenticated: status['authenticated'] === true,
    ...(username !== undefined ? { username } : {}),
    ...(error !== undefined ? { error } : {}),
  };
}

/** A TokenAuthenticator backed by the TokenReview API, requiring the given audience. */
export function tokenReviewAuthenticator(target: KubeTarget, audience: string): TokenAuthenticator {
  return async (token, signal) => {
    const review = await kubeRequest<unknown>(target, {
      method: 'POST',
      path: '/apis/authentication.k8s.io/v1/tokenreviews',
      body: { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview', spec: { token, audiences: [audience] } },
      signal,
      timeoutMs: TOKEN_REVIEW_TIMEOUT_MS,
      maxResponseBytes: MAX_REVIEW_BYTES,
    });
    return readTokenReviewStatus(review);
  };
}

/** The method of a failed verification: errors that do not say come from TokenReview (the agent's only verifier once). */
function methodOf(err: unknown): VerificationMethod {
  return err instanceof VerificationUnavailableError ? err.method : 'tokenreview';
}

/** Checks bearer tokens against an authenticator and an allow-list, with a short cache. */
export class CallerAuthorizer {
  private readonly cache: LruCache<string, { authenticated: boolean; username?: string; error?: string }>;

  /** @param observe counts each verification (the agent's gpudiag_agent_token_verifications_total). */
  constructor(
    private readonly authenticate: TokenAuthenticator,
    private readonly allowedCallers: ReadonlySet<string>,
    private readonly now: () => number = Date.now,
    private readonly observe: VerificationObserver = () => undefined,
  ) {
    this.cache = new LruCache(MAX_CACHE_ENTRIES, now);
  }

  /** Decides on an Authorization header value (or its absence). */
  async check(authorization: string | undefined, signal: AbortSignal): Promise<AuthDecision> {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization ?? '');
    if (match?.[1] === undefined || match[1].length > MAX_TOKEN_CHARS)
      return { allowed: false, status: 401, reason: 'a bearer token is required' };
    const token = match[1];
    const key = createHash('sha256').update(token).digest('hex');
    let result = this.cache.get(key);
    if (result === undefined) {
      let answer: TokenReviewAnswer;
      try {
        answer = await this.authenticate(token, signal);
      } catch (err) {
        const method = methodOf(err);
        this.observe(method, 'error');
        const what = method === 'local' ? 'token verification failed' : 'token review failed';
        return { allowed: false, status: 503, reason: `${what}: ${err instanceof Error ? err.message : String(err)}` };
      }
      result = {
        authenticated: answer.authenticated,
        ...(answer.username !== undefined ? { username: answer.username } : {}),
        ...(answer.error !== undefined ? { error: clip(answer.error, MAX_REASON_CHARS) } : {}),
      };
      const allowed = answer.authenticated && answer.username !== undefined && this.allowedCallers.has(answer.username);
      this.observe(answer.method ?? 'tokenreview', allowed ? 'allowed' : 'denied');
      // A token that expires sooner is not reused past its expiry.
      const ttlMs = Math.min(TOKEN_REVIEW_CACHE_MS, (answer.expiresAtMs ?? Infinity) - this.now());
      if (ttlMs > 0) this.cache.set(key, result, ttlMs);
    }
    const { authenticated, username, error } = result;
    if (!authenticated || username === undefined) {
      const reason = error === undefined ? 'the token is not valid for this agent' : `the token is not valid for this agent: ${error}`;
      return { allowed: false, status: 401, reason };
    }
    if (!this.allowedCallers.has(username)) return { allowed: false, status: 403, reason: `${username} may not call this agent`, username };
    return { allowed: true, username };
  }
}
