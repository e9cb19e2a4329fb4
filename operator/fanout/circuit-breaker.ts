/**
 * A per-agent circuit breaker shared by every diagnostic and policy: after N consecutive
 * transient failures an agent is skipped for a cool-down, then one probe decides.
 */

/** The state of one agent's circuit. */
export type CircuitState = 'closed' | 'open' | 'half-open';

/** Tuning and the injected clock. */
export interface CircuitBreakerOptions {
  /** Consecutive transient failures (or timeouts) that open the circuit. */
  failureThreshold?: number;
  /** How long an open circuit refuses requests before one probe is let through. */
  coolDownMs?: number;
  /** Closed circuits untouched for this long are forgotten (Pods come and go). */
  idleForgetMs?: number;
  now?: () => number;
}

/** The answer to "may I call this agent now?". */
export type CircuitPermit =
  { allowed: true; probe: boolean } | { allowed: false; state: 'open' | 'half-open'; failures: number; retryInMs: number; message: string };

/** Circuits by state, for metrics. */
export interface CircuitCounts {
  closed: number;
  open: number;
  halfOpen: number;
}

/** Default consecutive failures that open a circuit. */
export const DEFAULT_FAILURE_THRESHOLD = 5;
/** Default cool-down of an open circuit. */
export const DEFAULT_COOL_DOWN_MS = 30_000;
const DEFAULT_IDLE_FORGET_MS = 10 * 60_000;

interface Entry {
  failures: number;
  /** When the circuit opened (undefined while closed). */
  openedAt: number | undefined;
  probeInFlight: boolean;
  lastUsed: number;
}

/** The breaker key of an agent: node name plus Pod IP (a new Pod starts with a closed circuit). */
export function breakerKey(node: string, ip: string): string {
  return `${node}/${ip}`;
}

/** Per-key circuit breaker; all methods are synchronous and cheap. */
export class CircuitBreaker {
  private readonly entries = new Map<string, Entry>();
  private readonly threshold: number;
  private readonly coolDownMs: number;
  private readonly idleForgetMs: number;
  private readonly now: () => number;
  /** Size at which acquire() next forgets idle closed circuits (keeps the map bounded without a timer). */
  private pruneAt = 1024;

  constructor(options: CircuitBreakerOptions = {}) {
    this.threshold = options.failureThreshold ?? DEFAULT_FAILURE_THRESHOLD;
    this.coolDownMs = options.coolDownMs ?? DEFAULT_COOL_DOWN_MS;
    this.idleForgetMs = options.idleForgetMs ?? DEFAULT_IDLE_FORGET_MS;
    this.now = options.now ?? Date.now;
    if (!Number.isInteger(this.threshold) || this.threshold < 1)
      throw new Error(`failureThreshold must be a positive integer, got ${this.threshold}`);
    if (!(this.coolDownMs >= 0)) throw new Error(`coolDownMs must be a non-negative number, got ${this.coolDownMs}`);
  }

  /** The circuit's state now (an open circuit whose cool-down has passed reads half-open). */
  state(key: string): CircuitState {
    const entry = this.entries.get(key);
    if (entry?.openedAt === undefined) return 'closed';
    return entry.probeInFlight || this.now() - entry.openedAt >= this.coolDownMs ? 'half-open' : 'open';
  }

  /** Asks to call the agent. A half-open circuit lets exactly one probe through until it is recorded or released. */
  acquire(key: string): CircuitPermit {
    const now = this.now();
    const entry = this.entries.get(key);
    if (entry === undefined) {
      this.entries.set(key, { failures: 0, openedAt: undefined, probeInFlight: false, lastUsed: now });
      if (this.entries.size >= this.pruneAt) {
        this.forgetIdle(now);
        this.pruneAt = Math.max(1024, this.entries.size * 2);
      }
      return { allowed: true, probe: false };
    }
    entry.lastUsed = now;
    if (entry.openedAt === undefined) return { allowed: true, probe: false };
    const waited = now - entry.openedAt;
    if (entry.probeInFlight) {
      return {
        allowed: false,
        state: 'half-open',
        failures: entry.failures,
        retryInMs: 0,
        message: `circuit half-open after ${entry.failures} failures; a probe request is in flight`,
      };
    }
    if (waited >= this.coolDownMs) {
      entry.probeInFlight = true;
      return { allowed: true, probe: true };
    }
    const retryInMs = this.coolDownMs - waited;
    return {
      allowed: false,
      state: 'open',
      failures: entry.failures,
      retryInMs,
      message: `circuit open after ${entry.failures} failures; next probe in ${Math.ceil(retryInMs / 1000)}s`,
    };
  }

  /** Records that the agent answered (any non-transient outcome, HTTP 4xx included): the circuit closes. */
  recordSuccess(key: string): void {
    const entry = this.entries.get(key);
    if (entry === undefined) return;
    entry.failures = 0;
    entry.openedAt = undefined;
    entry.probeInFlight = false;
    entry.lastUsed = this.now();
  }

  /** Records a transient failure or timeout; opens the circuit at the threshold, re-opens it when a probe fails. */
  recordFailure(key: string): void {
    const now = this.now();
    let entry = this.entries.get(key);
    if (entry === undefined) {
      entry = { failures: 0, openedAt: undefined, probeInFlight: false, lastUsed: now };
      this.entries.set(key, entry);
    }
    entry.failures += 1;
    entry.lastUsed = now;
    if (entry.probeInFlight || entry.failures >= this.threshold) entry.openedAt = now;
    entry.probeInFlight = false;
  }

  /** Gives back a probe that ended without a verdict (cancelled), so the next caller may probe. */
  release(key: string): void {
    const entry = this.entries.get(key);
    if (entry !== undefined) entry.probeInFlight = false;
  }

  /** Counts of tracked circuits by state (forgetting long-idle closed ones first). */
  snapshot(): CircuitCounts {
    this.forgetIdle(this.now());
    const counts: CircuitCounts = { closed: 0, open: 0, halfOpen: 0 };
    for (const key of this.entries.keys()) {
      const state = this.state(key);
      if (state === 'closed') counts.closed += 1;
      else if (state === 'open') counts.open += 1;
      else counts.halfOpen += 1;
    }
    return counts;
  }

  private forgetIdle(now: number): void {
    for (const [key, entry] of this.entries) {
      if (entry.openedAt === undefined && !entry.probeInFlight && now - entry.lastUsed > this.idleForgetMs) this.entries.delete(key);
    }
  }
}
