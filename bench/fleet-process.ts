/**
 * One process of the operator scale benchmark's fleet: prepared-snapshot agents
 * (dev/fleet/prepared-agents.ts) for a slice of the nodes, each on its own loopback address,
 * checking callers as in-cluster agents do. bench/operator-scale-bench.ts starts several of these
 * beside the operator's own process, so the fleet never shares the operator's event loop.
 *
 *   node dist/bench/fleet-process.js SPEC.json
 *
 * SPEC.json: {port, nodes: [{name, address, scenario}], documentsFile, readyFile, auth}. The
 * process writes `readyFile` once every server listens, and stops on SIGTERM.
 */
import { readFile, writeFile } from 'node:fs/promises';
import type { NodeSnapshotDocument } from '../agent/api/snapshot-document.js';
import type { TokenAuthenticator } from '../agent/auth/token-reviewer.js';
import { tokenVerifier } from '../agent/auth/token-verifier.js';
import type { TokenVerificationMode } from '../agent/config.js';
import { PreparedAgents, type PreparedNode } from '../dev/fleet/prepared-agents.js';
import { createJsonLogger } from '../lib/json-logger.js';
import { loadKubeconfig } from '../lib/kube/kubeconfig.js';
import type { Logger } from '../lib/logger.js';

/** How the fleet's agents check the operator's token (the agent's --token-verification modes). */
export type FleetAuth =
  { kind: 'none' } | { kind: 'verify'; mode: TokenVerificationMode; kubeconfig: string; audience: string; allowedCallers: string[] };

/** What one fleet process serves. */
export interface FleetProcessSpec {
  port: number;
  nodes: PreparedNode[];
  /** JSON object: scenario → the snapshot document its nodes answer. */
  documentsFile: string;
  readyFile: string;
  auth: FleetAuth;
}

/** One verifier for every agent of the process: one key cache (local) or one TokenReview client, as --token-verification says. */
async function authenticatorFor(auth: FleetAuth, logger: Logger): Promise<TokenAuthenticator | undefined> {
  if (auth.kind === 'none') return undefined;
  return tokenVerifier(await loadKubeconfig(auth.kubeconfig), { mode: auth.mode, audience: auth.audience, logger });
}

async function main(): Promise<void> {
  const specFile = process.argv[2];
  if (specFile === undefined) throw new Error('usage: fleet-process.js SPEC.json');
  const spec = JSON.parse(await readFile(specFile, 'utf8')) as FleetProcessSpec;
  const documents = new Map(Object.entries(JSON.parse(await readFile(spec.documentsFile, 'utf8')) as Record<string, NodeSnapshotDocument>));
  const logger = createJsonLogger({ level: 'warn', stream: process.stderr, defaultMeta: { component: 'bench-fleet' } });
  const authenticator = await authenticatorFor(spec.auth, logger);
  const agents = await PreparedAgents.start({
    nodes: spec.nodes,
    port: spec.port,
    documents,
    auth:
      authenticator === undefined || spec.auth.kind === 'none' ? undefined : { authenticator, allowedCallers: spec.auth.allowedCallers },
    logger,
  });
  const stop = (): void => {
    agents.stop().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
  await writeFile(spec.readyFile, `${agents.size}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`fleet-process failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
