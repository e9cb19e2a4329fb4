/**
 * The one parser of HTTP request targets (`req.url`). `new URL(req.url, base)` throws on
 * targets such as `//` or `http://`, and a throw inside a request listener ends the process;
 * this parser never throws: it returns the path and query, or a typed refusal with the status
 * to answer.
 */

/** Longest request target accepted; longer ones are answered 414. */
export const MAX_REQUEST_TARGET_LENGTH = 8 * 1024;

/** A request target that can be routed: the raw (not percent-decoded) path and the query. */
export interface RequestTarget {
  /** Path as sent, e.g. `/v1/snapshot` (never decoded, so `%2F` stays three characters). */
  readonly path: string;
  readonly query: URLSearchParams;
}

/** Why a request target cannot be served. */
export interface RequestTargetRefusal {
  readonly status: 400 | 414;
  readonly message: string;
}

/** The outcome of parsing a request target. */
export type ParsedRequestTarget = { ok: true; target: RequestTarget } | { ok: false; refusal: RequestTargetRefusal };

const ABSOLUTE_FORM = /^[A-Za-z][A-Za-z0-9+.-]*:\/\//;
// eslint-disable-next-line no-control-regex
const FORBIDDEN = /[\u0000-\u0020\u007f]/;

function refuse(status: 400 | 414, message: string): ParsedRequestTarget {
  return { ok: false, refusal: { status, message } };
}

function originForm(raw: string): ParsedRequestTarget {
  const question = raw.indexOf('?');
  const path = question < 0 ? raw : raw.slice(0, question);
  // URLSearchParams never throws: `%zz` and lone `%` are kept as they are.
  const query = new URLSearchParams(question < 0 ? '' : raw.slice(question + 1));
  return { ok: true, target: { path, query } };
}

/**
 * Parses `req.url`: origin form (`/path?query`) and absolute form (`http://host/path?query`)
 * are served; authority form (`host:443`, CONNECT only), asterisk form (`*`) and anything else
 * are refused with 400, targets over `maxLength` with 414.
 */
export function parseRequestTarget(raw: string | undefined, maxLength = MAX_REQUEST_TARGET_LENGTH): ParsedRequestTarget {
  if (raw === undefined || raw === '') return refuse(400, 'empty request target');
  if (raw.length > maxLength) return refuse(414, `request target longer than ${maxLength} characters`);
  if (FORBIDDEN.test(raw)) return refuse(400, 'request target contains control characters or spaces');
  if (raw.startsWith('/')) return originForm(raw);
  if (ABSOLUTE_FORM.test(raw)) {
    let url: URL;
    try {
      url = new URL(raw);
    } catch {
      return refuse(400, 'request target is not a valid absolute URL');
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') return refuse(400, 'absolute request targets must use http or https');
    return { ok: true, target: { path: url.pathname, query: url.searchParams } };
  }
  if (raw === '*') return refuse(400, 'asterisk-form request targets are not served');
  return refuse(400, 'request target must be a path such as /healthz');
}
