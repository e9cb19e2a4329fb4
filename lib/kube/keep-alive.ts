/**
 * Keep-alive agents for every call lib/kube/api-client makes to the API server (the operator's
 * and the MCP facade's). A KubeTarget's `applyToHTTPSOptions` gives TLS settings (client-node's
 * puts a new https.Agent on every request, so every call paid a TCP and TLS handshake: 8.4 ms
 * p50 for one GET here); this hands out one keep-alive agent per distinct set of TLS settings
 * instead, so a rotated client certificate or CA gets a new one.
 */
import { createHash } from 'node:crypto';
import https from 'node:https';
import type { Agent } from 'node:http';

/** Sockets per agent: a few watches plus the calls in flight. */
export const MAX_API_SOCKETS = 64;
/** Idle connections kept for reuse. */
const MAX_FREE_SOCKETS = 16;
/** Distinct TLS settings remembered (a rotating client certificate adds one per rotation). */
const MAX_AGENTS = 8;

const agents = new Map<string, Agent>();

function settingsKey(options: https.AgentOptions): string {
  const hash = createHash('sha256');
  for (const field of ['ca', 'cert', 'key', 'pfx', 'passphrase', 'servername', 'rejectUnauthorized'] as const)
    hash.update(`${field}=${String(options[field] ?? '')}\n`);
  return hash.digest('hex');
}

/** The shared keep-alive agent for these TLS settings (the options of the per-call agent it replaces). */
export function keepAliveAgent(options: https.AgentOptions): Agent {
  const key = settingsKey(options);
  let agent = agents.get(key);
  if (agent === undefined) {
    // The oldest is forgotten, not destroyed: a watch may still be reading on it.
    if (agents.size >= MAX_AGENTS) agents.delete(agents.keys().next().value as string);
    agent = new https.Agent({ ...options, keepAlive: true, maxSockets: MAX_API_SOCKETS, maxFreeSockets: MAX_FREE_SOCKETS });
    agents.set(key, agent);
  }
  return agent;
}
