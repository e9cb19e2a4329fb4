/**
 * client-node 1.x makes a new https.Agent for every API call, so every call pays a TCP and TLS
 * handshake (measured here: a GET of one GPUDiagnostic took 8.4 ms p50, most of it the
 * handshake). This gives a KubeConfig one keep-alive agent per distinct set of TLS settings, so
 * calls reuse connections; a rotated client certificate or CA gets a new agent, and proxied
 * clusters keep client-node's own agents.
 */
import { createHash } from 'node:crypto';
import https from 'node:https';
import type { Agent } from 'node:http';
import type { KubeConfig } from '@kubernetes/client-node';

/** Sockets per agent: a few long-lived watches plus the calls in flight. */
export const MAX_API_SOCKETS = 64;
/** Idle connections kept for reuse. */
const MAX_FREE_SOCKETS = 16;
/** Distinct TLS settings remembered (a rotating client certificate adds one per rotation). */
const MAX_AGENTS = 8;

/** Marks a KubeConfig already changed, so a second call does nothing. */
const REUSING = Symbol('gpudiag.reuseConnections');

type AgentFactory = (cluster: { server?: string; proxyUrl?: string } | null, options: https.AgentOptions) => Agent;

function settingsKey(options: https.AgentOptions): string {
  const hash = createHash('sha256');
  for (const field of ['ca', 'cert', 'key', 'pfx', 'passphrase', 'servername', 'rejectUnauthorized', 'timeout'] as const)
    hash.update(`${field}=${String(options[field] ?? '')}\n`);
  return hash.digest('hex');
}

/** Makes `kc`'s API calls (and watches) share keep-alive connections; returns `kc`. */
export function reuseConnections(kc: KubeConfig): KubeConfig {
  const target = kc as unknown as { createAgent: AgentFactory; [REUSING]?: true };
  if (target[REUSING] === true) return kc;
  target[REUSING] = true;
  const original = target.createAgent.bind(kc);
  const agents = new Map<string, Agent>();
  target.createAgent = (cluster, options) => {
    if (cluster?.proxyUrl !== undefined || cluster?.server?.startsWith('https:') !== true) return original(cluster, options);
    const key = settingsKey(options);
    let agent = agents.get(key);
    if (agent === undefined) {
      // The oldest is forgotten, not destroyed: a watch may still be reading on it.
      if (agents.size >= MAX_AGENTS) agents.delete(agents.keys().next().value as string);
      agent = new https.Agent({ ...options, keepAlive: true, maxSockets: MAX_API_SOCKETS, maxFreeSockets: MAX_FREE_SOCKETS });
      agents.set(key, agent);
    }
    return agent;
  };
  return kc;
}
