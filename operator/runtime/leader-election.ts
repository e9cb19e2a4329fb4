/**
 * Leader election on a `coordination.k8s.io/v1` Lease, as client-go does it: acquire when the
 * Lease is absent, released or expired; renew every retry period; optimistic concurrency via
 * resourceVersion (a 409 means another replica won the race); a leader that has not renewed
 * within its renew deadline stops leading (its signal aborts) before any other replica may
 * consider the Lease expired — never two leaders. `stop()` releases the Lease so another
 * replica takes over at once.
 *
 * Expiry is judged conservatively: a held Lease is valid while its renewTime plus duration is
 * in the future, or while less than a lease duration has passed (on the local clock) since
 * this replica saw the Lease change. The second rule protects against clock skew between
 * replicas; a new candidate therefore waits up to one lease duration before taking over a
 * Lease whose holder died without releasing it.
 */
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import type { V1ObjectMeta } from '@kubernetes/client-node';
import { ApiClient } from '../../lib/kube/api-client.js';
import { withTimeout } from '../../lib/kube/deadline.js';
import type { KubeTarget } from '../../lib/kube/raw-request.js';
import { errorFields, type Logger } from '../../lib/logger.js';
import { sleep, systemClock, type Clock, type TimerHandle } from './clock.js';
import { isAlreadyExists, isConflict, isNotFound } from './errors.js';

/** A coordination.k8s.io/v1 Lease as JSON (its times are MicroTime strings). */
interface Lease {
  apiVersion?: string;
  kind?: string;
  metadata?: V1ObjectMeta;
  spec?: {
    holderIdentity?: string;
    leaseDurationSeconds?: number;
    acquireTime?: string;
    renewTime?: string;
    leaseTransitions?: number;
  };
}

/** A MicroTime (RFC 3339 with 6 fractional digits), as the Lease's time fields want it. */
function microTime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}

/** Options of a {@link LeaderElector}. */
export interface LeaderElectionOptions {
  /** The API server and credentials (a lib/kube connection or client-node's KubeConfig). */
  kubeConfig: KubeTarget;
  /** Namespace and name of the Lease (from configuration). */
  namespace: string;
  name: string;
  /** This replica's identity; default {@link leaderIdentity} of the host name. */
  identity?: string;
  /** How long a Lease stays valid after a renewal (default 15 s). */
  leaseDurationSeconds?: number;
  /** A leader that has not renewed for this long stops leading (default 10 s; < lease duration). */
  renewDeadlineMs?: number;
  /** Period of acquire and renew attempts (default 2 s; < renew deadline). */
  retryPeriodMs?: number;
  /** Called when this replica becomes leader; do the leader's work until `signal` aborts. */
  onStartedLeading: (signal: AbortSignal) => void | Promise<void>;
  /** Called after leadership ended and the leader's work settled (or its grace ran out). */
  onStoppedLeading?: (reason: string) => void;
  /** Called when the observed holder changes (including to this replica). */
  onNewLeader?: (identity: string) => void;
  /** How long stop() waits for onStartedLeading's work after aborting it (default 10 s). */
  stopGraceMs?: number;
  logger?: Logger;
  clock?: Clock;
}

/** A leader identity: the pod name plus a random suffix (two processes never share one). */
export function leaderIdentity(podName: string): string {
  return `${podName}_${randomBytes(4).toString('hex')}`;
}

/** A Lease time field in milliseconds, when it holds a time. */
function toMillis(value: string | undefined): number | undefined {
  if (typeof value !== 'string') return undefined;
  const ms = Date.parse(value);
  return Number.isFinite(ms) ? ms : undefined;
}

type Attempt = 'leading' | 'held-by-other' | 'lost-race';

/** Campaigns for a Lease and runs `onStartedLeading` while this replica holds it. */
export class LeaderElector {
  /** This replica's holderIdentity. */
  readonly identity: string;
  private readonly api: ApiClient;
  private readonly leaseDurationSeconds: number;
  private readonly renewDeadlineMs: number;
  private readonly retryPeriodMs: number;
  private readonly stopGraceMs: number;
  private readonly clock: Clock;
  private readonly logger: Logger | undefined;

  private readonly stopController = new AbortController();
  private loop: Promise<void> | undefined;
  private leading = false;
  private leaderController: AbortController | undefined;
  private leaderWork: Promise<void> = Promise.resolve();
  /** Set while leadership is ending (leader work aborted, not yet settled). */
  private stopping: Promise<void> | undefined;
  private deadlineTimer: TimerHandle | undefined;
  /** Last Lease seen (its resourceVersion and holder), and when, on the local clock. */
  private observedVersion: string | undefined;
  private observedAt = 0;
  private observedHolder: string | undefined;

  constructor(private readonly options: LeaderElectionOptions) {
    this.identity = options.identity ?? leaderIdentity(hostname());
    this.leaseDurationSeconds = options.leaseDurationSeconds ?? 15;
    this.renewDeadlineMs = options.renewDeadlineMs ?? 10_000;
    this.retryPeriodMs = options.retryPeriodMs ?? 2_000;
    this.stopGraceMs = options.stopGraceMs ?? 10_000;
    if (!Number.isInteger(this.leaseDurationSeconds) || this.leaseDurationSeconds < 1)
      throw new Error(`leaseDurationSeconds must be a positive integer, got ${this.leaseDurationSeconds}`);
    if (!(this.renewDeadlineMs < this.leaseDurationSeconds * 1000))
      throw new Error('renewDeadlineMs must be shorter than the lease duration');
    if (!(this.retryPeriodMs > 0 && this.retryPeriodMs < this.renewDeadlineMs))
      throw new Error('retryPeriodMs must be positive and shorter than renewDeadlineMs');
    this.api = new ApiClient(options.kubeConfig);
    this.clock = options.clock ?? systemClock;
    this.logger = options.logger?.child({ lease: `${options.namespace}/${options.name}`, identity: this.identity });
  }

  /** Whether this replica leads now. */
  get isLeader(): boolean {
    return this.leading;
  }

  /** Starts campaigning (returns at once). */
  start(): void {
    if (this.loop !== undefined) throw new Error('leader elector already started');
    this.loop = this.run();
  }

  /**
   * Stops campaigning; if leading, aborts the leader's work, waits for it (up to stopGraceMs)
   * and then releases the Lease so another replica takes over at once.
   */
  async stop(release = true): Promise<void> {
    this.stopController.abort(new Error('leader elector stopping'));
    await this.loop;
    await this.stopLeading('shutting down');
    await this.stopping;
    // Only after the leader's work settled: release() writes only if this replica holds the Lease.
    if (release && this.loop !== undefined) await this.release();
  }

  /**
   * Gives the Lease up if this replica holds it: holder emptied, duration 1 s, so the next
   * candidate acquires it on its next attempt. A lost race (409) means someone else holds it.
   */
  async release(): Promise<void> {
    const signal = withTimeout(undefined, this.renewDeadlineMs);
    try {
      const lease = await this.api.request<Lease>({ method: 'GET', path: this.leasePath(), signal });
      if (lease.spec?.holderIdentity !== this.identity) return;
      const now = microTime(this.clock.now());
      await this.api.request<Lease>({
        method: 'PUT',
        path: this.leasePath(),
        body: { ...lease, spec: { ...lease.spec, holderIdentity: '', leaseDurationSeconds: 1, renewTime: now, acquireTime: now } },
        signal,
      });
      this.logger?.info('lease released');
    } catch (err) {
      if (isConflict(err) || isNotFound(err)) return;
      this.logger?.warn('lease release failed', errorFields(err));
    }
  }

  private async run(): Promise<void> {
    const stop = this.stopController.signal;
    while (!stop.aborted) {
      const attemptStartedAt = this.clock.now();
      let result: Attempt | 'error';
      try {
        result = await this.tryAcquireOrRenew(withTimeout(stop, this.renewDeadlineMs), attemptStartedAt);
      } catch (err) {
        if (stop.aborted) break;
        this.logger?.warn(this.leading ? 'lease renewal failed' : 'lease acquisition failed', errorFields(err));
        result = 'error';
      }
      if (stop.aborted) break;
      // A renewal that came back after its own deadline proves nothing: the deadline decides.
      if (result === 'leading' && this.clock.now() - attemptStartedAt >= this.renewDeadlineMs) result = 'error';
      if (result === 'leading') {
        // Never start new leader work while the previous one is still winding down.
        if (!this.leading && this.stopping === undefined) this.startLeading();
        if (this.leading) this.armDeadline(attemptStartedAt);
      } else if (result === 'held-by-other' && this.leading) {
        await this.stopLeading('lease taken by another holder');
      }
      // 'lost-race' and 'error' while leading: keep trying (a 409 sooner, to re-read the
      // holder) until the renew deadline fires.
      const wait =
        result === 'lost-race' && this.leading
          ? this.retryPeriodMs / 4
          : this.retryPeriodMs * (1 + (result === 'leading' ? 0 : 0.2 * Math.random()));
      try {
        await sleep(wait, stop, this.clock);
      } catch {
        break; // stop() aborted the wait
      }
    }
  }

  /** One read-then-write attempt. Throws on transport and unexpected API errors. */
  private async tryAcquireOrRenew(signal: AbortSignal, now: number): Promise<Attempt> {
    const { name, namespace } = this.options;
    let lease: Lease | undefined;
    try {
      lease = await this.api.request<Lease>({ method: 'GET', path: this.leasePath(), signal });
    } catch (err) {
      if (!isNotFound(err)) throw new Error('reading the lease failed', { cause: err });
    }
    const stamp = microTime(now);
    if (lease === undefined) {
      let created: Lease;
      try {
        created = await this.api.request<Lease>({
          method: 'POST',
          path: `/apis/coordination.k8s.io/v1/namespaces/${encodeURIComponent(namespace)}/leases`,
          body: {
            apiVersion: 'coordination.k8s.io/v1',
            kind: 'Lease',
            metadata: { name, namespace },
            spec: {
              holderIdentity: this.identity,
              leaseDurationSeconds: this.leaseDurationSeconds,
              acquireTime: stamp,
              renewTime: stamp,
              leaseTransitions: 0,
            },
          },
          signal,
        });
      } catch (err) {
        if (isAlreadyExists(err) || isConflict(err)) return 'lost-race';
        throw new Error('creating the lease failed', { cause: err });
      }
      this.observe(this.identity, created.metadata?.resourceVersion);
      return 'leading';
    }

    const spec = lease.spec ?? {};
    const holder = spec.holderIdentity ?? '';
    this.observe(holder, lease.metadata?.resourceVersion);
    if (holder !== '' && holder !== this.identity && this.isValid(lease)) return 'held-by-other';

    const renewing = holder === this.identity;
    const body: Lease = {
      ...lease,
      spec: {
        ...spec,
        holderIdentity: this.identity,
        leaseDurationSeconds: this.leaseDurationSeconds,
        renewTime: stamp,
        acquireTime: renewing && spec.acquireTime !== undefined ? microTime(toMillis(spec.acquireTime) ?? now) : stamp,
        leaseTransitions: renewing ? (spec.leaseTransitions ?? 0) : (spec.leaseTransitions ?? 0) + 1,
      },
    };
    try {
      const written = await this.api.request<Lease>({ method: 'PUT', path: this.leasePath(), body, signal });
      this.observe(this.identity, written.metadata?.resourceVersion);
    } catch (err) {
      if (isConflict(err)) return 'lost-race';
      throw new Error(renewing ? 'renewing the lease failed' : 'acquiring the lease failed', { cause: err });
    }
    return 'leading';
  }

  /** The Lease's URL path. */
  private leasePath(): string {
    const { name, namespace } = this.options;
    return `/apis/coordination.k8s.io/v1/namespaces/${encodeURIComponent(namespace)}/leases/${encodeURIComponent(name)}`;
  }

  /** Whether a Lease held by someone else is still valid (see the module comment). */
  private isValid(lease: Lease): boolean {
    const durationMs = (lease.spec?.leaseDurationSeconds ?? this.leaseDurationSeconds) * 1000;
    const now = this.clock.now();
    const renewedAt = toMillis(lease.spec?.renewTime);
    const byRenewTime = renewedAt !== undefined && renewedAt + durationMs > now;
    const byObservation = this.observedAt + durationMs > now;
    return byRenewTime || byObservation;
  }

  private observe(holder: string, resourceVersion: string | undefined): void {
    if (resourceVersion !== undefined && resourceVersion === this.observedVersion) return;
    this.observedVersion = resourceVersion;
    this.observedAt = this.clock.now();
    if (holder !== this.observedHolder) {
      this.observedHolder = holder;
      if (holder !== '') this.options.onNewLeader?.(holder);
    }
  }

  private startLeading(): void {
    this.leading = true;
    const controller = new AbortController();
    this.leaderController = controller;
    this.logger?.info('started leading');
    this.leaderWork = (async () => {
      try {
        await this.options.onStartedLeading(controller.signal);
      } catch (err) {
        this.logger?.error('leader work failed', errorFields(err));
      }
    })();
  }

  /** Stops leading if the renew deadline passes without a successful renewal sent after `sentAt`. */
  private armDeadline(sentAt: number): void {
    if (this.deadlineTimer !== undefined) this.clock.clearTimeout(this.deadlineTimer);
    const remaining = sentAt + this.renewDeadlineMs - this.clock.now();
    this.deadlineTimer = this.clock.setTimeout(
      () => {
        this.deadlineTimer = undefined;
        void this.stopLeading('renew deadline exceeded');
      },
      Math.max(0, remaining),
    );
  }

  /** Ends leadership: aborts the leader's work and waits for it (bounded). Idempotent. */
  private async stopLeading(reason: string): Promise<void> {
    if (!this.leading) return this.stopping;
    this.leading = false;
    const done = this.finishLeading(reason);
    this.stopping = done;
    try {
      await done;
    } finally {
      if (this.stopping === done) this.stopping = undefined;
    }
  }

  private async finishLeading(reason: string): Promise<void> {
    if (this.deadlineTimer !== undefined) this.clock.clearTimeout(this.deadlineTimer);
    this.deadlineTimer = undefined;
    this.leaderController?.abort(new Error(`leadership lost: ${reason}`));
    this.leaderController = undefined;
    this.logger?.warn('stopped leading', { reason });
    let timer: ReturnType<typeof setTimeout> | undefined;
    const settled = await Promise.race([
      this.leaderWork.then(() => true),
      new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(false), this.stopGraceMs);
      }),
    ]);
    clearTimeout(timer);
    if (!settled) this.logger?.warn('leader work did not stop within the grace period', { graceMs: this.stopGraceMs });
    try {
      this.options.onStoppedLeading?.(reason);
    } catch (err) {
      this.logger?.error('onStoppedLeading threw', errorFields(err));
    }
  }
}
