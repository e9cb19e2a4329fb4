/**
 * The cluster's service-account issuer and its public keys, found by OIDC discovery on the API
 * server and cached. One instance can serve every verifier in a process (the simulated fleet runs
 * thousands of agents against one). The keys are always fetched from the API server's own JWKS
 * path, never from the discovery document's `jwks_uri` host, which may be an external address the
 * agent cannot reach or should not trust. An unknown key id refreshes the keys, at most once per
 * KEY_REFRESH_MIN_INTERVAL_MS, so tokens with made-up key ids cannot make the agent hammer the API
 * server; concurrent callers share one fetch.
 */
import { createPublicKey, type JsonWebKey, type KeyObject } from 'node:crypto';
import { kubeRequest, type KubeTarget } from '../../lib/kube/raw-request.js';
import { isRecord } from '../../lib/records.js';
import { VerificationUnavailableError } from './token-reviewer.js';

/** OIDC discovery on the API server (readable by every ServiceAccount through the default RBAC). */
export const DISCOVERY_PATH = '/.well-known/openid-configuration';
/** Where the API server serves the issuer's keys. */
export const JWKS_PATH = '/openid/v1/jwks';
/** Least time between two fetches of the keys (an unknown key id, or a retry after a failure). */
export const KEY_REFRESH_MIN_INTERVAL_MS = 30_000;
/** Keys older than this are fetched again before use, so a key the issuer dropped stops verifying. */
export const KEYS_MAX_AGE_MS = 60 * 60_000;
/** Deadline of one discovery or JWKS request. */
const FETCH_TIMEOUT_MS = 10_000;
const MAX_DISCOVERY_BYTES = 64 * 1024;
const MAX_JWKS_BYTES = 256 * 1024;
/** Most keys read from a JWKS (an issuer holds a few during a rotation). */
const MAX_KEYS = 64;

/** One public key of the issuer. */
export interface IssuerKey {
  key: KeyObject;
  /** The JWK's `alg`, when it names one: a token signed with another algorithm is refused. */
  alg?: string;
}

/** The issuer and its keys by key id, as fetched together. */
export interface KeySet {
  issuer: string;
  keys: ReadonlyMap<string, IssuerKey>;
  fetchedAtMs: number;
}

/** Fetches of the keys so far, by outcome. */
export interface KeyRefreshCounts {
  success: number;
  failure: number;
}

/** Test and tuning knobs. */
export interface IssuerKeysOptions {
  now?: () => number;
  /** Default KEY_REFRESH_MIN_INTERVAL_MS. */
  minRefreshIntervalMs?: number;
  /** Default KEYS_MAX_AGE_MS. */
  maxAgeMs?: number;
}

/** The discovery document's issuer (the document is untrusted JSON, read field by field). */
function readIssuer(doc: unknown): string {
  const issuer = isRecord(doc) ? doc['issuer'] : undefined;
  if (typeof issuer !== 'string' || issuer === '') throw new Error(`${DISCOVERY_PATH} names no issuer`);
  return issuer;
}

/** The signing keys of a JWKS; keys that are not usable public signing keys are skipped. */
function readKeys(doc: unknown): Map<string, IssuerKey> {
  const list = isRecord(doc) ? doc['keys'] : undefined;
  if (!Array.isArray(list)) throw new Error(`${JWKS_PATH} is not a JWKS (no keys list)`);
  const keys = new Map<string, IssuerKey>();
  for (const jwk of list.slice(0, MAX_KEYS)) {
    if (!isRecord(jwk) || typeof jwk['kid'] !== 'string' || jwk['kid'] === '') continue;
    if (jwk['use'] !== undefined && jwk['use'] !== 'sig') continue;
    let key: KeyObject;
    try {
      key = createPublicKey({ key: jwk as JsonWebKey, format: 'jwk' });
    } catch {
      // A key type node:crypto cannot read (or a malformed key) cannot verify anything: skip it.
      continue;
    }
    keys.set(jwk['kid'], { key, ...(typeof jwk['alg'] === 'string' ? { alg: jwk['alg'] } : {}) });
  }
  if (keys.size === 0) throw new Error(`${JWKS_PATH} holds no usable signing key`);
  return keys;
}

/** `work`, or a rejection as soon as `signal` aborts (the shared fetch itself goes on for the others). */
function untilAborted<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  const gaveUp = (): VerificationUnavailableError =>
    new VerificationUnavailableError('local', 'gave up waiting for the issuer keys', { cause: signal.reason });
  if (signal.aborted) return Promise.reject(gaveUp());
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(gaveUp());
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

/** The issuer's keys, fetched lazily through `target` and shared by every caller. */
export class IssuerKeys {
  private current: KeySet | undefined;
  private fetching: Promise<KeySet> | undefined;
  private lastAttemptMs = -Infinity;
  private lastError: VerificationUnavailableError | undefined;
  private readonly counts: KeyRefreshCounts = { success: 0, failure: 0 };
  private readonly now: () => number;
  private readonly minRefreshIntervalMs: number;
  private readonly maxAgeMs: number;

  constructor(
    private readonly target: KubeTarget,
    options: IssuerKeysOptions = {},
  ) {
    this.now = options.now ?? Date.now;
    this.minRefreshIntervalMs = options.minRefreshIntervalMs ?? KEY_REFRESH_MIN_INTERVAL_MS;
    this.maxAgeMs = options.maxAgeMs ?? KEYS_MAX_AGE_MS;
  }

  /** Fetches so far (the agent's gpudiag_agent_token_key_refreshes_total). */
  get refreshes(): Readonly<KeyRefreshCounts> {
    return { ...this.counts };
  }

  /**
   * The issuer and the key with id `kid` (undefined when the issuer has none, even after the one
   * refresh the rate limit allows). Throws VerificationUnavailableError when there are no keys to
   * check against: discovery or the JWKS failed, and the last failure is reused until a retry is due.
   */
  async key(kid: string, signal: AbortSignal): Promise<{ issuer: string; key: IssuerKey | undefined }> {
    let set = await this.keySet(signal);
    let key = set.keys.get(kid);
    if (key === undefined && this.mayFetch()) {
      set = await this.fetchShared(signal);
      key = set.keys.get(kid);
    }
    return { issuer: set.issuer, key };
  }

  /**
   * The cached keys while fresh; else fetched. A failed refresh of stale keys keeps them: the API
   * server being down must not lock the operator out.
   */
  async keySet(signal: AbortSignal): Promise<KeySet> {
    const current = this.current;
    if (current !== undefined && this.now() - current.fetchedAtMs < this.maxAgeMs) return current;
    if (!this.mayFetch()) {
      if (current !== undefined) return current;
      throw this.lastError ?? new VerificationUnavailableError('local', 'the issuer keys are not fetched yet');
    }
    if (current === undefined) return this.fetchShared(signal);
    try {
      return await this.fetchShared(signal);
    } catch (err) {
      if (!(err instanceof VerificationUnavailableError)) throw err;
      return current;
    }
  }

  /** A fetch may start (the rate limit allows one), or one is running that callers may join. */
  private mayFetch(): boolean {
    return this.fetching !== undefined || this.now() - this.lastAttemptMs >= this.minRefreshIntervalMs;
  }

  private fetchShared(signal: AbortSignal): Promise<KeySet> {
    this.fetching ??= this.fetch().finally(() => (this.fetching = undefined));
    return untilAborted(this.fetching, signal);
  }

  private async fetch(): Promise<KeySet> {
    this.lastAttemptMs = this.now();
    const get = async (path: string, maxResponseBytes: number, accept: string): Promise<unknown> =>
      kubeRequest<unknown>(this.target, { method: 'GET', path, timeoutMs: FETCH_TIMEOUT_MS, maxResponseBytes, accept });
    try {
      const issuer = readIssuer(await get(DISCOVERY_PATH, MAX_DISCOVERY_BYTES, 'application/json'));
      // The API server answers the JWKS only as its own media type (406 for application/json).
      const keys = readKeys(await get(JWKS_PATH, MAX_JWKS_BYTES, 'application/jwk-set+json'));
      this.current = { issuer, keys, fetchedAtMs: this.now() };
      this.lastError = undefined;
      this.counts.success++;
      return this.current;
    } catch (err) {
      this.counts.failure++;
      const detail = err instanceof Error ? err.message : String(err);
      this.lastError = new VerificationUnavailableError('local', `the service-account issuer keys are unavailable: ${detail}`, {
        cause: err,
      });
      throw this.lastError;
    }
  }
}
