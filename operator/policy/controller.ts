/**
 * The GPUHealthPolicy controller. Level-triggered: the queue carries policy names; each pass
 * re-reads the policy and decides from its status whether a periodic check is due
 * (lastCheck + interval, jittered ±10%, or a new generation). A check fans out to the governed
 * nodes in the background; when it finishes, the key comes back, the actions are planned
 * (actions.ts) and applied unless dry run (apply-actions.ts), and the status is computed
 * (compute.ts) and written once, with conflict retry. Otherwise the key asks to come back when
 * the next check is due.
 *
 * A deleted policy releases what it recorded on Nodes (its taints and GPUHealthy verdicts);
 * sweepOrphans() does the same at leadership start for policies deleted while no one led.
 */
import { randomBytes } from 'node:crypto';
import type { Agent as HttpAgent } from 'node:http';
import type { V1Node, V1Pod } from '@kubernetes/client-node';
import { API_VERSION, type GPUHealthPolicy, type GPUHealthPolicyStatus } from '../../api/index.js';
import { describeErrors, validateGPUHealthPolicy } from '../../api/validation.js';
import { ApiClient } from '../../lib/kube/api-client.js';
import type { KubeTarget } from '../../lib/kube/raw-request.js';
import { policiesPath } from '../../api/paths.js';
import { errorFields, type Logger } from '../../lib/logger.js';
import type { TokenProvider } from '../agent-token.js';
import { summaryScore, type NodeResultInput } from '../diagnostic/results.js';
import type { EventRecorder, EventSubject } from '../events.js';
import type { CircuitBreaker } from '../fanout/circuit-breaker.js';
import { cpuSlices } from '../../lib/cpu-slices.js';
import { fanOut, type NodeOutcome } from '../fanout/fanout.js';
import { compileSelector, InvalidSelectorError } from '../fanout/label-selector.js';
import { resolveTargets, type NodeTarget } from '../fanout/targets.js';
import type { OperatorMetrics } from '../metrics.js';
import { isNotFound } from '../runtime/errors.js';
import { writeStatus } from '../runtime/status-writer.js';
import type { ResilientInformer } from '../runtime/informer.js';
import type { ReconcileResult, WorkQueue } from '../runtime/work-queue.js';
import { parseAdvertisedGpus, PolicyError, resolvePolicy, scoreNode, type ResolvedPolicy } from '../scoring/index.js';
import {
  planActions,
  policiesRecordedOn,
  taintState,
  TAINTED_BY_ANNOTATION,
  UNHEALTHY_BY_ANNOTATION,
  parseTaintedBy,
  parseUnhealthyBy,
  type ActionsPlan,
  type PlanNode,
} from './actions.js';
import { applyActions } from './apply-actions.js';
import { POD_GPU_HEALTHY_CONDITION, type Workloads } from '../workloads/index.js';
import { checkedGeneration, computePolicyStatus, nextCheckAt, POLICY_STATUS_LIMITS, type PolicyObservation } from './compute.js';

/** A check in progress is looked at again at least this often. */
const RUNNING_RECHECK_MS = 10_000;
/** At most this many Events of each kind per check. */
const MAX_EVENTS_PER_KIND = 10;
/** A check never runs longer than this, whatever the interval. */
const MAX_CHECK_MS = 10 * 60_000;

/** What the controller needs. */
export interface PolicyControllerDeps {
  /** The API server and credentials (a lib/kube connection or client-node's KubeConfig). */
  kc: KubeTarget;
  nodes: ResilientInformer<V1Node>;
  agentPods: ResilientInformer<V1Pod>;
  breaker: CircuitBreaker;
  connections: HttpAgent;
  tokenProvider: TokenProvider;
  events: EventRecorder;
  /** Finds the pods on the GPUs of finished checks, tells those on critical GPUs, marks them (podCondition). */
  workloads: Workloads;
  metrics: OperatorMetrics;
  logger: Logger;
  agentPort: number;
  agentScheme: 'http' | 'https';
  agentCaPem?: string;
  fanoutConcurrency: number;
  fanoutRetries: number;
  defaultPerNodeTimeoutSeconds: number;
  /** Check at least this often whatever spec.interval says (0 or unset: no cap; demos and tests). */
  maxIntervalMs?: number;
  now?: () => Date;
  /** Jitter source in [0, 1) (default Math.random). */
  random?: () => number;
  /** Deadline of one API call (default lib/kube's). */
  apiTimeoutMs?: number;
}

interface Run {
  key: string;
  generation: number;
  policy: ResolvedPolicy;
  targeted: number;
  completed: NodeResultInput[];
  done: boolean;
  abort: AbortController;
}

/** Reconciles GPUHealthPolicies. */
export class PolicyController {
  private readonly runs = new Map<string, Run>();
  private readonly api: ApiClient;
  private readonly now: () => Date;
  private readonly random: () => number;

  constructor(
    private readonly deps: PolicyControllerDeps,
    private readonly queue: WorkQueue,
  ) {
    this.api = new ApiClient(deps.kc, deps.apiTimeoutMs !== undefined ? { timeoutMs: deps.apiTimeoutMs } : {});
    this.now = deps.now ?? ((): Date => new Date());
    this.random = deps.random ?? Math.random;
  }

  /** Checks still asking agents (for tests and shutdown). */
  get activeRuns(): number {
    return this.runs.size;
  }

  /** Aborts every check (leadership lost or shutdown); the next leader re-checks what is due. */
  abortAll(): void {
    for (const run of this.runs.values()) run.abort.abort(new Error('operator stopping'));
    this.runs.clear();
  }

  /** One reconcile pass for the policy named `key`. */
  async reconcile(key: string, signal: AbortSignal): Promise<ReconcileResult | void> {
    let obj: GPUHealthPolicy;
    try {
      obj = await this.api.request<GPUHealthPolicy>({ method: 'GET', path: policiesPath(key), signal });
    } catch (err) {
      if (!isNotFound(err)) throw err;
      this.forget(key);
      await this.release(key, signal);
      return;
    }
    const generation = obj.metadata.generation ?? 1;
    const log = this.deps.logger.child({ policy: key });

    const stalled = this.validate(obj);
    if ('stalled' in stalled) {
      this.forget(key);
      const before = obj.status?.conditions?.find((c) => c.type === 'Stalled');
      await this.apply(obj, stalled.stalled, signal);
      if (before?.status !== 'True' || before.reason !== stalled.stalled.reason)
        await this.deps.events.warning(subjectOf(obj), stalled.stalled.reason, stalled.stalled.message, signal);
      return;
    }
    const policy = stalled.policy;

    let run = this.runs.get(key);
    if (run !== undefined && run.generation !== generation) {
      this.forget(key);
      run = undefined;
    }
    if (policy.suspend) {
      this.forget(key);
      await this.apply(obj, { kind: 'suspended' }, signal);
      return;
    }
    if (run !== undefined) {
      if (!run.done) return { requeueAfterMs: RUNNING_RECHECK_MS };
      return this.finish(obj, run, signal, log);
    }
    const dueInMs = this.dueInMs(obj, policy);
    if (dueInMs > 0) return { requeueAfterMs: dueInMs };
    return this.startCheck(obj, policy, signal, log);
  }

  /** Releases the marks of policies recorded on Nodes that no longer exist (deleted while no one led). */
  async sweepOrphans(signal: AbortSignal): Promise<void> {
    const names = new Set<string>();
    for (const node of this.deps.nodes.list()) for (const p of policiesRecordedOn(node)) names.add(p);
    for (const name of names) {
      signal.throwIfAborted();
      try {
        await this.api.request({ method: 'GET', path: policiesPath(name), signal });
      } catch (err) {
        if (!isNotFound(err)) {
          this.deps.logger.warn('could not look up a policy recorded on nodes', { policy: name, ...errorFields(err) });
          continue;
        }
        await this.release(name, signal);
      }
    }
  }

  private validate(obj: GPUHealthPolicy): { policy: ResolvedPolicy } | { stalled: Extract<PolicyObservation, { kind: 'stalled' }> } {
    const valid = validateGPUHealthPolicy(obj);
    if (!valid.ok) return { stalled: { kind: 'stalled', reason: 'InvalidSpec', message: describeErrors(valid.errors) } };
    try {
      compileSelector(obj.spec.nodeSelector, 'spec.nodeSelector');
      return { policy: resolvePolicy(obj.spec) };
    } catch (err) {
      if (err instanceof InvalidSelectorError) return { stalled: { kind: 'stalled', reason: 'InvalidSpec', message: err.message } };
      if (err instanceof PolicyError) return { stalled: { kind: 'stalled', reason: 'InvalidPolicy', message: err.message } };
      throw err;
    }
  }

  private intervalMs(policy: ResolvedPolicy): number {
    const cap = this.deps.maxIntervalMs ?? 0;
    return cap > 0 ? Math.min(cap, policy.intervalMs) : policy.intervalMs;
  }

  /** Milliseconds until the next check is due (≤ 0: now). */
  private dueInMs(obj: GPUHealthPolicy, policy: ResolvedPolicy): number {
    const status = obj.status;
    if (!checkedGeneration(status, obj.metadata.generation ?? 1)) return 0;
    const last = Date.parse(status?.lastCheckTime ?? '');
    if (Number.isNaN(last)) return 0;
    const interval = this.intervalMs(policy);
    const next = Date.parse(status?.nextCheckTime ?? '');
    // A shorter interval (or cap) applies at once; a jittered nextCheckTime is honoured otherwise.
    const due = Number.isNaN(next) ? last + interval : Math.min(next, last + Math.round(interval * 1.1));
    return due - this.now().getTime();
  }

  private governedTargets(obj: GPUHealthPolicy): NodeTarget[] {
    const nodes = this.deps.nodes.list();
    const selector = obj.spec.nodeSelector;
    const targets = resolveTargets({
      nodes,
      agentPods: this.deps.agentPods.list(),
      ...(selector !== undefined ? { nodeSelector: selector } : {}),
    });
    // A node this policy holds a mark on stays governed (as not checked) while it matches the
    // selector, even when its agent pod is gone: unknown is not healthy, so its taint stays.
    const matches = compileSelector(selector, 'spec.nodeSelector');
    const known = new Set(targets.map((t) => t.node));
    const name = obj.metadata.name ?? '';
    for (const node of nodes) {
      const n = node.metadata?.name ?? '';
      if (n === '' || known.has(n) || !policiesRecordedOn(node).has(name) || !matches(node.metadata?.labels)) continue;
      targets.push({ node: n, missingReason: `no gpudiag agent pod on ${n}` });
    }
    return targets.sort((a, b) => a.node.localeCompare(b.node));
  }

  private async startCheck(obj: GPUHealthPolicy, policy: ResolvedPolicy, signal: AbortSignal, log: Logger): Promise<ReconcileResult> {
    const key = obj.metadata.name ?? '';
    const generation = obj.metadata.generation ?? 1;
    const targets = this.governedTargets(obj);
    const run: Run = { key, generation, policy, targeted: targets.length, completed: [], done: false, abort: new AbortController() };
    this.runs.set(key, run);
    if (!checkedGeneration(obj.status, generation)) await this.apply(obj, { kind: 'checking', governed: targets.length }, signal);
    log.debug('policy check started', { nodes: targets.length, checks: policy.checks.join(',') });

    const perNodeMs = this.deps.defaultPerNodeTimeoutSeconds * 1000;
    const overallMs = Math.max(perNodeMs * 2, Math.min(this.intervalMs(policy), MAX_CHECK_MS));
    const now = this.now();
    void fanOut({
      targets,
      checks: policy.checks,
      xidSince: new Date(now.getTime() - policy.xid.lookbackMs),
      perNodeTimeoutMs: perNodeMs,
      signal: AbortSignal.any([run.abort.signal, AbortSignal.timeout(overallMs)]),
      concurrency: this.deps.fanoutConcurrency,
      retries: this.deps.fanoutRetries,
      breaker: this.deps.breaker,
      tokenProvider: () => this.deps.tokenProvider(),
      agentPort: this.deps.agentPort,
      scheme: this.deps.agentScheme,
      ...(this.deps.agentCaPem !== undefined ? { caPem: this.deps.agentCaPem } : {}),
      connections: this.deps.connections,
      correlationId: `policy.${key.slice(0, 48)}.${randomBytes(3).toString('hex')}`,
      logger: log,
      retainSnapshots: false,
      onResult: (outcome) => this.record(run, outcome),
    })
      .then(
        () => undefined,
        (err: unknown) => log.error('policy fan-out failed', errorFields(err)),
      )
      .finally(() => {
        run.done = true;
        if (this.runs.get(key) === run) this.queue.add(key);
      });
    return { requeueAfterMs: RUNNING_RECHECK_MS };
  }

  /** Scores one node's outcome as it arrives. */
  private record(run: Run, outcome: NodeOutcome): void {
    this.deps.metrics.fanoutResults.inc({ result: outcome.result });
    const input: NodeResultInput = {
      node: outcome.node,
      result: outcome.result,
      durationMs: outcome.durationMs,
      ...(outcome.message !== undefined ? { message: outcome.message } : {}),
    };
    // A check retains one score per governed node until it finishes: only what the policy status
    // shows (worst nodes and the worst POLICY_STATUS_LIMITS.recentXids XIDs) is kept.
    if (outcome.result === 'Succeeded' && outcome.snapshot !== undefined) {
      const node = this.deps.nodes.get(outcome.node);
      const advertised = node === undefined ? {} : { advertised: parseAdvertisedGpus(node) };
      input.score = summaryScore(scoreNode(outcome.snapshot, run.policy, this.now(), advertised), POLICY_STATUS_LIMITS.recentXids);
    }
    run.completed.push(input);
  }

  /** The check finished: plan and apply the actions, write the status, announce what changed. */
  private async finish(obj: GPUHealthPolicy, run: Run, signal: AbortSignal, log: Logger): Promise<ReconcileResult> {
    const name = obj.metadata.name ?? '';
    const { policy } = run;
    const results = await this.deps.workloads.resolver.resolve(run.completed, false, signal);
    const plan = this.plan(name, policy, results);
    let shown: ActionsPlan | undefined = plan;
    if (!policy.actions.taint.enabled && !policy.actions.nodeCondition.enabled && plan.remove.length === 0 && plan.verdicts.length === 0)
      shown = undefined;
    if (shown !== undefined && !plan.dryRun && (plan.add.length > 0 || plan.remove.length > 0 || plan.verdicts.length > 0)) {
      const applied = await applyActions({
        kc: this.deps.kc,
        policy: name,
        plan,
        taint: { key: policy.actions.taint.key, effect: policy.actions.taint.effect },
        cached: (n) => this.deps.nodes.get(n),
        logger: log,
        signal,
      });
      const failed = new Set(applied.failed.map((f) => f.node));
      // A failed add leaves the node untainted; a failed removal leaves the taint in place.
      const stillTainted = plan.remove.filter((n) => failed.has(n));
      shown = {
        ...plan,
        add: plan.add.filter((n) => !failed.has(n)),
        tainted: [...plan.tainted.filter((n) => !(failed.has(n) && plan.add.includes(n))), ...stillTainted].sort(),
        message:
          applied.failed.length > 0
            ? `${plan.message}; could not update ${applied.failed.length} node(s) (retried at the next check): ${applied.failed
                .slice(0, 5)
                .map((f) => f.node)
                .join(', ')}`
            : plan.message,
      };
      for (const n of applied.added.slice(0, MAX_EVENTS_PER_KIND))
        await this.deps.events.warning(
          subjectOf(obj),
          'NodeTainted',
          `${n}: tainted ${policy.actions.taint.key}:${policy.actions.taint.effect} (critical)`,
          signal,
        );
      for (const n of applied.removed.slice(0, MAX_EVENTS_PER_KIND))
        await this.deps.events.normal(subjectOf(obj), 'TaintRemoved', `${n}: taint ${policy.actions.taint.key} removed`, signal);
    }

    const previous = obj.status;
    const now = this.now();
    const next = nextCheckAt(now, this.intervalMs(policy), this.random());
    const written = await this.apply(
      obj,
      { kind: 'checked', results, nextCheckTime: next, ...(shown !== undefined ? { actions: shown } : {}) },
      signal,
    );
    this.runs.delete(name);
    await this.announce(obj, previous, written, plan, results, signal);
    await this.deps.workloads.notifier.notify(results, signal);
    if (policy.actions.podCondition.enabled && !plan.dryRun) {
      const pods = await this.deps.workloads.podConditions.apply(name, results, signal);
      if (pods.markedFalse + pods.markedTrue + pods.failed > 0)
        log.info('pod conditions written', { condition: POD_GPU_HEALTHY_CONDITION, ...pods });
    } else await this.releasePodConditions(name, signal);
    const counts = written.nodes ?? {};
    log.info('policy check completed', {
      nodes: counts.governed,
      critical: counts.critical,
      unknown: counts.unknown,
      minScore: counts.minScore,
      tainted: shown?.tainted.length ?? 0,
      held: shown?.held.length ?? 0,
    });
    return { requeueAfterMs: Math.max(0, next.getTime() - now.getTime()) };
  }

  private plan(name: string, policy: ResolvedPolicy, results: readonly NodeResultInput[]): ActionsPlan {
    const governed = new Set(results.map((r) => r.node));
    const planNodes = results.map((r): PlanNode => {
      const node = this.deps.nodes.get(r.node);
      const marks = node === undefined ? { heldTaint: false, foreignTaint: false } : taintState(node, name, policy.actions.taint.key);
      const heldVerdict = node !== undefined && parseUnhealthyBy(node.metadata?.annotations?.[UNHEALTHY_BY_ANNOTATION]).has(name);
      const checked = r.result === 'Succeeded' && r.score !== undefined;
      return {
        node: r.node,
        status: checked ? (r.score?.status ?? 'unknown') : 'unknown',
        checked,
        ...(r.score !== undefined ? { score: r.score.score } : {}),
        message: r.message ?? r.score?.worstMessage ?? '',
        ...marks,
        heldVerdict,
      };
    });
    const outOfScope = this.deps.nodes
      .list()
      .filter((n) => !governed.has(n.metadata?.name ?? '') && policiesRecordedOn(n).has(name))
      .map((n) => n.metadata?.name ?? '');
    return planActions({ policy: name, actions: policy.actions, governed: planNodes, outOfScope });
  }

  /** Sets the Pod condition back to True on the pods `policy` marked (it was deleted, or its podCondition turned off). */
  private async releasePodConditions(policy: string, signal: AbortSignal): Promise<void> {
    if (this.deps.workloads.podConditions.markedBy(policy) === 0) return;
    const pods = await this.deps.workloads.podConditions.apply(policy, [], signal);
    this.deps.logger.info('released the pod conditions of a policy', { policy, ...pods });
  }

  /** Removes every mark `policy` recorded on Nodes (it was deleted). */
  private async release(policy: string, signal: AbortSignal): Promise<void> {
    await this.releasePodConditions(policy, signal);
    const nodes = this.deps.nodes.list().filter((n) => policiesRecordedOn(n).has(policy));
    if (nodes.length === 0) return;
    const tainted = nodes
      .filter((n) => parseTaintedBy(n.metadata?.annotations?.[TAINTED_BY_ANNOTATION]).has(policy))
      .map((n) => n.metadata?.name ?? '');
    const judged = nodes
      .filter((n) => parseUnhealthyBy(n.metadata?.annotations?.[UNHEALTHY_BY_ANNOTATION]).has(policy))
      .map((n) => n.metadata?.name ?? '');
    const applied = await applyActions({
      kc: this.deps.kc,
      policy,
      plan: {
        dryRun: false,
        taintEnabled: false,
        conditionEnabled: false,
        add: [],
        remove: tainted,
        keep: [],
        held: [],
        tainted: [],
        allowed: 0,
        verdicts: judged.map((node) => ({ node, verdict: 'release', message: '' })),
        message: '',
      },
      taint: { key: '', effect: '' },
      cached: (n) => this.deps.nodes.get(n),
      logger: this.deps.logger.child({ policy }),
      signal,
    });
    this.deps.logger.info('released the marks of a deleted policy', {
      policy,
      taintsRemoved: applied.removed.length,
      failed: applied.failed.length,
    });
    if (applied.failed.length > 0) throw new Error(`could not release ${applied.failed.length} node(s) of deleted policy ${policy}`);
  }

  /** Events for what changed since the previous check, and the score metrics. */
  private async announce(
    obj: GPUHealthPolicy,
    previous: GPUHealthPolicyStatus | undefined,
    status: GPUHealthPolicyStatus,
    plan: ActionsPlan,
    results: readonly NodeResultInput[],
    signal: AbortSignal,
  ): Promise<void> {
    const { metrics, events } = this.deps;
    const subject = subjectOf(obj);
    // A node deleted meanwhile gets no series: nothing would remove them again. One node at a
    // time in the process's slices: 5,000 nodes in one go stalled the event loop ~100 ms.
    await Promise.all(
      results.map((r) =>
        cpuSlices.run(() => {
          if (r.score !== undefined && this.deps.nodes.get(r.node) !== undefined) metrics.recordNodeScore(r.score);
        }),
      ),
    );
    const wasCritical = new Set((previous?.worstNodes ?? []).filter((n) => n.status === 'critical').map((n) => n.name));
    const newlyCritical = (status.worstNodes ?? []).filter((n) => n.status === 'critical' && !wasCritical.has(n.name));
    for (const n of newlyCritical.slice(0, MAX_EVENTS_PER_KIND))
      await events.warning(subject, 'NodeCritical', `${n.name}: ${n.message ?? 'critical'}`, signal);
    if (!plan.dryRun) {
      const wasHeld = new Set(previous?.actions?.heldByGuardrail ?? []);
      for (const n of plan.held.filter((h) => !wasHeld.has(h)).slice(0, MAX_EVENTS_PER_KIND)) {
        await events.warning(
          subject,
          'HeldByGuardrail',
          `${n}: critical but not tainted (maxTaintedPercent ${this.policyPercent(obj)}% allows ${plan.allowed} tainted node(s))`,
          signal,
        );
      }
    }
  }

  private policyPercent(obj: GPUHealthPolicy): number {
    return obj.spec.actions?.taint?.maxTaintedPercent ?? 10;
  }

  /** The one place status is written: recompute on the freshest object, retry on conflict. */
  private async apply(obj: GPUHealthPolicy, observation: PolicyObservation, signal: AbortSignal): Promise<GPUHealthPolicyStatus> {
    const name = obj.metadata.name ?? '';
    return writeStatus(
      obj,
      (current) => computePolicyStatus(current.status, current.metadata.generation ?? 1, observation, this.now()),
      {
        replace: (current, status) =>
          this.api.request<GPUHealthPolicy>({ method: 'PUT', path: `${policiesPath(name)}/status`, body: { ...current, status }, signal }),
        reread: () => this.api.request<GPUHealthPolicy>({ method: 'GET', path: policiesPath(name), signal }),
      },
      signal,
    );
  }

  private forget(key: string): void {
    const run = this.runs.get(key);
    if (run === undefined) return;
    run.abort.abort(new Error('policy changed'));
    this.runs.delete(key);
  }
}

function subjectOf(obj: GPUHealthPolicy): EventSubject {
  return {
    apiVersion: API_VERSION,
    kind: 'GPUHealthPolicy',
    name: obj.metadata.name ?? '',
    ...(obj.metadata.uid !== undefined ? { uid: obj.metadata.uid } : {}),
  };
}
