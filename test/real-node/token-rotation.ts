/**
 * Watches the kubelet rotate pods' projected ServiceAccount tokens: samples the token files it
 * writes on the host and records each distinct token's issue and expiry times (from the JWT's
 * claims; the token itself is never kept or logged).
 */

/** One token the kubelet wrote, by its claims (seconds since the epoch). */
export interface IssuedToken {
  iat: number;
  exp: number;
}

/** A token file to watch, under a name for messages. */
export interface WatchedToken {
  name: string;
  file: string;
}

/** The `iat` and `exp` claims of a JWT; undefined for anything else. */
export function tokenTimes(jwt: string): IssuedToken | undefined {
  const payload = jwt.trim().split('.')[1];
  if (payload === undefined) return undefined;
  try {
    const claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as { iat?: unknown; exp?: unknown };
    return typeof claims.iat === 'number' && typeof claims.exp === 'number' ? { iat: claims.iat, exp: claims.exp } : undefined;
  } catch {
    return undefined;
  }
}

export class TokenRotationWatch {
  private readonly seen = new Map<string, IssuedToken[]>();
  private timer: NodeJS.Timeout | undefined;
  /** Why the last failed read failed (for a rotation test's timeout message). */
  lastReadError: string | undefined;

  constructor(
    private readonly tokens: readonly WatchedToken[],
    private readonly read: (file: string) => Promise<string>,
  ) {
    for (const t of tokens) this.seen.set(t.name, []);
  }

  /** Samples now and then every `everyMs` until stop(); a file that cannot be read is tried again next time. */
  async start(everyMs: number): Promise<void> {
    await this.sample();
    this.timer = setInterval(() => void this.sample(), everyMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** The distinct tokens seen per watched file, oldest first. */
  issued(): ReadonlyMap<string, readonly IssuedToken[]> {
    return this.seen;
  }

  /** The fewest tokens seen for any watched file (1 = not rotated yet). */
  fewestSeen(): number {
    return Math.min(...[...this.seen.values()].map((list) => list.length));
  }

  /** When the `n`th token (1-based) of every watched file has expired, in ms; undefined until each has one. */
  allExpired(n: number): number | undefined {
    const exps = [...this.seen.values()].map((list) => list[n - 1]?.exp);
    return exps.every((e): e is number => e !== undefined) ? Math.max(...exps) * 1000 : undefined;
  }

  private async sample(): Promise<void> {
    for (const t of this.tokens) {
      let text = '';
      try {
        text = await this.read(t.file);
      } catch (err) {
        // not written yet, or mid-swap by the kubelet's atomic writer: the next sample reads it
        this.lastReadError = String(err);
      }
      const times = tokenTimes(text);
      const list = this.seen.get(t.name) ?? [];
      if (times !== undefined && !list.some((x) => x.iat === times.iat && x.exp === times.exp)) list.push(times);
    }
  }
}
