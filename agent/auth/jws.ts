/**
 * Compact JWS (a JWT) read and checked with node:crypto only: the one safe way in for a bearer
 * token the agent verifies itself. Only the asymmetric algorithms a Kubernetes service-account
 * issuer signs with are accepted (RS256, ES256); `none`, HMAC and any algorithm whose key does
 * not fit are refused by name, so a public key can never be used as an HMAC secret.
 */
import { verify, type KeyObject } from 'node:crypto';
import { isRecord } from '../../lib/records.js';
import { quote } from '../../lib/text.js';

/** The signature algorithms accepted. */
export type JwsAlgorithm = 'RS256' | 'ES256';
export const JWS_ALGORITHMS: readonly JwsAlgorithm[] = ['RS256', 'ES256'];

/** Longest token read (projected ServiceAccount tokens are about 1 KiB). */
export const MAX_JWS_CHARS = 16 * 1024;
/** Smallest RSA modulus accepted (the API server refuses shorter signing keys too). */
const MIN_RSA_BITS = 2048;
/** An ES256 signature: r and s, 32 bytes each (RFC 7518 3.4). */
const ES256_SIGNATURE_BYTES = 64;
/** base64url without padding (RFC 7515 2); a length of 4n+1 cannot be decoded. */
const BASE64URL = /^[A-Za-z0-9_-]*$/;

/** A token split and decoded, signature not yet checked. */
export interface DecodedJws {
  alg: JwsAlgorithm;
  /** The key id of the header, when it has one. */
  kid?: string;
  claims: Record<string, unknown>;
  /** `header.payload` as sent: what the signature covers. */
  signingInput: Buffer;
  signature: Buffer;
}

/** A check that passed with a value, or failed with a reason fit for a log line and the caller. */
export type Checked<T> = { ok: true; value: T } | { ok: false; reason: string };

const refuse = (reason: string): { ok: false; reason: string } => ({ ok: false, reason });

function base64url(part: string, what: string): Checked<Buffer> {
  if (!BASE64URL.test(part) || part.length % 4 === 1) return refuse(`the token's ${what} is not base64url`);
  return { ok: true, value: Buffer.from(part, 'base64url') };
}

function jsonObject(bytes: Buffer, what: string): Checked<Record<string, unknown>> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(bytes.toString('utf8'));
  } catch {
    return refuse(`the token's ${what} is not JSON`);
  }
  return isRecord(parsed) ? { ok: true, value: parsed } : refuse(`the token's ${what} is not a JSON object`);
}

/** Why an algorithm is refused, by family. */
function algorithmRefusal(alg: unknown): string {
  if (typeof alg !== 'string') return 'the token header has no algorithm (alg)';
  if (alg.toLowerCase() === 'none') return 'unsigned tokens (alg none) are refused';
  if (/^HS\d+$/.test(alg)) return `HMAC-signed tokens (alg ${quote(alg, 16)}) are refused: the issuer signs with a private key`;
  return `algorithm ${quote(alg, 16)} is not accepted (${JWS_ALGORITHMS.join(', ')})`;
}

/** Splits and decodes a compact JWS; refuses anything but three base64url parts with an accepted algorithm. */
export function decodeJws(token: string): Checked<DecodedJws> {
  if (token.length > MAX_JWS_CHARS) return refuse(`the token is longer than ${MAX_JWS_CHARS} characters`);
  const parts = token.split('.');
  if (parts.length !== 3) return refuse('the token is not a JWT (three dot-separated parts)');
  const [headerPart = '', payloadPart = '', signaturePart = ''] = parts;
  const headerBytes = base64url(headerPart, 'header');
  if (!headerBytes.ok) return headerBytes;
  const header = jsonObject(headerBytes.value, 'header');
  if (!header.ok) return header;
  const alg = header.value['alg'];
  if (!JWS_ALGORITHMS.includes(alg as JwsAlgorithm)) return refuse(algorithmRefusal(alg));
  // RFC 7515 4.1.11: an extension the header marks critical must be understood; none is.
  if (header.value['crit'] !== undefined) return refuse('the token header lists critical extensions (crit), which are not supported');
  const kid = header.value['kid'];
  if (kid !== undefined && typeof kid !== 'string') return refuse('the token header has a key id (kid) that is not a string');
  const payloadBytes = base64url(payloadPart, 'payload');
  if (!payloadBytes.ok) return payloadBytes;
  const claims = jsonObject(payloadBytes.value, 'payload');
  if (!claims.ok) return claims;
  const signature = base64url(signaturePart, 'signature');
  if (!signature.ok) return signature;
  if (signature.value.length === 0) return refuse('the token has no signature');
  return {
    ok: true,
    value: {
      alg: alg as JwsAlgorithm,
      ...(kid !== undefined ? { kid } : {}),
      claims: claims.value,
      signingInput: Buffer.from(`${headerPart}.${payloadPart}`, 'ascii'),
      signature: signature.value,
    },
  };
}

/** Why `key` cannot check an `alg` signature, or undefined when it can. */
export function keyMismatch(alg: JwsAlgorithm, key: KeyObject): string | undefined {
  if (key.type !== 'public') return 'the issuer key is not a public key';
  const details = key.asymmetricKeyDetails ?? {};
  if (alg === 'RS256') {
    if (key.asymmetricKeyType !== 'rsa') return `the token says RS256 but its key is ${key.asymmetricKeyType ?? 'not asymmetric'}`;
    if ((details.modulusLength ?? 0) < MIN_RSA_BITS) return `the issuer's RSA key is shorter than ${MIN_RSA_BITS} bits`;
    return undefined;
  }
  if (key.asymmetricKeyType !== 'ec' || details.namedCurve !== 'prime256v1')
    return `the token says ES256 but its key is not a P-256 EC key (${key.asymmetricKeyType ?? 'not asymmetric'})`;
  return undefined;
}

/** Checks the signature of a decoded token with `key` (whose type must fit the algorithm). */
export function verifyJwsSignature(jws: DecodedJws, key: KeyObject): Checked<void> {
  const mismatch = keyMismatch(jws.alg, key);
  if (mismatch !== undefined) return refuse(mismatch);
  if (jws.alg === 'ES256' && jws.signature.length !== ES256_SIGNATURE_BYTES) return refuse('the token signature does not verify');
  let valid = false;
  try {
    const verifyKey = jws.alg === 'ES256' ? { key, dsaEncoding: 'ieee-p1363' as const } : key;
    valid = verify('sha256', jws.signingInput, verifyKey, jws.signature);
  } catch {
    // A signature OpenSSL cannot even parse is just as invalid.
    valid = false;
  }
  return valid ? { ok: true, value: undefined } : refuse('the token signature does not verify');
}
