/**
 * The agent's token verifier for each --token-verification mode. `auto` verifies locally and
 * falls back to TokenReview where the issuer's keys cannot be had (discovery answers 404 or 403,
 * or the API server cannot be reached): it says so once in the log, with the reason, and tries
 * discovery again every FALLBACK_RETRY_MS. `local` never asks TokenReview (no keys: 503);
 * `tokenreview` never fetches keys.
 */
import type { TokenVerificationMode } from '../config.js';
import type { KubeTarget } from '../../lib/kube/raw-request.js';
import { errorFields, type Logger } from '../../lib/logger.js';
import { IssuerKeys } from './issuer-keys.js';
import { localTokenVerifier, type LocalTokenVerifier } from './local-verifier.js';
import { tokenReviewAuthenticator, VerificationUnavailableError, type TokenAuthenticator } from './token-reviewer.js';

/** While falling back to TokenReview, discovery is tried again this often. */
export const FALLBACK_RETRY_MS = 5 * 60_000;

/** What the verifier needs besides the API server. */
export interface TokenVerifierOptions {
  mode: TokenVerificationMode;
  audience: string;
  logger: Logger;
  /** A key cache to share (many agents in one process); default a new one for `target`. */
  keys?: IssuerKeys;
  /** Default FALLBACK_RETRY_MS. */
  fallbackRetryMs?: number;
  now?: () => number;
}

/** The verifier for `options.mode`; a `local` or `auto` one exposes its key cache as `keys`. */
export function tokenVerifier(target: KubeTarget, options: TokenVerifierOptions): TokenAuthenticator | LocalTokenVerifier {
  if (options.mode === 'tokenreview') return tokenReviewAuthenticator(target, options.audience);
  const local = localTokenVerifier(options.keys ?? target, {
    audience: options.audience,
    ...(options.now !== undefined ? { now: options.now } : {}),
  });
  if (options.mode === 'local') return local;
  return Object.assign(withTokenReviewFallback(local, tokenReviewAuthenticator(target, options.audience), options), { keys: local.keys });
}

/** The key cache behind a verifier, when it has one (its refreshes are agent metrics). */
export function issuerKeysOf(verifier: TokenAuthenticator): IssuerKeys | undefined {
  return 'keys' in verifier && verifier.keys instanceof IssuerKeys ? verifier.keys : undefined;
}

/** `local`, or `review` while the keys are unavailable (logged once per fallback, retried every fallbackRetryMs). */
function withTokenReviewFallback(local: TokenAuthenticator, review: TokenAuthenticator, options: TokenVerifierOptions): TokenAuthenticator {
  const now = options.now ?? Date.now;
  const retryMs = options.fallbackRetryMs ?? FALLBACK_RETRY_MS;
  let fallbackUntil: number | undefined;
  return async (token, signal) => {
    if (fallbackUntil !== undefined && now() < fallbackUntil) return review(token, signal);
    try {
      const answer = await local(token, signal);
      if (fallbackUntil !== undefined) options.logger.info('token verification is local again: the issuer keys are available');
      fallbackUntil = undefined;
      return answer;
    } catch (err) {
      if (!(err instanceof VerificationUnavailableError) || signal.aborted) throw err;
      if (fallbackUntil === undefined)
        options.logger.warn('token verification falls back to TokenReview: the issuer keys are unavailable', {
          ...errorFields(err),
          retrySeconds: Math.round(retryMs / 1000),
        });
      else options.logger.debug('the issuer keys are still unavailable; TokenReview goes on', errorFields(err));
      fallbackUntil = now() + retryMs;
      return review(token, signal);
    }
  };
}
