/**
 * The node agent: NVML (or the explicit no-GPU mode), the XID sources and the HTTP API,
 * started in that order and stopped in reverse. Everything configuration can get wrong (TLS
 * files, the kubeconfig) is checked before anything starts; a failed start stops what it
 * started. `start` resolves only once the socket is bound.
 */
import { readFile } from 'node:fs/promises';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createSecureContext } from 'node:tls';
import { exposedGc, HeapTrim, type HeapTrimResult } from '../lib/heap-trim.js';
import { close, createGuardedServer, listen } from '../lib/http/server.js';
import { errorFields, type Logger } from '../lib/logger.js';
import { settlesWithin } from '../lib/settle.js';
import { clip } from '../lib/text.js';
import { startOrUndo } from '../lib/teardown.js';
import { DEFAULT_HEAP_TRIM_IDLE_MS, type AgentConfig } from './config.js';
import type { CallerAuthorizer, TokenAuthenticator } from './auth/token-reviewer.js';
import { createRequestHandler } from './http-api.js';
import { IdleHeapTrimmer } from './idle-heap-trimmer.js';
import { AgentMetrics } from './metrics.js';
import { NvmlBinding, type NvmlBindingOptions } from './nvml/binding.js';
import { bindingEventSource, bindingSnapshotSource, threadSources, type NvmlEventSource, type NvmlSnapshotSource } from './nvml/sources.js';
import { GpuPodsService } from './pod-resources/gpu-pods-service.js';
import { SnapshotService } from './snapshot-service.js';
import { XidService } from './xid-service.js';

/** The agent's version, reported in every snapshot. */
export const AGENT_VERSION = '0.1.0';
/** /healthz fails when the event loop heartbeat is older than this. */
const LIVENESS_STALL_MS = 10_000;
/** Open connections the API accepts: the operator needs a handful, probes and scrapes a few more. */
const MAX_CONNECTIONS = 1024;

/** Things tests (and the simulated fleet) may inject instead of the defaults. */
export interface AgentDeps {
  logger: Logger;
  /** Replaces the --token-verification verifier (the simulated fleet shares one across its agents). */
  authenticator?: TokenAuthenticator;
  /** Export process metrics (default true; agents sharing a process turn them off). */
  processMetrics?: boolean;
}

/** How a stop ended: `clean` is false when NVML calls were still blocked when the grace ran out. */
export interface AgentStopResult {
  clean: boolean;
}

/** Reads and checks the serving certificate and key (a bad PEM or a mismatched key fails here, before anything starts). */
async function loadTls(tls: NonNullable<AgentConfig['tls']>): Promise<{ cert: Buffer; key: Buffer }> {
  const [cert, key] = await Promise.all([readFile(tls.certFile), readFile(tls.keyFile)]);
  try {
    createSecureContext({ cert, key });
  } catch (err) {
    throw new Error(`--tls-cert/--tls-key: ${tls.certFile} and ${tls.keyFile} are not a usable certificate and key`, { cause: err });
  }
  return { cert, key };
}

/**
 * The caller check for --auth tokenreview: tokens verified as --token-verification says (locally
 * against the issuer's keys, by TokenReview, or locally with TokenReview as the fallback),
 * through the kubeconfig given, else the in-cluster configuration (mounted ServiceAccount token
 * and CA). Loaded only when auth is on, and without client-node: every call is one request over
 * node:https. Each verification is counted in `metrics`.
 */
async function callerAuthorizer(
  config: Readonly<AgentConfig>,
  injected: TokenAuthenticator | undefined,
  metrics: AgentMetrics,
  logger: Logger,
): Promise<CallerAuthorizer> {
  const { CallerAuthorizer } = await import('./auth/token-reviewer.js');
  const { issuerKeysOf, tokenVerifier } = await import('./auth/token-verifier.js');
  let authenticator = injected;
  if (authenticator === undefined) {
    const where = config.kubeconfig !== undefined ? `the kubeconfig ${config.kubeconfig}` : 'the in-cluster configuration';
    try {
      const target =
        config.kubeconfig !== undefined
          ? await (await import('../lib/kube/kubeconfig.js')).loadKubeconfig(config.kubeconfig)
          : await (await import('../lib/kube/connection.js')).inClusterConnection({ service: config.kubernetesService });
      authenticator = tokenVerifier(target, { mode: config.tokenVerification ?? 'auto', audience: config.tokenAudience, logger });
    } catch (err) {
      throw new Error(`cannot load ${where}`, { cause: err });
    }
  }
  const keys = issuerKeysOf(authenticator);
  if (keys !== undefined) metrics.observeKeyRefreshes(() => keys.refreshes);
  return new CallerAuthorizer(authenticator, new Set(config.allowedCallers), Date.now, (method, result) =>
    metrics.tokenVerifications.inc({ method, result }),
  );
}

/** A running agent. */
export class Agent {
  private heartbeat = Date.now();
  private readonly heartbeatTimer: NodeJS.Timeout;
  private stopping: Promise<AgentStopResult> | undefined;

  private constructor(
    readonly address: AddressInfo,
    readonly snapshots: SnapshotService,
    readonly metrics: AgentMetrics,
    private readonly server: Server,
    private readonly xid: XidService,
    private readonly nvml: NvmlSnapshotSource | undefined,
    private readonly nvmlEvents: NvmlEventSource | undefined,
    private readonly logger: Logger,
    private readonly shutdownGraceMs: number,
    private readonly heapTrimmer: IdleHeapTrimmer | undefined,
  ) {
    this.heartbeatTimer = setInterval(() => (this.heartbeat = Date.now()), 1000);
    this.heartbeatTimer.unref();
  }

  /** Starts NVML, the XID sources and the HTTP server; rejects if the port cannot be bound. */
  static async start(config: Readonly<AgentConfig>, deps: AgentDeps): Promise<Agent> {
    const logger = deps.logger.child({ node: config.nodeName });
    const tls = config.tls === undefined ? undefined : await loadTls(config.tls);
    const metrics = new AgentMetrics(deps.processMetrics ?? true);
    const authorizer = config.auth === 'none' ? undefined : await callerAuthorizer(config, deps.authenticator, metrics, logger);
    const heapTrimIdleMs = config.heapTrimIdleMs ?? DEFAULT_HEAP_TRIM_IDLE_MS;
    const gc = heapTrimIdleMs > 0 ? exposedGc() : undefined;
    if (heapTrimIdleMs > 0 && gc === undefined)
      logger.info('idle heap trim is off: node runs without --expose-gc (the agent image passes it)');
    const heapTrimmed =
      (thread: 'main' | 'nvml') =>
      (result: HeapTrimResult): void => {
        metrics.heapTrims.inc({ thread });
        logger.debug('heap trimmed', { thread, beforeBytes: result.beforeBytes, afterBytes: result.afterBytes });
      };
    return startOrUndo(logger, async (teardown) => {
      const startedAt = new Date().toISOString();

      const { nvml, nvmlEvents, mode, modeReason, driverVersion } = await Agent.initNvml(
        config,
        logger,
        gc === undefined ? undefined : heapTrimmed('nvml'),
      );
      if (nvml !== undefined) teardown.add('nvml', () => nvml.stop(config.shutdownGraceMs));
      if (nvml !== undefined) metrics.observeNvmlHungCalls(() => nvml.hungCalls().length);
      if (nvmlEvents !== undefined) teardown.add('nvml events', () => nvmlEvents.stop(config.shutdownGraceMs));
      const xid = new XidService({
        kmsgPath: config.kmsgPath,
        kmsgPollMs: config.kmsgPollMs,
        ...(config.cursorFile !== undefined ? { historyPath: config.cursorFile } : {}),
        ...(config.historyFlushMs !== undefined ? { historyFlushMs: config.historyFlushMs } : {}),
        ...(config.bootIdPath !== undefined ? { bootIdPath: config.bootIdPath } : {}),
        ...(nvmlEvents !== undefined ? { nvmlEvents } : {}),
        logger,
        onXid: (code, source) => metrics.xidEvents.inc({ xid: String(code), source }),
      });
      // Known before the first kernel record is read: it picks the NVLink5 decode layout.
      xid.setDriverVersion(driverVersion);
      await xid.start();
      teardown.add('xid', () => xid.stop());

      // The pods of each GPU: from the kubelet's pod-resources API, else from GPU processes' cgroups.
      const pods =
        nvml === undefined
          ? undefined
          : new GpuPodsService({
              socketPath: config.podResourcesSocket,
              procRoot: config.procRoot,
              cacheMs: config.snapshotCacheMs,
              logger,
            });
      const snapshots = new SnapshotService({
        nodeName: config.nodeName,
        nvml,
        xid,
        ...(pods !== undefined ? { pods } : {}),
        metrics,
        cacheMs: config.snapshotCacheMs,
        agentStatus: () => ({ version: AGENT_VERSION, startedAt, mode, ...(modeReason !== undefined ? { modeReason } : {}) }),
      });
      if (authorizer === undefined)
        logger.warn('caller authentication is OFF (--auth none): anyone who can reach the port can read snapshots');

      const heapTrimmer =
        gc === undefined
          ? undefined
          : new IdleHeapTrimmer({
              idleMs: heapTrimIdleMs,
              trim: new HeapTrim(gc),
              ...(nvml?.trimHeap !== undefined ? { trimNvmlThread: nvml.trimHeap } : {}),
              onTrimmed: heapTrimmed('main'),
            });

      // Probes are answered by the Agent once it exists; until then the server is not bound anyway.
      const started: { agent?: Agent } = {};
      const handler = createRequestHandler({
        snapshots,
        authorizer,
        metrics,
        logger,
        requestTimeoutMs: config.requestTimeoutMs,
        readiness: () => started.agent?.readiness() ?? { ready: false, reasons: ['starting'] },
        liveness: () => started.agent?.liveness() ?? { alive: true },
        ...(heapTrimmer !== undefined ? { onRequest: () => heapTrimmer.touch() } : {}),
      });
      const server = createGuardedServer({
        name: 'agent-api',
        logger,
        handler,
        ...(tls !== undefined ? { tls } : {}),
        // GET only: any request body is refused.
        maxBodyBytes: 0,
        maxConnections: MAX_CONNECTIONS,
      });
      const address = await listen(server, config.listenPort, config.listenHost);
      const agent = new Agent(address, snapshots, metrics, server, xid, nvml, nvmlEvents, logger, config.shutdownGraceMs, heapTrimmer);
      started.agent = agent;
      heapTrimmer?.start();
      logger.info('agent listening', {
        address: `${address.address}:${address.port}`,
        tls: config.tls !== undefined,
        mode,
        ...(modeReason !== undefined ? { modeReason } : {}),
        auth: config.auth,
        ...(authorizer !== undefined
          ? { tokenVerification: deps.authenticator !== undefined ? 'injected' : (config.tokenVerification ?? 'auto') }
          : {}),
      });
      return agent;
    });
  }

  /**
   * NVML with at least one GPU, or the explicit no-GPU mode with the reason. NVML runs on its own
   * threads (one for snapshots, one for events) unless --nvml-threads=false keeps it in this
   * process on the libuv pool (the simulated fleet: hundreds of agents in one process).
   */
  private static async initNvml(
    config: Readonly<AgentConfig>,
    logger: Logger,
    onHeapTrimmed: ((result: HeapTrimResult) => void) | undefined,
  ): Promise<{
    nvml: NvmlSnapshotSource | undefined;
    nvmlEvents: NvmlEventSource | undefined;
    mode: 'nvml' | 'no-gpu';
    modeReason?: string;
    driverVersion?: string;
  }> {
    const options: NvmlBindingOptions = {
      ...(config.nvmlLibraryPath !== undefined ? { libraryPath: config.nvmlLibraryPath } : {}),
      fallbackToSystemLibrary: !config.nvmlNoFallback,
      callTimeoutMs: config.nvmlCallTimeoutMs,
    };
    const binding = config.nvmlThreads ? undefined : new NvmlBinding(options);
    const sources =
      binding === undefined
        ? await threadSources(options, config.nvmlCallTimeoutMs, logger, onHeapTrimmed)
        : { snapshots: bindingSnapshotSource(binding), events: bindingEventSource(binding) };
    const nvml = sources.snapshots;
    const probe = await nvml.collect([]);
    if (probe.nvml.available && probe.gpus.length > 0) {
      logger.info('NVML initialised', { gpus: probe.gpus.length, driverVersion: probe.nvml.driverVersion, threads: config.nvmlThreads });
      const nvmlEvents = config.nvmlEvents ? sources.events : undefined;
      return {
        nvml,
        nvmlEvents,
        mode: 'nvml',
        ...(probe.nvml.driverVersion !== undefined ? { driverVersion: probe.nvml.driverVersion } : {}),
      };
    }
    const reason = probe.nvml.available ? 'NVML reports no GPUs' : probe.nvml.reason;
    logger.warn('running in no-GPU mode: snapshots carry no GPUs, XIDs are still served from the kernel log', { reason });
    if (!(await nvml.stop(config.shutdownGraceMs)))
      logger.warn('NVML did not shut down after the failed probe', { graceMs: config.shutdownGraceMs });
    return { nvml: undefined, nvmlEvents: undefined, mode: 'no-gpu', modeReason: clip(reason, 1024) };
  }

  /** Ready once NVML is initialised (or no-GPU mode is decided) and the kernel-log reader runs. */
  readiness(): { ready: boolean; reasons: string[] } {
    const reasons: string[] = [];
    if (this.stopping !== undefined) reasons.push('shutting down');
    if (!this.xid.kmsgReady) reasons.push(`kernel log reader not running: ${this.xid.status().kmsg.error ?? 'stopped'}`);
    for (const hung of this.nvml?.hungCalls() ?? []) {
      reasons.push(
        `NVML call ${hung.fn} has not returned for ${Math.round((Date.now() - hung.sinceMs) / 1000)} s; that GPU is skipped until it does`,
      );
    }
    return { ready: reasons.length === 0, reasons };
  }

  /** Alive while the event loop keeps ticking. */
  liveness(): { alive: boolean; reason?: string } {
    const stalled = Date.now() - this.heartbeat;
    return stalled > LIVENESS_STALL_MS ? { alive: false, reason: `event loop stalled for ${stalled} ms` } : { alive: true };
  }

  /**
   * Stops accepting requests, drains in-flight ones, stops the XID sources and shuts NVML down,
   * all within `graceMs` (default --shutdown-grace-seconds). Resolves `clean: false` when the
   * grace ran out first (an NVML call that never returns): the caller must then end the process
   * with lib/hard-exit, because the blocked native call keeps the event loop alive.
   */
  stop(graceMs = this.shutdownGraceMs): Promise<AgentStopResult> {
    this.stopping ??= (async () => {
      clearInterval(this.heartbeatTimer);
      this.heapTrimmer?.stop();
      const deadline = Date.now() + graceMs;
      await close(this.server, Math.max(0, graceMs - 1_000));
      const rest = (async (): Promise<boolean> => {
        try {
          await this.xid.stop();
          const left = (): number => Math.max(0, deadline - Date.now());
          const eventsClean = (await this.nvmlEvents?.stop(left())) ?? true;
          const snapshotsClean = (await this.nvml?.stop(left())) ?? true;
          return eventsClean && snapshotsClean;
        } catch (err) {
          this.logger.warn('stopping the XID sources or NVML failed', errorFields(err));
          return true;
        }
      })();
      // A blocked NVML call leaves its thread behind: that is not a clean stop either.
      const clean = (await settlesWithin(rest, deadline - Date.now())) && (await rest);
      if (clean) this.logger.info('agent stopped');
      else
        this.logger.warn('agent stopped with NVML calls still blocked after the shutdown grace period', {
          graceMs,
          hungCalls: this.nvml?.hungCalls().map((h) => h.fn) ?? [],
        });
      return { clean };
    })();
    return this.stopping;
  }
}
