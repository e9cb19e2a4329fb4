/**
 * A TokenAuthenticator that verifies bound ServiceAccount tokens in this process: the signature
 * against the issuer's keys (agent/auth/issuer-keys.ts), then the claims
 * (agent/auth/service-account-claims.ts). The API server is asked only for its keys, so a
 * fan-out to thousands of agents costs it nothing per agent. What it cannot see: a token whose
 * pod or ServiceAccount was deleted stays valid here until it expires.
 */
import type { KubeTarget } from '../../lib/kube/raw-request.js';
import { quote } from '../../lib/text.js';
import { decodeJws, verifyJwsSignature } from './jws.js';
import { IssuerKeys } from './issuer-keys.js';
import { checkServiceAccountClaims } from './service-account-claims.js';
import type { TokenAuthenticator, TokenReviewAnswer } from './token-reviewer.js';

/** Clock difference tolerated on a token's exp and nbf (the API server allows a minute too). */
export const CLOCK_SKEW_MS = 60_000;

/** What a local verifier checks tokens against. */
export interface LocalVerifierOptions {
  /** The audience tokens must carry (the agent's --token-audience). */
  audience: string;
  /** Default CLOCK_SKEW_MS. */
  clockSkewMs?: number;
  now?: () => number;
}

/** A TokenAuthenticator that also exposes the key cache it reads (for its refresh metrics, or to share it). */
export interface LocalTokenVerifier extends TokenAuthenticator {
  readonly keys: IssuerKeys;
}

const denied = (reason: string): TokenReviewAnswer => ({ authenticated: false, error: reason, method: 'local' });

/**
 * Verifies tokens locally. `source` is the API server (a new key cache) or an IssuerKeys to
 * share: verifiers for different audiences, or many agents in one process, can share one.
 * A token is refused with a reason; only missing keys throw (VerificationUnavailableError).
 */
export function localTokenVerifier(source: KubeTarget | IssuerKeys, options: LocalVerifierOptions): LocalTokenVerifier {
  const keys = source instanceof IssuerKeys ? source : new IssuerKeys(source, options.now !== undefined ? { now: options.now } : {});
  const now = options.now ?? Date.now;
  const skewMs = options.clockSkewMs ?? CLOCK_SKEW_MS;
  const verifier = async (token: string, signal: AbortSignal): Promise<TokenReviewAnswer> => {
    const decoded = decodeJws(token);
    if (!decoded.ok) return denied(decoded.reason);
    const jws = decoded.value;
    if (jws.kid === undefined) return denied('the token header has no key id (kid)');
    const { issuer, key } = await keys.key(jws.kid, signal);
    if (key === undefined) return denied(`the token is signed with a key the issuer does not have (kid ${quote(jws.kid, 64)})`);
    if (key.alg !== undefined && key.alg !== jws.alg) return denied(`the token says ${jws.alg} but its key is for ${quote(key.alg, 16)}`);
    const signature = verifyJwsSignature(jws, key.key);
    if (!signature.ok) return denied(signature.reason);
    const identity = checkServiceAccountClaims(jws.claims, { issuer, audience: options.audience, nowMs: now(), skewMs });
    if (!identity.ok) return denied(identity.reason);
    return { authenticated: true, username: identity.value.username, method: 'local', expiresAtMs: identity.value.expiresAtMs };
  };
  return Object.assign(verifier, { keys });
}
