/**
 * The GPUDiagnostic controller. Level-triggered: the queue carries keys; each pass re-reads the
 * object, gathers observations (policy, targets, the in-memory run), computes the desired status
 * with computeDiagnosticStatus, and writes it once (skipped when unchanged, retried on conflict).
 *
 * Agent fan-outs run in the background, tracked by object UID; a finished run re-queues its key.
 * A diagnostic found Running without a run in memory (the operator restarted or leadership moved)
 * is run again, so nothing stays Running forever.
 */
import { randomBytes } from 'node:crypto';
import type { Agent as HttpAgent } from 'node:http';
import type { V1Node, V1Pod } from '@kubernetes/client-node';
import { DEFAULT_PER_NODE_TIMEOUT_SECONDS, DIAGNOSTIC_SPEC_DEFAULTS } from '../../api/defaults.js';
import { API_VERSION, type GPUDiagnostic, type GPUDiagnosticStatus, type GPUHealthPolicy } from '../../api/index.js';
import { describeErrors, validateGPUDiagnostic } from '../../api/validation.js';
import type { DiagnosticCheck } from '../../agent/api/snapshot-document.js';
import { ApiClient } from '../../lib/kube/api-client.js';
import type { KubeTarget } from '../../lib/kube/raw-request.js';
import { diagnosticsPath, policiesPath } from '../../api/paths.js';
import { errorFields, type Logger } from '../../lib/logger.js';
import type { TokenProvider } from '../agent-token.js';
import type { EventRecorder, EventSubject } from '../events.js';
import { fanOut, type NodeOutcome } from '../fanout/fanout.js';
import type { CircuitBreaker } from '../fanout/circuit-breaker.js';
import { InvalidTargetInputError, resolveTargets } from '../fanout/targets.js';
import type { OperatorMetrics } from '../metrics.js';
import { isNotFound } from '../runtime/errors.js';
import { writeStatus } from '../runtime/status-writer.js';
import { splitKey, type ResilientInformer } from '../runtime/informer.js';
import type { ReconcileResult, WorkQueue } from '../runtime/work-queue.js';
import { parseAdvertisedGpus, parseGoDuration, PolicyError, resolvePolicy, scoreNode, type ResolvedPolicy } from '../scoring/index.js';
import type { Workloads } from '../workloads/index.js';
import { computeDiagnosticStatus, isFinished, type DiagnosticObservation } from './compute.js';
import { RetainedResults, STATUS_LIMITS, type NodeResultInput } from './results.js';

/**
 * Progress is written at most this often while agents answer: each write is one request, and
 * its own watch event comes straight back as a reconcile, which must not write again.
 */
export const PROGRESS_INTERVAL_MS = 2_000;
/** A safety net: a running diagnostic is looked at again at least this often. */
const RUNNING_RECHECK_MS = 10_000;
/**
 * A referenced policy may be created moments after the diagnostic (`kubectl apply -f dir/`
 * applies files in name order); wait this long before failing with PolicyNotFound.
 */
export const POLICY_GRACE_MS = 30_000;
const POLICY_RECHECK_MS = 2_000;
/**
 * Warning events per finished diagnostic: one per critical node for the worst few, then one
 * `CriticalGPUs` event naming the rest (so the requests a diagnostic costs do not grow with the
 * fleet).
 */
export const MAX_NODE_EVENTS = 3;
/** Nodes named by the `CriticalGPUs` event; the rest are counted. */
const MAX_NAMES_IN_SUMMARY = 20;

/** What the controller needs. */
export interface DiagnosticControllerDeps {
  /** The API server and credentials (a lib/kube connection or client-node's KubeConfig). */
  kc: KubeTarget;
  nodes: ResilientInformer<V1Node>;
  agentPods: ResilientInformer<V1Pod>;
  breaker: CircuitBreaker;
  connections: HttpAgent;
  tokenProvider: TokenProvider;
  events: EventRecorder;
  /** Finds the pods on the GPUs of finished runs and tells those on critical GPUs. */
  workloads: Workloads;
  metrics: OperatorMetrics;
  logger: Logger;
  agentPort: number;
  agentScheme: 'http' | 'https';
  agentCaPem?: string;
  fanoutConcurrency: number;
  fanoutRetries: number;
  defaultPerNodeTimeoutSeconds: number;
  /** How long to wait for a referenced policy that does not exist yet (default POLICY_GRACE_MS). */
  policyGraceMs?: number;
  /** Deadline of one API call (default lib/kube's). */
  apiTimeoutMs?: number;
  /**
   * True when the operator's cache no longer holds the diagnostic (deleted). Lets progress passes
   * work from the object their last write returned instead of reading it again; without it every
   * pass reads the object.
   */
  diagnosticGone?: (key: string) => boolean;
  /**
   * The informer's copy of a diagnostic. A brand-new one (no status yet) is started from it, and
   * a finished one expired from it, without reading it again; anything else is read.
   */
  cachedDiagnostic?: (key: string) => GPUDiagnostic | undefined;
  now?: () => Date;
}

interface Run {
  key: string;
  startTime: string;
  targeted: number;
  restarted: boolean;
  completed: RetainedResults;
  done: boolean;
  abort: AbortController;
  progressQueued: boolean;
  /** When progress was last written (ms since the epoch). */
  progressWrittenAt: number;
  /** The object as the run's last status write left it (its resourceVersion is current unless someone else wrote since). */
  latest?: GPUDiagnostic;
}

/** Reconciles GPUDiagnostics. */
export class DiagnosticController {
  private readonly runs = new Map<string, Run>();
  private readonly api: ApiClient;
  private readonly now: () => Date;

  constructor(
    private readonly deps: DiagnosticControllerDeps,
    private readonly queue: WorkQueue,
  ) {
    this.api = new ApiClient(deps.kc, deps.apiTimeoutMs !== undefined ? { timeoutMs: deps.apiTimeoutMs } : {});
    this.now = deps.now ?? ((): Date => new Date());
  }

  /** Runs still asking agents (for tests and shutdown). */
  get activeRuns(): number {
    return this.runs.size;
  }

  /** Aborts every run (leadership lost or shutdown); their objects are re-run by the next leader. */
  abortAll(): void {
    for (const run of this.runs.values()) run.abort.abort(new Error('operator stopping'));
    this.runs.clear();
  }

  /** One reconcile pass for `namespace/name`. */
  async reconcile(key: string, signal: AbortSignal): Promise<ReconcileResult | void> {
    const { namespace, name } = splitKey(key);
    if (namespace === undefined) return;
    const inFlight = this.inFlightRun(key);
    if (inFlight !== undefined && this.deps.diagnosticGone?.(key) === true) {
      this.forgetRunsFor(key);
      return;
    }
    if (inFlight !== undefined && Date.now() - inFlight.progressWrittenAt < PROGRESS_INTERVAL_MS) {
      // Usually the watch event of our own write: progress waits for its interval.
      this.queueProgress(inFlight);
      return { requeueAfterMs: RUNNING_RECHECK_MS };
    }
    let obj: GPUDiagnostic;
    const cached = inFlight === undefined ? this.deps.cachedDiagnostic?.(key) : undefined;
    const finishing = this.finishedRun(key);
    if (inFlight !== undefined) obj = inFlight.latest;
    else if (finishing !== undefined && this.deps.diagnosticGone?.(key) === false) obj = finishing;
    // Brand-new, or finished (only the TTL is left to honour): the cache's copy is as good as a read.
    else if (cached !== undefined && (cached.status?.phase === undefined || isFinished(cached.status))) obj = cached;
    else {
      try {
        obj = await this.api.request<GPUDiagnostic>({ method: 'GET', path: diagnosticsPath(namespace, name), signal });
      } catch (err) {
        if (isNotFound(err)) {
          this.forgetRunsFor(key);
          return;
        }
        throw err;
      }
    }
    const uid = obj.metadata.uid ?? key;
    const log = this.deps.logger.child({ diagnostic: key });

    if (isFinished(obj.status)) {
      this.runs.delete(uid);
      return this.expireIfDue(obj, log, signal);
    }

    const valid = validateGPUDiagnostic(obj);
    if (!valid.ok) {
      await this.apply(obj, { kind: 'stalled', reason: 'InvalidSpec', message: describeErrors(valid.errors) }, signal);
      return;
    }

    const run = this.runs.get(uid);
    if (run !== undefined) {
      run.progressQueued = false;
      if (!run.done) {
        run.progressWrittenAt = Date.now();
        await this.apply(
          obj,
          { kind: 'running', startTime: run.startTime, targeted: run.targeted, completed: run.completed.all, restarted: run.restarted },
          signal,
          run,
        );
        return { requeueAfterMs: RUNNING_RECHECK_MS };
      }
      // A small diagnostic lists every GPU's pods; a large one only the degraded and critical GPUs'.
      const results = await this.deps.workloads.resolver.resolve(
        run.completed.all,
        run.targeted <= STATUS_LIMITS.detailedNodeLimit,
        signal,
      );
      const written = await this.apply(obj, { kind: 'finished', startTime: run.startTime, targeted: run.targeted, results }, signal);
      this.runs.delete(uid);
      await this.announce(obj, written, log, signal);
      await this.deps.workloads.notifier.notify(results, signal);
      return this.expireIfDue({ ...obj, status: written }, log, signal);
    }
    return this.startRun(obj, key, uid, signal, log);
  }

  private async startRun(obj: GPUDiagnostic, key: string, uid: string, signal: AbortSignal, log: Logger): Promise<ReconcileResult | void> {
    const spec = obj.spec;
    const policy = await this.resolvePolicyFor(obj, signal);
    if ('pending' in policy) {
      await this.apply(obj, { kind: 'pending', message: policy.pending }, signal);
      return { requeueAfterMs: POLICY_RECHECK_MS };
    }
    if ('stalled' in policy) {
      await this.apply(obj, policy.stalled, signal);
      await this.deps.events.warning(subjectOf(obj), policy.stalled.reason, policy.stalled.message, signal);
      return;
    }
    let targets;
    try {
      targets = resolveTargets({
        nodes: this.deps.nodes.list(),
        agentPods: this.deps.agentPods.list(),
        ...(spec.nodeNames !== undefined ? { nodeNames: spec.nodeNames } : {}),
        ...(spec.nodeSelector !== undefined ? { nodeSelector: spec.nodeSelector } : {}),
      });
    } catch (err) {
      if (!(err instanceof InvalidTargetInputError)) throw err;
      await this.apply(obj, { kind: 'stalled', reason: 'InvalidSpec', message: err.message }, signal);
      return;
    }
    if (targets.length === 0) {
      const message =
        spec.nodeSelector !== undefined ? 'no node with a gpudiag agent matches spec.nodeSelector' : 'no node runs a ready gpudiag agent';
      await this.apply(obj, { kind: 'stalled', reason: 'NoMatchingNodes', message }, signal);
      await this.deps.events.warning(subjectOf(obj), 'NoMatchingNodes', message, signal);
      return;
    }

    const restarted = obj.status?.phase === 'Running';
    const now = this.now();
    const run: Run = {
      key,
      startTime: restarted && obj.status?.startTime !== undefined ? obj.status.startTime : now.toISOString().replace(/\.\d+Z$/, 'Z'),
      targeted: targets.length,
      restarted,
      completed: new RetainedResults(),
      done: false,
      abort: new AbortController(),
      progressQueued: false,
      progressWrittenAt: Date.now(),
    };
    // Tracked only once Running is written: a run whose first write failed (forbidden, conflicts
    // exhausted) never started its fan-out, and tracking it would leave the object Running forever.
    await this.apply(obj, { kind: 'running', startTime: run.startTime, targeted: run.targeted, completed: [], restarted }, signal, run);
    this.runs.set(uid, run);
    log.info(restarted ? 'diagnostic restarted' : 'diagnostic started', { nodes: targets.length, checks: (spec.checks ?? []).join(',') });

    const timeoutMs = (spec.timeoutSeconds ?? 60) * 1000;
    const perNodeMs = Math.min(
      timeoutMs,
      (spec.perNodeTimeoutSeconds ?? this.deps.defaultPerNodeTimeoutSeconds ?? DEFAULT_PER_NODE_TIMEOUT_SECONDS) * 1000,
    );
    const deadline = AbortSignal.any([run.abort.signal, AbortSignal.timeout(timeoutMs)]);
    const lookbackMs = parseGoDuration(spec.xidLookback ?? '1h');
    // At most 64 characters (the fan-out's limit): the random suffix always survives the cut.
    const correlationId = `${`${obj.metadata.namespace ?? ''}.${obj.metadata.name ?? ''}`.slice(0, 57)}.${randomBytes(3).toString('hex')}`;

    void fanOut({
      targets,
      checks: (spec.checks ?? ['health', 'xid']) as DiagnosticCheck[],
      xidSince: new Date(now.getTime() - lookbackMs),
      perNodeTimeoutMs: perNodeMs,
      signal: deadline,
      concurrency: this.deps.fanoutConcurrency,
      retries: this.deps.fanoutRetries,
      breaker: this.deps.breaker,
      tokenProvider: () => this.deps.tokenProvider(),
      agentPort: this.deps.agentPort,
      scheme: this.deps.agentScheme,
      ...(this.deps.agentCaPem !== undefined ? { caPem: this.deps.agentCaPem } : {}),
      connections: this.deps.connections,
      // Each snapshot is scored in onResult; keeping them would grow memory with the fleet.
      retainSnapshots: false,
      correlationId,
      logger: log,
      onResult: (outcome) => this.record(run, outcome, policy.resolved),
    })
      .then(
        () => undefined,
        (err: unknown) => {
          // Never let a failed fan-out look like a clean run: every unanswered node is an Error.
          log.error('fan-out failed', errorFields(err));
          const answered = new Set(run.completed.all.map((c) => c.node));
          for (const t of targets) {
            if (!answered.has(t.node))
              run.completed.push({
                node: t.node,
                result: 'Error',
                message: `the operator could not ask this node's agent: ${errorFields(err).error.slice(0, 200)}`,
              });
          }
        },
      )
      .finally(() => {
        run.done = true;
        if (this.runs.get(uid) === run) this.queue.add(key);
      });
    return { requeueAfterMs: RUNNING_RECHECK_MS };
  }

  /** Scores one node's outcome as it arrives and schedules a (throttled) progress write. */
  private record(run: Run, outcome: NodeOutcome, policy: ResolvedPolicy): void {
    const { metrics } = this.deps;
    metrics.fanoutResults.inc({ result: outcome.result });
    const input: NodeResultInput = {
      node: outcome.node,
      result: outcome.result,
      durationMs: outcome.durationMs,
      ...(outcome.message !== undefined ? { message: outcome.message } : {}),
    };
    if (outcome.result === 'Succeeded' && outcome.snapshot !== undefined) {
      const node = this.deps.nodes.get(outcome.node);
      // The Node says how many GPUs there should be (GpusMissing when the agent sees fewer).
      const advertised = node === undefined ? {} : { advertised: parseAdvertisedGpus(node) };
      const score = scoreNode(outcome.snapshot, policy, this.now(), advertised);
      input.score = score;
      // A node deleted meanwhile gets no series: nothing would remove them again.
      if (node !== undefined) metrics.recordNodeScore(score);
    }
    run.completed.push(input);
    this.queueProgress(run);
  }

  /** Asks for a progress pass once the interval since the last progress write has passed. */
  private queueProgress(run: Run): void {
    if (run.progressQueued || run.done) return;
    run.progressQueued = true;
    this.queue.addAfter(run.key, Math.max(0, run.progressWrittenAt + PROGRESS_INTERVAL_MS - Date.now()));
  }

  /**
   * The object the last write of a run whose agents have all answered returned: the final write
   * starts from it (a conflict, when someone else wrote since, re-reads).
   */
  private finishedRun(key: string): GPUDiagnostic | undefined {
    for (const run of this.runs.values()) if (run.key === key && run.done && run.latest !== undefined) return run.latest;
    return undefined;
  }

  /** The run still asking agents for `key`, when its last write left an object to work from. */
  private inFlightRun(key: string): (Run & { latest: GPUDiagnostic }) | undefined {
    if (this.deps.diagnosticGone === undefined) return undefined;
    for (const run of this.runs.values())
      if (run.key === key && !run.done && run.latest !== undefined) return run as Run & { latest: GPUDiagnostic };
    return undefined;
  }

  private async resolvePolicyFor(
    obj: GPUDiagnostic,
    signal: AbortSignal,
  ): Promise<{ resolved: ResolvedPolicy } | { pending: string } | { stalled: Extract<DiagnosticObservation, { kind: 'stalled' }> }> {
    const ref = obj.spec.policyRef?.name;
    let spec: GPUHealthPolicy['spec'] | undefined;
    if (ref !== undefined) {
      try {
        spec = (await this.api.request<GPUHealthPolicy>({ method: 'GET', path: policiesPath(ref), signal })).spec;
      } catch (err) {
        if (!isNotFound(err)) throw err;
        const age = this.now().getTime() - Date.parse(obj.metadata.creationTimestamp?.toString() ?? '');
        if (age < (this.deps.policyGraceMs ?? POLICY_GRACE_MS))
          return { pending: `waiting for GPUHealthPolicy "${ref}" (spec.policyRef.name) to be created` };
        return {
          stalled: { kind: 'stalled', reason: 'PolicyNotFound', message: `GPUHealthPolicy "${ref}" (spec.policyRef.name) does not exist` },
        };
      }
    }
    signal.throwIfAborted();
    // The diagnostic's own spec.xidLookback decides which XIDs count; the policy's xid.lookback
    // is for its periodic checks.
    const forThisDiagnostic = { ...spec, xid: { ...spec?.xid, lookback: obj.spec.xidLookback ?? DIAGNOSTIC_SPEC_DEFAULTS.xidLookback } };
    try {
      return { resolved: resolvePolicy(forThisDiagnostic) };
    } catch (err) {
      if (err instanceof PolicyError)
        return { stalled: { kind: 'stalled', reason: 'InvalidPolicy', message: `GPUHealthPolicy "${ref ?? ''}": ${err.message}` } };
      throw err;
    }
  }

  /**
   * The one place status is written: recompute on the freshest object, retry on conflict. With
   * `run`, the object the write returned (or the one given, when nothing changed) becomes the
   * run's starting point for its next progress pass.
   */
  private async apply(
    obj: GPUDiagnostic,
    observation: DiagnosticObservation,
    signal: AbortSignal,
    run?: Run,
  ): Promise<GPUDiagnosticStatus> {
    const namespace = obj.metadata.namespace ?? '';
    const name = obj.metadata.name ?? '';
    let latest = obj;
    const status = await writeStatus(
      obj,
      (current) => computeDiagnosticStatus(current.status, current.metadata.generation ?? 1, observation, this.now()),
      {
        replace: async (current, status) => {
          const written = await this.api.request<GPUDiagnostic>({
            method: 'PUT',
            path: `${diagnosticsPath(namespace, name)}/status`,
            body: { ...current, status },
            signal,
          });
          latest = written;
          return written;
        },
        reread: async () => {
          latest = await this.api.request<GPUDiagnostic>({ method: 'GET', path: diagnosticsPath(namespace, name), signal });
          return latest;
        },
      },
      signal,
    );
    if (run !== undefined) run.latest = latest;
    return status;
  }

  /** Events for a finished diagnostic: Normal with the summary, Warning per critical node. */
  private async announce(obj: GPUDiagnostic, status: GPUDiagnosticStatus, log: Logger, signal: AbortSignal): Promise<void> {
    const s = status.summary ?? {};
    const subject = subjectOf(obj);
    this.deps.metrics.diagnostics.inc({ phase: status.phase ?? 'Completed' });
    const healthy = status.conditions?.find((c) => c.type === 'Healthy');
    await this.deps.events.normal(
      subject,
      'Completed',
      `${s.nodesSucceeded ?? 0}/${s.nodesTargeted ?? 0} node(s) answered; ${healthy?.message ?? ''}`,
      signal,
    );
    const critical = (status.nodes ?? []).filter((n) => n.status === 'critical');
    for (const node of critical.slice(0, MAX_NODE_EVENTS)) {
      await this.deps.events.warning(subject, 'CriticalGPU', `${node.name}: ${node.message ?? 'critical'}`, signal);
    }
    // The status lists nodes worst first up to its cap; the summary counts every critical node.
    const rest = Math.max(0, (s.nodesByStatus?.critical ?? critical.length) - MAX_NODE_EVENTS);
    if (rest > 0) {
      const names = critical.slice(MAX_NODE_EVENTS, MAX_NODE_EVENTS + MAX_NAMES_IN_SUMMARY).map((n) => n.name);
      const unnamed = rest - names.length;
      await this.deps.events.warning(
        subject,
        'CriticalGPUs',
        `${rest} more node(s) with critical GPUs: ${names.join(', ')}${unnamed > 0 ? ` and ${unnamed} more (see status.nodes)` : ''}`,
        signal,
      );
    }
    log.info('diagnostic completed', {
      nodes: s.nodesTargeted,
      succeeded: s.nodesSucceeded,
      critical: s.nodesByStatus?.critical ?? 0,
      minScore: s.minScore,
    });
  }

  /** Deletes a finished diagnostic once ttlSecondsAfterFinished has passed, else asks to come back then. */
  private async expireIfDue(obj: GPUDiagnostic, log: Logger, signal: AbortSignal): Promise<ReconcileResult | void> {
    const ttl = obj.spec.ttlSecondsAfterFinished;
    const finishedAt = Date.parse(obj.status?.completionTime ?? '');
    if (ttl === undefined || Number.isNaN(finishedAt)) return;
    const dueIn = finishedAt + ttl * 1000 - this.now().getTime();
    if (dueIn > 0) return { requeueAfterMs: dueIn };
    try {
      await this.api.request({ method: 'DELETE', path: diagnosticsPath(obj.metadata.namespace ?? '', obj.metadata.name ?? ''), signal });
      log.info('diagnostic deleted after ttlSecondsAfterFinished', { ttlSeconds: ttl });
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
  }

  private forgetRunsFor(key: string): void {
    for (const [uid, run] of this.runs) {
      if (run.key === key) {
        run.abort.abort(new Error('diagnostic deleted'));
        this.runs.delete(uid);
      }
    }
  }
}

function subjectOf(obj: GPUDiagnostic): EventSubject {
  return {
    apiVersion: API_VERSION,
    kind: 'GPUDiagnostic',
    name: obj.metadata.name ?? '',
    ...(obj.metadata.namespace !== undefined ? { namespace: obj.metadata.namespace } : {}),
    ...(obj.metadata.uid !== undefined ? { uid: obj.metadata.uid } : {}),
  };
}
