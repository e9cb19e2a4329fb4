/** Starting real agents in-process (fake NVML via its C ABI, kmsg from a fixture file) for tests. */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Agent } from '../../agent/agent.js';
import type { AgentConfig } from '../../agent/config.js';
import type { TokenAuthenticator } from '../../agent/auth/token-reviewer.js';
import { startFakeNvml, type FakeNvmlEnvironment } from '../../agent/fake-nvml/harness.js';
import { createLogger } from '../../lib/logger.js';

/** A running agent with the handles a test needs. */
export interface TestAgent {
  agent: Agent;
  url: string;
  fake: FakeNvmlEnvironment | undefined;
  kmsgFile: string;
  stop(): Promise<void>;
}

/** Options for a test agent. */
export interface TestAgentOptions {
  /** Fake NVML scenario name; omit for a node with no NVML library at all. */
  scenario?: string;
  kmsgLines?: string[];
  config?: Partial<AgentConfig>;
  authenticator?: TokenAuthenticator;
}

/** Starts an agent on 127.0.0.1 with an ephemeral port. */
export async function startTestAgent(options: TestAgentOptions = {}): Promise<TestAgent> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'gpudiag-agent-'));
  const kmsgFile = path.join(dir, 'kmsg');
  await writeFile(kmsgFile, (options.kmsgLines ?? []).map((l) => `${l}\n`).join(''));
  const fake = options.scenario === undefined ? undefined : await startFakeNvml(options.scenario);
  const config: AgentConfig = {
    nodeName: 'gpu-node-test',
    listenHost: '127.0.0.1',
    listenPort: 0,
    auth: 'none',
    allowedCallers: [],
    tokenAudience: 'gpudiag-agent',
    nvmlLibraryPath: fake?.libraryPath ?? path.join(dir, 'no-such-libnvidia-ml.so.1'),
    nvmlNoFallback: true,
    nvmlCallTimeoutMs: 2000,
    nvmlThreads: true,
    nvmlEvents: true,
    kmsgPath: kmsgFile,
    kmsgPollMs: 50,
    // No kubelet unless a test brings one; the scenarios' pids are not this machine's processes.
    podResourcesSocket: '',
    procRoot: '',
    snapshotCacheMs: 0,
    requestTimeoutMs: 10_000,
    shutdownGraceMs: 5_000,
    logLevel: 'error',
    ...options.config,
  };
  const agent = await Agent.start(config, {
    logger: createLogger({ silent: true }),
    ...(options.authenticator ? { authenticator: options.authenticator } : {}),
  });
  const url = `http://127.0.0.1:${agent.address.port}`;
  return {
    agent,
    url,
    fake,
    kmsgFile,
    async stop(): Promise<void> {
      await agent.stop();
      await fake?.dispose();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
