/**
 * Benchmark-only agents that serve prepared snapshots: one HTTP server per simulated node on its
 * own loopback address, behind the agent's real request handler, caller check and metrics, but
 * answering every GET /v1/snapshot with a document collected once per scenario by a real agent on
 * the fake NVML library (renamed for the node). A fleet of thousands then costs the HTTP answers,
 * not thousands of NVML collections, so a benchmark measures the operator rather than the
 * simulation. Several such processes serve one fleet; the operator runs in another.
 */
import { mkdir, mkdtemp, rm, writeFile, copyFile } from 'node:fs/promises';
import type { Server } from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { Agent } from '../../agent/agent.js';
import type { NodeSnapshotDocument } from '../../agent/api/snapshot-document.js';
import { CallerAuthorizer, type TokenAuthenticator } from '../../agent/auth/token-reviewer.js';
import { buildFakeNvml } from '../../agent/fake-nvml/build.js';
import { FakeNvmlLibrary } from '../../agent/fake-nvml/fake-library.js';
import { FakeNvmlController, fakeNvmlEraOf, loadScenario } from '../../agent/fake-nvml/scenario.js';
import { createRequestHandler } from '../../agent/http-api.js';
import { AgentMetrics } from '../../agent/metrics.js';
import { close, createGuardedServer, listen } from '../../lib/http/server.js';
import type { Logger } from '../../lib/logger.js';
import { kmsgLinesFor, simulatedAgentConfig } from './simulated-fleet.js';

/** One node served by a prepared-snapshot agent. */
export interface PreparedNode {
  name: string;
  address: string;
  scenario: string;
}

/** Options of a set of prepared-snapshot agents in one process. */
export interface PreparedAgentsOptions {
  nodes: readonly PreparedNode[];
  /** The port every agent listens on (each on its own address). */
  port: number;
  /** The document each scenario's nodes answer (its `node` is replaced by the node's name). */
  documents: ReadonlyMap<string, NodeSnapshotDocument>;
  /** Shared by every agent; each agent keeps its own answer cache, as separate nodes would. Undefined: no auth. */
  auth: { authenticator: TokenAuthenticator; allowedCallers: readonly string[] } | undefined;
  logger: Logger;
}

/** Servers answering as the agents of `nodes`. */
export class PreparedAgents {
  private constructor(private readonly servers: Server[]) {}

  /** Binds one server per node; rejects (closing what it bound) if any address cannot be bound. */
  static async start(options: PreparedAgentsOptions): Promise<PreparedAgents> {
    // One registry for all: the agents of one process would export the same process metrics.
    const metrics = new AgentMetrics(false);
    const agents = new PreparedAgents([]);
    try {
      for (const node of options.nodes) {
        const template = options.documents.get(node.scenario);
        if (template === undefined) throw new Error(`no prepared snapshot for scenario ${node.scenario} (node ${node.name})`);
        const document: NodeSnapshotDocument = { ...template, node: node.name };
        const logger = options.logger.child({ node: node.name });
        const handler = createRequestHandler({
          snapshots: { snapshot: () => Promise.resolve(document) },
          authorizer:
            options.auth === undefined ? undefined : new CallerAuthorizer(options.auth.authenticator, new Set(options.auth.allowedCallers)),
          metrics,
          logger,
          requestTimeoutMs: 30_000,
          readiness: () => ({ ready: true, reasons: [] }),
          liveness: () => ({ alive: true }),
        });
        const server = createGuardedServer({ name: 'agent-api', logger, handler, maxBodyBytes: 0, maxConnections: 1024 });
        agents.servers.push(server);
        await listen(server, options.port, node.address);
      }
      return agents;
    } catch (err) {
      await agents.stop();
      throw err;
    }
  }

  /** How many agents are listening. */
  get size(): number {
    return this.servers.length;
  }

  /** Closes every server. */
  async stop(): Promise<void> {
    await Promise.all(this.servers.map((s) => close(s, 1_000)));
  }
}

/**
 * What a real agent on the fake NVML library answers for `scenario`: GET
 * /v1/snapshot?checks=… from an agent started for it alone (auth off, loopback, any port).
 */
export async function collectScenarioDocument(scenario: string, checks: readonly string[], logger: Logger): Promise<NodeSnapshotDocument> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'gpudiag-prepared-'));
  const controller = new FakeNvmlController({ stateFile: path.join(dir, 'state.txt') });
  try {
    await mkdir(dir, { recursive: true });
    await controller.load(scenario);
    const library = path.join(dir, 'libnvidia-ml.so.1');
    await copyFile(await buildFakeNvml({ era: fakeNvmlEraOf(await loadScenario(scenario)) }), library);
    FakeNvmlLibrary.open(library).setStatePath(controller.stateFile);
    const kmsgPath = path.join(dir, 'kmsg');
    await writeFile(kmsgPath, (await kmsgLinesFor(scenario)).map((l) => `${l}\n`).join(''));
    const config = simulatedAgentConfig({
      nodeName: `template-${scenario}`,
      address: '127.0.0.1',
      port: 0,
      allowedCallers: undefined,
      nvmlLibraryPath: library,
      kmsgPath,
      podResourcesSocket: '',
      snapshotCacheMs: 0,
    });
    const agent = await Agent.start(config, { logger, processMetrics: false });
    try {
      // The kernel-log reader needs a moment to read the file's records.
      await new Promise((resolve) => setTimeout(resolve, 1_000));
      const since = new Date(Date.now() - 3_600_000).toISOString();
      const url = `http://127.0.0.1:${agent.address.port}/v1/snapshot?checks=${checks.join(',')}&xidSince=${since}`;
      const res = await fetch(url, { signal: AbortSignal.timeout(30_000) });
      if (res.status !== 200) throw new Error(`the ${scenario} template agent answered HTTP ${res.status}: ${await res.text()}`);
      return (await res.json()) as NodeSnapshotDocument;
    } finally {
      await agent.stop();
    }
  } finally {
    await controller.dispose();
    await rm(dir, { recursive: true, force: true });
  }
}
