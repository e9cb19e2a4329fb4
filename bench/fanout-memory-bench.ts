/**
 * The operator's worst-case memory during one fan-out to 5,000 nodes: every answer is a valid
 * snapshot just under the 1 MiB body limit, held back for a moment before its last bytes so that
 * `concurrency` answers are buffered at once, and every node's scored result is retained as the
 * GPUDiagnostic controller retains it. The stub agents run in a child process, so only the
 * operator side is measured. Prints figures; asserts nothing.
 *
 *   node dist/bench/fanout-memory-bench.js [--nodes 5000] [--concurrency 256] [--hold-ms 250]
 */
import { fork } from 'node:child_process';
import { writeFile, mkdir } from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { repoRoot } from '../dev/control-plane/binaries.js';
import { createLogger } from '../lib/logger.js';
import { CircuitBreaker } from '../operator/fanout/circuit-breaker.js';
import { createConnectionPool, DEFAULT_MAX_BODY_BYTES } from '../operator/fanout/agent-client.js';
import { fanOut } from '../operator/fanout/fanout.js';
import type { NodeTarget } from '../operator/fanout/targets.js';
import { computeDiagnosticStatus } from '../operator/diagnostic/compute.js';
import { RetainedResults, type NodeResultInput } from '../operator/diagnostic/results.js';
import { resolvePolicy, scoreNode } from '../operator/scoring/index.js';
import { h100, nodeSnapshot, xidEvent } from '../operator/scoring/test-fixtures.js';
import { freePort, progress, round, sleep } from './support.js';

const MiB = 1024 * 1024;

/** A valid snapshot of `node` padded (bounded error texts on 16 GPUs) to just under `bytes`. */
function largeSnapshot(node: string, bytes: number): string {
  const at = new Date().toISOString();
  const doc = nodeSnapshot({
    node,
    collectedAt: at,
    gpus: Array.from({ length: 16 }, (_, i) => h100(i % 8, { index: i })),
    events: [xidEvent(13, { firstSeen: at, lastSeen: at })],
  });
  const base = JSON.stringify(doc).length;
  const perError = JSON.stringify({ field: 'power.usageWatts', code: 999, error: 'e'.repeat(500) }).length + 1;
  let room = Math.floor((bytes - base) / perError);
  for (const gpu of doc.gpus) {
    const n = Math.min(128, room);
    gpu.errors = Array.from({ length: n }, () => ({ field: 'power.usageWatts', code: 999, error: 'e'.repeat(500) }));
    room -= n;
  }
  return JSON.stringify(doc);
}

/** The child: answers every snapshot request with a large body, holding its last bytes `holdMs`. */
async function serve(port: number, bodyBytes: number, holdMs: number): Promise<void> {
  const server = http.createServer((req, res) => {
    const id = String(req.headers['x-request-id'] ?? '');
    const body = Buffer.from(largeSnapshot(id.slice(id.indexOf(':') + 1), bodyBytes));
    res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': body.length });
    res.write(body.subarray(0, body.length - 1024));
    setTimeout(() => res.end(body.subarray(body.length - 1024)), holdMs);
  });
  server.listen(port, '127.0.0.1', () => process.send?.('ready'));
  // The benchmark process went away (done or killed): so does its stub.
  process.on('disconnect', () => process.exit(0));
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      serve: { type: 'string' },
      nodes: { type: 'string', default: '5000' },
      concurrency: { type: 'string', default: '256' },
      'hold-ms': { type: 'string', default: '250' },
      'body-bytes': { type: 'string' },
    },
  });
  const bodyBytes = Number(values['body-bytes'] ?? DEFAULT_MAX_BODY_BYTES - 4096);
  if (values.serve !== undefined) return serve(Number(values.serve), bodyBytes, Number(values['hold-ms']));

  const nodes = Number(values.nodes);
  const concurrency = Number(values.concurrency);
  const port = await freePort();
  const child = fork(
    fileURLToPath(import.meta.url),
    ['--serve', String(port), '--hold-ms', String(values['hold-ms']), '--body-bytes', String(bodyBytes)],
    { stdio: 'inherit' },
  );
  const deadline = setTimeout(() => {
    child.kill('SIGKILL');
    process.exit(1);
  }, 5 * 60_000);
  try {
    await new Promise<void>((resolve) => child.once('message', () => resolve()));
    const targets: NodeTarget[] = Array.from({ length: nodes }, (_, i) => ({
      node: `bench-node-${i}`,
      agent: { podName: `agent-${i}`, ip: '127.0.0.1' },
    }));
    const policy = resolvePolicy();
    const results = new RetainedResults();
    global.gc?.();
    await sleep(200);
    const before = process.memoryUsage();
    let peak = { rss: before.rss, heapUsed: before.heapUsed, arrayBuffers: before.arrayBuffers };
    const sampler = setInterval(() => {
      const m = process.memoryUsage();
      peak = {
        rss: Math.max(peak.rss, m.rss),
        heapUsed: Math.max(peak.heapUsed, m.heapUsed),
        arrayBuffers: Math.max(peak.arrayBuffers, m.arrayBuffers),
      };
    }, 10);
    progress(
      `fan-out to ${nodes} nodes, concurrency ${concurrency}, answers of ${round(bodyBytes / MiB, 2)} MiB held ` +
        `${values['hold-ms']} ms before their last KiB`,
    );
    const started = performance.now();
    let peakInFlight = 0;
    await fanOut({
      targets,
      checks: ['health', 'xid'],
      xidSince: new Date(Date.now() - 3_600_000),
      perNodeTimeoutMs: 60_000,
      signal: AbortSignal.timeout(4 * 60_000),
      concurrency,
      breaker: new CircuitBreaker(),
      tokenProvider: async () => 'bench',
      agentPort: port,
      scheme: 'http',
      connections: createConnectionPool({ scheme: 'http', maxSockets: concurrency }),
      correlationId: 'bench.memory',
      logger: createLogger({ silent: true }),
      retainSnapshots: false,
      onStats: (s) => (peakInFlight = s.peakInFlight),
      // As the controller does: score as it arrives, keep the scored result, drop the snapshot.
      onResult: (outcome) => {
        const input: NodeResultInput = {
          node: outcome.node,
          result: outcome.result,
          durationMs: outcome.durationMs,
          ...(outcome.message !== undefined ? { message: outcome.message } : {}),
        };
        if (outcome.snapshot !== undefined) input.score = scoreNode(outcome.snapshot, policy, new Date());
        results.push(input);
      },
    });
    const fanOutMs = performance.now() - started;
    const status = computeDiagnosticStatus(
      undefined,
      1,
      { kind: 'finished', startTime: new Date().toISOString(), targeted: nodes, results: results.all },
      new Date(),
    );
    clearInterval(sampler);
    global.gc?.();
    const retainedHeap = process.memoryUsage().heapUsed;
    const succeeded = results.all.filter((r) => r.result === 'Succeeded').length;
    const figures = {
      nodes,
      concurrency,
      answerBytes: bodyBytes,
      peakInFlight,
      succeeded,
      fanOutS: round(fanOutMs / 1000, 2),
      statusBytes: JSON.stringify(status).length,
      baselineRssMiB: round(before.rss / MiB, 1),
      peakRssMiB: round(peak.rss / MiB, 1),
      peakHeapUsedMiB: round(peak.heapUsed / MiB, 1),
      peakArrayBuffersMiB: round(peak.arrayBuffers / MiB, 1),
      heapAfterGcMiB: round(retainedHeap / MiB, 1),
      worstCaseBufferedMiB: round((concurrency * DEFAULT_MAX_BODY_BYTES) / MiB, 0),
    };
    process.stdout.write(`${JSON.stringify(figures, null, 2)}\n`);
    await mkdir(path.join(repoRoot, 'bench', 'results'), { recursive: true });
    await writeFile(path.join(repoRoot, 'bench', 'results', 'fanout-memory.json'), `${JSON.stringify(figures, null, 2)}\n`);
  } finally {
    clearTimeout(deadline);
    child.kill('SIGTERM');
  }
}

await main();
