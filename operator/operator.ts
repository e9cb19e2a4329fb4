/**
 * The operator process: informers for GPUDiagnostics, GPUHealthPolicies (those matching
 * --policy-selector), Nodes and agent Pods (always running, so /readyz reflects synced caches),
 * probes and metrics, and the controllers, which run only while this replica holds the leader
 * Lease, each with its own work queue. Losing the Lease aborts in-flight work; the next leader
 * re-runs whatever was left Running and re-checks whatever policy is due.
 */
import { readFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import type { KubernetesListObject, KubernetesObject, V1Node, V1Pod } from '@kubernetes/client-node';
import type { GPUDiagnostic, GPUHealthPolicy } from '../api/index.js';
import { diagnosticsPath, policiesPath } from '../api/paths.js';
import { ApiClient } from '../lib/kube/api-client.js';
import type { KubeTarget } from '../lib/kube/raw-request.js';
import { errorFields, type Logger } from '../lib/logger.js';
import { checkCertificateBundle } from '../lib/pem.js';
import { startOrUndo, type Teardown } from '../lib/teardown.js';
import type { OperatorConfig } from './config.js';
import { fileTokenProvider, type TokenProvider } from './agent-token.js';
import { DiagnosticController } from './diagnostic/controller.js';
import { apiEventRecorder } from './events.js';
import { createConnectionPool } from './fanout/agent-client.js';
import { CircuitBreaker } from './fanout/circuit-breaker.js';
import { apiWorkloads } from './workloads/index.js';
import { OperatorMetrics } from './metrics.js';
import { PolicyController } from './policy/controller.js';
import { validateSnapshotDocument } from '../agent/api/validate-snapshot.js';
import { validateGPUDiagnostic, validateGPUHealthPolicy } from '../api/validation.js';
import { ResilientInformer, stripCachedFields } from './runtime/informer.js';
import { LeaderElector, leaderIdentity } from './runtime/leader-election.js';
import { ProbeServer } from './runtime/probes.js';
import { WorkQueue } from './runtime/work-queue.js';
import { createMcpHttpServer, type McpHttpServer } from './mcp/http.js';

/** In-flight MCP requests get this long to finish their answer at shutdown. */
const MCP_CLOSE_GRACE_MS = 2_000;

/** Things the caller provides (tests and `dev up` inject a token provider). */
export interface OperatorDeps {
  /** The API server and credentials: lib/kube's lean connection, or client-node's KubeConfig (tests, exec-plugin kubeconfigs). */
  kc: KubeTarget;
  logger: Logger;
  tokenProvider?: TokenProvider;
}

/** A running operator replica. */
export class Operator {
  /** The MCP endpoint, when configured (served by every replica; the leader reconciles what it creates). */
  private mcp: McpHttpServer | undefined;
  private mcpAddress: AddressInfo | undefined;

  private leading:
    { queue: WorkQueue; controller: DiagnosticController; policyQueue: WorkQueue; policyController: PolicyController } | undefined;
  private stopped: Promise<void> | undefined;

  private constructor(
    private readonly config: Readonly<OperatorConfig>,
    private readonly deps: OperatorDeps,
    readonly metrics: OperatorMetrics,
    readonly probes: ProbeServer,
    private readonly informers: {
      diagnostics: ResilientInformer<GPUDiagnostic>[];
      policies: ResilientInformer<GPUHealthPolicy>;
      nodes: ResilientInformer<V1Node>;
      pods: ResilientInformer<V1Pod>;
    },
    private readonly elector: LeaderElector | undefined,
    private readonly controllerDeps: Omit<ConstructorParameters<typeof DiagnosticController>[0], never>,
  ) {}

  /**
   * Starts informers and probes, then competes for leadership (or leads at once without
   * election). What configuration can get wrong (the agent CA, the token file) is checked
   * before anything starts; a failed start stops what it started, so the process can exit.
   */
  static async start(config: Readonly<OperatorConfig>, deps: OperatorDeps): Promise<Operator> {
    const { kc, logger } = deps;
    if (kc.getCurrentCluster() === null) throw new Error('the kubeconfig has no current cluster');
    const caPem =
      config.agentCaFile === undefined
        ? undefined
        : checkCertificateBundle(await readFile(config.agentCaFile, 'utf8'), `--agent-ca-file ${config.agentCaFile}`);
    const tokenProvider = deps.tokenProvider ?? fileTokenProvider(config.agentTokenFile);
    // The token is needed for every agent request: an unreadable or empty file is a failed start.
    await tokenProvider();
    return startOrUndo(logger, (teardown) => Operator.startParts(config, deps, { caPem, tokenProvider }, teardown));
  }

  private static async startParts(
    config: Readonly<OperatorConfig>,
    deps: OperatorDeps,
    checked: { caPem: string | undefined; tokenProvider: TokenProvider },
    teardown: Teardown,
  ): Promise<Operator> {
    const { kc, logger } = deps;
    const { caPem, tokenProvider } = checked;
    // The validators compile on first use, stalling the event loop 120-180 ms each: do it now,
    // before this process leads, not while the first diagnostic's answers arrive.
    validateSnapshotDocument(undefined);
    validateGPUDiagnostic(undefined);
    validateGPUHealthPolicy(undefined);
    const metrics = new OperatorMetrics();
    const api = new ApiClient(kc, { timeoutMs: config.apiTimeoutMs });
    /** Lists one collection (the informers' first step and relists). */
    const lister =
      <T extends KubernetesObject>(path: string, labelSelector?: string) =>
      (signal: AbortSignal): Promise<KubernetesListObject<T>> =>
        api.request<KubernetesListObject<T>>({ method: 'GET', path, query: { labelSelector }, signal });
    const diagnosticPaths =
      config.namespaces.length === 0
        ? [{ name: 'gpudiagnostics', path: diagnosticsPath() }]
        : config.namespaces.map((namespace) => ({ name: `gpudiagnostics/${namespace}`, path: diagnosticsPath(namespace) }));
    const diagnostics = diagnosticPaths.map(
      ({ name, path }) =>
        new ResilientInformer<GPUDiagnostic>({
          name,
          kubeConfig: kc,
          path,
          list: lister<GPUDiagnostic>(path),
          logger,
        }),
    );
    const policySelector = config.policySelector !== '' ? config.policySelector : undefined;
    const policies = new ResilientInformer<GPUHealthPolicy>({
      name: 'gpuhealthpolicies',
      kubeConfig: kc,
      path: policiesPath(),
      ...(policySelector !== undefined ? { labelSelector: policySelector } : {}),
      list: lister<GPUHealthPolicy>(policiesPath(), policySelector),
      logger,
    });
    const nodes = new ResilientInformer<V1Node>({
      name: 'nodes',
      kubeConfig: kc,
      path: '/api/v1/nodes',
      list: lister<V1Node>('/api/v1/nodes'),
      trim: stripCachedFields,
      logger,
    });
    // Level-triggered: a Node key whose object is gone takes its metric series with it.
    nodes.onKey((key) => {
      if (nodes.get(key) === undefined) metrics.forgetNode(key);
    });
    const agentPodsPath = `/api/v1/namespaces/${encodeURIComponent(config.agentNamespace)}/pods`;
    const pods = new ResilientInformer<V1Pod>({
      name: 'agent-pods',
      kubeConfig: kc,
      path: agentPodsPath,
      labelSelector: config.agentSelector,
      list: lister<V1Pod>(agentPodsPath, config.agentSelector),
      trim: stripCachedFields,
      logger,
    });
    const all = [...diagnostics, policies, nodes, pods];
    for (const informer of all) informer.start();
    teardown.add('informers', () => Promise.all(all.map((i) => i.stop())));

    const probes = new ProbeServer({
      port: config.probePort,
      host: config.probeHost,
      registry: metrics.registry,
      ready: () => all.every((i) => i.hasSynced),
      logger,
    });
    await probes.start();
    teardown.add('probes', () => probes.stop());
    const breaker = new CircuitBreaker();
    metrics.observeCircuits(() => breaker.snapshot());
    const events = apiEventRecorder(kc, config.identity, logger);
    const controllerDeps = {
      kc,
      nodes,
      agentPods: pods,
      breaker,
      connections: createConnectionPool({
        scheme: config.agentScheme,
        maxSockets: config.fanoutConcurrency,
        ...(caPem !== undefined ? { caPem } : {}),
      }),
      tokenProvider,
      events,
      workloads: apiWorkloads(kc, events, metrics, logger.child({ component: 'workloads' }), config.apiTimeoutMs),
      apiTimeoutMs: config.apiTimeoutMs,
      metrics,
      logger: logger.child({ controller: 'gpudiagnostic' }),
      agentPort: config.agentPort,
      agentScheme: config.agentScheme,
      ...(caPem !== undefined ? { agentCaPem: caPem } : {}),
      fanoutConcurrency: config.fanoutConcurrency,
      fanoutRetries: config.fanoutRetries,
      defaultPerNodeTimeoutSeconds: config.defaultPerNodeTimeoutSeconds,
      policyGraceMs: config.policyGraceSeconds * 1000,
    };
    const operator: { self?: Operator } = {};
    const elector = config.leaderElection
      ? new LeaderElector({
          kubeConfig: kc,
          namespace: config.leaseNamespace,
          name: config.leaseName,
          identity: leaderIdentity(config.identity),
          // client-go's proportions: renew within 2/3 of the lease, retry several times per renewal.
          leaseDurationSeconds: config.leaseDurationSeconds,
          renewDeadlineMs: Math.floor((config.leaseDurationSeconds * 2000) / 3),
          retryPeriodMs: Math.min(2000, Math.floor((config.leaseDurationSeconds * 1000) / 7)),
          logger,
          // Half the shutdown grace for the controllers to stop, the rest to release the Lease.
          stopGraceMs: Math.floor(config.shutdownGraceMs / 2),
          onStartedLeading: (signal) => operator.self?.lead(signal),
          onStoppedLeading: (reason) => {
            logger.warn('stopped leading', { reason });
            metrics.leader.set(0);
          },
        })
      : undefined;
    const self = new Operator(config, deps, metrics, probes, { diagnostics, policies, nodes, pods }, elector, controllerDeps);
    if (config.mcp !== undefined) {
      const mcp = createMcpHttpServer({
        kc,
        namespace: config.mcp.namespace,
        readOnly: config.mcp.readOnly,
        allowedHosts: config.mcp.allowedHosts,
        audiences: [config.mcp.audience],
        rateLimit: config.mcp.rateLimit,
        logger: logger.child({ component: 'mcp' }),
        host: config.mcp.host,
        port: config.mcp.port,
        settings: { agentNamespace: config.agentNamespace, agentSelector: config.agentSelector },
      });
      self.mcpAddress = await mcp.start();
      teardown.add('mcp', () => mcp.stop());
      self.mcp = mcp;
    }
    operator.self = self;
    if (elector !== undefined) elector.start();
    else void self.lead(new AbortController().signal);
    logger.info('operator started', {
      probes: `${probes.address?.address ?? ''}:${probes.address?.port ?? ''}`,
      leaderElection: config.leaderElection,
      namespaces: config.namespaces.length === 0 ? 'all' : config.namespaces.join(','),
    });
    return self;
  }

  /** The MCP endpoint's address, when it is served. */
  get mcpEndpoint(): AddressInfo | undefined {
    return this.mcpAddress;
  }

  /** The probe server's address. */
  get probeAddress(): AddressInfo | undefined {
    return this.probes.address;
  }

  /** True while this replica runs the controllers. */
  get isLeading(): boolean {
    return this.leading !== undefined;
  }

  /** The leader's work: run the controllers until `signal` aborts. */
  private async lead(signal: AbortSignal): Promise<void> {
    const { logger, metrics } = { logger: this.deps.logger, metrics: this.metrics };
    metrics.leader.set(1);
    const queue = new WorkQueue({
      concurrency: this.config.workers,
      onOutcome: (outcome) => {
        metrics.reconciles.inc({ controller: 'gpudiagnostic', outcome: outcome.kind });
        metrics.reconcileDuration.observe({ controller: 'gpudiagnostic' }, outcome.durationMs / 1000);
        metrics.queueDepth.set({ controller: 'gpudiagnostic' }, queue.depth);
        if (outcome.kind === 'retry' || outcome.kind === 'stalled')
          logger.warn('reconcile failed', { key: outcome.key, kind: outcome.kind, ...errorFields(outcome.error) });
      },
    });
    const policyQueue = new WorkQueue({
      concurrency: this.config.workers,
      onOutcome: (outcome) => {
        metrics.reconciles.inc({ controller: 'gpuhealthpolicy', outcome: outcome.kind });
        metrics.reconcileDuration.observe({ controller: 'gpuhealthpolicy' }, outcome.durationMs / 1000);
        metrics.queueDepth.set({ controller: 'gpuhealthpolicy' }, policyQueue.depth);
        if (outcome.kind === 'retry' || outcome.kind === 'stalled')
          logger.warn('reconcile failed', { key: outcome.key, kind: outcome.kind, ...errorFields(outcome.error) });
      },
    });
    const controller = new DiagnosticController(
      {
        ...this.controllerDeps,
        diagnosticGone: (key) => this.informers.diagnostics.every((i) => i.get(key) === undefined),
        cachedDiagnostic: (key) => this.informers.diagnostics.map((i) => i.get(key)).find((d) => d !== undefined),
      },
      queue,
    );
    const policyController = new PolicyController(
      {
        ...this.controllerDeps,
        logger: logger.child({ controller: 'gpuhealthpolicy' }),
        ...(this.config.policyMaxIntervalSeconds > 0 ? { maxIntervalMs: this.config.policyMaxIntervalSeconds * 1000 } : {}),
      },
      policyQueue,
    );
    this.leading = { queue, controller, policyQueue, policyController };
    const unsubscribe = [
      ...this.informers.diagnostics.map((i) => i.onKey((key) => queue.add(key))),
      this.informers.policies.onKey((key) => policyQueue.add(key)),
    ];
    // Reconcile only once every cache is loaded: a diagnostic judged against an empty Node or Pod
    // cache would fail with NoMatchingNodes for good. Keys arriving meanwhile wait in the queues.
    await Promise.all(
      [...this.informers.diagnostics, this.informers.policies, this.informers.nodes, this.informers.pods].map((i) => i.waitForSync(signal)),
    ).catch((err: unknown) => logger.warn('waiting for the caches before reconciling', errorFields(err)));
    queue.start((key, s) => controller.reconcile(key, s));
    policyQueue.start((key, s) => policyController.reconcile(key, s));
    for (const informer of this.informers.diagnostics) for (const key of informer.keys()) queue.add(key);
    for (const key of this.informers.policies.keys()) policyQueue.add(key);
    if (!signal.aborted)
      await policyController
        .sweepOrphans(signal)
        .catch((err: unknown) => logger.warn('could not release the marks of deleted policies', errorFields(err)));
    logger.info('leading: controllers running');
    await new Promise<void>((resolve) => (signal.aborted ? resolve() : signal.addEventListener('abort', () => resolve(), { once: true })));
    for (const u of unsubscribe) u();
    controller.abortAll();
    policyController.abortAll();
    await Promise.all([queue.shutDown(this.queueGraceMs), policyQueue.shutDown(this.queueGraceMs)]);
    this.leading = undefined;
  }

  /** How long stopping controllers may wait for reconciles in flight. */
  private get queueGraceMs(): number {
    return Math.floor(this.config.shutdownGraceMs / 2);
  }

  /**
   * Stops within --shutdown-grace-seconds: MCP calls waiting for a diagnostic answer with their
   * progress, the controllers stop (runs in flight are aborted; their objects stay as they are
   * and the next leader re-runs them), the Lease is released, then informers and servers stop.
   */
  stop(): Promise<void> {
    this.stopped ??= (async () => {
      this.mcp?.handler.drain();
      if (this.elector !== undefined) await this.elector.stop(true);
      if (this.leading !== undefined) {
        this.leading.controller.abortAll();
        this.leading.policyController.abortAll();
        await Promise.all([this.leading.queue.shutDown(this.queueGraceMs), this.leading.policyQueue.shutDown(this.queueGraceMs)]);
        this.leading = undefined;
      }
      await Promise.all(
        [...this.informers.diagnostics, this.informers.policies, this.informers.nodes, this.informers.pods].map((i) => i.stop()),
      );
      await this.mcp?.stop(MCP_CLOSE_GRACE_MS);
      await this.probes.stop();
      this.deps.logger.info('operator stopped');
    })();
    return this.stopped;
  }
}
