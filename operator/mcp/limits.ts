/** Rate limits of the MCP HTTP endpoint (a module of its own: configuration parsing imports it without the SDK). */

/** A token bucket: `burst` calls at once, refilled at `perSecond`. */
export interface RateLimit {
  burst: number;
  perSecond: number;
}

/** Default calls per authenticated identity. */
export const DEFAULT_RATE_LIMIT: Readonly<RateLimit> = Object.freeze({ burst: 60, perSecond: 10 });
