/**
 * The operator's configuration, parsed once from flags and environment variables (flags win),
 * validated and frozen. Nothing cluster-specific is hard-coded elsewhere: namespaces, the agent
 * selector, port, scheme and token all come from here.
 */
import { integerFlag, readFlags } from '../lib/flags.js';

/** Validated operator configuration. */
export interface OperatorConfig {
  kubeconfig?: string;
  /** Namespaces whose GPUDiagnostics are reconciled; empty means all. */
  namespaces: readonly string[];
  agentNamespace: string;
  /** Label selector (`k=v,k2=v2`) of the agent pods. */
  agentSelector: string;
  agentPort: number;
  agentScheme: 'http' | 'https';
  agentCaFile?: string;
  /** Projected ServiceAccount token presented to agents (re-read so kubelet rotation works). */
  agentTokenFile: string;
  /** Most agent requests in flight across the operator. */
  fanoutConcurrency: number;
  /** Retries per node for transient failures. */
  fanoutRetries: number;
  workers: number;
  defaultPerNodeTimeoutSeconds: number;
  /** Wait this long for a GPUHealthPolicy that a new GPUDiagnostic references before failing it. */
  policyGraceSeconds: number;
  /** Label selector of the GPUHealthPolicies this operator reconciles (sharding; default: those without gpudiag.io/shard; empty: all). */
  policySelector: string;
  /** Check governed nodes at least this often whatever spec.interval says; 0: no cap (demos and tests). */
  policyMaxIntervalSeconds: number;
  probeHost: string;
  probePort: number;
  /** The MCP endpoint (/mcp); absent when disabled. */
  mcp?: { host: string; port: number; namespace: string; readOnly: boolean; allowedHosts: readonly string[]; audience: string };
  leaderElection: boolean;
  leaseNamespace: string;
  leaseName: string;
  /** How long a Lease stays valid without renewal: how fast a replica takes over from a killed leader. */
  leaseDurationSeconds: number;
  identity: string;
  logLevel: string;
}

/** A configuration problem, naming the flag. */
export class OperatorConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'OperatorConfigError';
  }
}

const ENV: Record<string, string> = {
  kubeconfig: 'KUBECONFIG',
  namespaces: 'GPUDIAG_WATCH_NAMESPACES',
  'agent-namespace': 'GPUDIAG_AGENT_NAMESPACE',
  'agent-selector': 'GPUDIAG_AGENT_SELECTOR',
  'agent-port': 'GPUDIAG_AGENT_PORT',
  'agent-scheme': 'GPUDIAG_AGENT_SCHEME',
  'agent-ca-file': 'GPUDIAG_AGENT_CA_FILE',
  'agent-token-file': 'GPUDIAG_AGENT_TOKEN_FILE',
  'fanout-concurrency': 'GPUDIAG_FANOUT_CONCURRENCY',
  'fanout-retries': 'GPUDIAG_FANOUT_RETRIES',
  workers: 'GPUDIAG_WORKERS',
  'per-node-timeout-seconds': 'GPUDIAG_PER_NODE_TIMEOUT_SECONDS',
  'policy-grace-seconds': 'GPUDIAG_POLICY_GRACE_SECONDS',
  'policy-selector': 'GPUDIAG_POLICY_SELECTOR',
  'policy-max-interval-seconds': 'GPUDIAG_POLICY_MAX_INTERVAL_SECONDS',
  'probe-listen': 'GPUDIAG_PROBE_LISTEN',
  'mcp-listen': 'GPUDIAG_MCP_LISTEN',
  'mcp-namespace': 'GPUDIAG_MCP_NAMESPACE',
  'mcp-read-only': 'GPUDIAG_MCP_READ_ONLY',
  'mcp-allowed-hosts': 'GPUDIAG_MCP_ALLOWED_HOSTS',
  'mcp-audience': 'GPUDIAG_MCP_AUDIENCE',
  'leader-election': 'GPUDIAG_LEADER_ELECTION',
  'lease-namespace': 'GPUDIAG_LEASE_NAMESPACE',
  'lease-name': 'GPUDIAG_LEASE_NAME',
  'lease-duration-seconds': 'GPUDIAG_LEASE_DURATION_SECONDS',
  identity: 'POD_NAME',
  'log-level': 'GPUDIAG_LOG_LEVEL',
};

/** Usage text for `gpudiag operator --help`. */
export const OPERATOR_USAGE = `usage: gpudiag operator [options]

Reconciles GPUDiagnostic and GPUHealthPolicy objects by asking the node agents.
Every option can also be set with the environment variable shown.

  --kubeconfig FILE               (KUBECONFIG; in-cluster configuration when unset)
  --namespaces a,b                GPUDiagnostic namespaces to watch (GPUDIAG_WATCH_NAMESPACES; default all)
  --agent-namespace NS            where the agent pods run (default gpudiag-system)
  --agent-selector k=v,...        agent pod labels (default app.kubernetes.io/name=gpudiag,app.kubernetes.io/component=agent)
  --agent-port N                  agent port (default 9440)
  --agent-scheme http|https       (default http)
  --agent-ca-file FILE            CA for https agents
  --agent-token-file FILE         projected token sent to agents (default /var/run/secrets/gpudiag/agent-token)
  --fanout-concurrency N          agent requests in flight (default 256)
  --fanout-retries N              retries of transient failures per node (default 2)
  --workers N                     reconcile workers (default 4)
  --per-node-timeout-seconds N    default per-node deadline (default 20)
  --policy-grace-seconds N        wait for a referenced policy created after the diagnostic (default 30)
  --policy-selector SELECTOR      GPUHealthPolicies to reconcile: k=v, k!=v, k, !k, comma-separated
                                  (default !gpudiag.io/shard: every policy not assigned to a shard;
                                  empty: every policy)
  --policy-max-interval-seconds N check policies at least this often, whatever spec.interval says
                                  (default 0: no cap; for demos and tests)
  --probe-listen HOST:PORT        /healthz, /readyz, /metrics (default 0.0.0.0:8081)
  --mcp-listen HOST:PORT          serve the MCP facade at /mcp (GPUDIAG_MCP_LISTEN; default off)
  --mcp-namespace NS              where MCP tool calls create GPUDiagnostics (default default)
  --mcp-read-only true|false      only read tools (default false)
  --mcp-allowed-hosts a,b         Host names accepted at /mcp (default localhost,127.0.0.1,::1)
  --mcp-audience AUD              audience callers' tokens must carry (default gpudiag-mcp)
  --leader-election true|false    (default true)
  --lease-namespace NS            (default: the agent namespace)
  --lease-name NAME               (default gpudiag-operator)
  --lease-duration-seconds N      takeover time after a leader dies unreleased (default 15)
  --identity NAME                 leader identity (POD_NAME; default the hostname)
  --log-level LEVEL               error|warn|info|debug (default info)
`;

/** Label a GPUHealthPolicy carries to be reconciled only by the operator whose --policy-selector names it. */
export const POLICY_SHARD_LABEL = 'gpudiag.io/shard';
/** The default --policy-selector: every policy not assigned to a shard. */
export const DEFAULT_POLICY_SELECTOR = `!${POLICY_SHARD_LABEL}`;
const LABEL_KEY = /^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9])?$/;

/** Validates an equality-based label selector (`k=v`, `k==v`, `k!=v`, `k`, `!k`, comma-separated; empty selects everything). */
function equalitySelector(flag: string, value: string): string {
  if (value.trim() === '') return '';
  for (const raw of value.split(',')) {
    const term = raw.trim();
    const m = /^(!?)([^=!]+?)(?:(==|=|!=)(.*))?$/.exec(term);
    const key = m?.[2] ?? '';
    const ok = m !== null && LABEL_KEY.test(key) && key.length <= 316 && (m[3] === undefined ? true : m[1] === '' && LABEL_VALUE.test(m[4] ?? ''));
    if (!ok) throw new OperatorConfigError(`--${flag} must be comma-separated terms k=v, k!=v, k or !k with valid label keys and values, got "${term.slice(0, 80)}"`);
  }
  return value.split(',').map((t) => t.trim()).join(',');
}

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const SELECTOR_TERM = /^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?=(([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9])?$/;

function integer(flag: string, value: string | undefined, fallback: number, min: number, max: number): number {
  return integerFlag(flag, value, fallback, min, max, (m) => new OperatorConfigError(m));
}

function namespaceName(flag: string, value: string): string {
  if (!DNS_LABEL.test(value) || value.length > 63) throw new OperatorConfigError(`--${flag} must be a namespace name (DNS-1123 label), got "${value.slice(0, 80)}"`);
  return value;
}

/** The MCP endpoint settings, or undefined when --mcp-listen is not given. */
function parseMcp(get: (flag: string) => string | undefined): OperatorConfig['mcp'] {
  const listen = get('mcp-listen');
  if (listen === undefined || listen === '') return undefined;
  const colon = listen.lastIndexOf(':');
  if (colon <= 0) throw new OperatorConfigError(`--mcp-listen must be HOST:PORT, got "${listen}"`);
  const readOnly = get('mcp-read-only') ?? 'false';
  if (readOnly !== 'true' && readOnly !== 'false') throw new OperatorConfigError(`--mcp-read-only must be true or false, got "${readOnly}"`);
  const hosts = (get('mcp-allowed-hosts') ?? 'localhost,127.0.0.1,::1').split(',').map((h) => h.trim()).filter((h) => h !== '');
  return {
    host: listen.slice(0, colon).replace(/^\[(.*)\]$/, '$1'),
    port: integer('mcp-listen', listen.slice(colon + 1), 0, 0, 65535),
    namespace: namespaceName('mcp-namespace', get('mcp-namespace') ?? 'default'),
    readOnly: readOnly === 'true',
    allowedHosts: Object.freeze(hosts),
    audience: get('mcp-audience') ?? 'gpudiag-mcp',
  };
}

/** Parses flags (then env) into a frozen OperatorConfig; throws OperatorConfigError naming the flag. */
export function parseOperatorConfig(argv: readonly string[], env: NodeJS.ProcessEnv, hostname: string): Readonly<OperatorConfig> {
  const get = readFlags(argv, env, ENV, [], (m) => new OperatorConfigError(m)).get;
  const namespaces = (get('namespaces') ?? '').split(',').map((s) => s.trim()).filter((s) => s !== '').map((n) => namespaceName('namespaces', n));
  const agentNamespace = namespaceName('agent-namespace', get('agent-namespace') ?? 'gpudiag-system');
  const agentSelector = get('agent-selector') ?? 'app.kubernetes.io/name=gpudiag,app.kubernetes.io/component=agent';
  for (const term of agentSelector.split(',')) {
    if (!SELECTOR_TERM.test(term)) throw new OperatorConfigError(`--agent-selector must be comma-separated key=value labels, got "${term.slice(0, 80)}"`);
  }
  const scheme = get('agent-scheme') ?? 'http';
  if (scheme !== 'http' && scheme !== 'https') throw new OperatorConfigError(`--agent-scheme must be http or https, got "${scheme}"`);
  const mcp = parseMcp(get);
  const probe = get('probe-listen') ?? '0.0.0.0:8081';
  const colon = probe.lastIndexOf(':');
  if (colon <= 0) throw new OperatorConfigError(`--probe-listen must be HOST:PORT, got "${probe}"`);
  const leaderElection = get('leader-election') ?? 'true';
  if (leaderElection !== 'true' && leaderElection !== 'false') throw new OperatorConfigError(`--leader-election must be true or false, got "${leaderElection}"`);
  const level = get('log-level') ?? 'info';
  if (!['error', 'warn', 'info', 'debug'].includes(level)) throw new OperatorConfigError(`--log-level must be error, warn, info or debug, got "${level}"`);
  const kubeconfig = get('kubeconfig');
  const caFile = get('agent-ca-file');
  return Object.freeze({
    ...(kubeconfig !== undefined && kubeconfig !== '' ? { kubeconfig } : {}),
    namespaces: Object.freeze(namespaces),
    agentNamespace,
    agentSelector,
    agentPort: integer('agent-port', get('agent-port'), 9440, 1, 65535),
    agentScheme: scheme,
    ...(caFile !== undefined && caFile !== '' ? { agentCaFile: caFile } : {}),
    agentTokenFile: get('agent-token-file') ?? '/var/run/secrets/gpudiag/agent-token',
    fanoutConcurrency: integer('fanout-concurrency', get('fanout-concurrency'), 256, 1, 10_000),
    fanoutRetries: integer('fanout-retries', get('fanout-retries'), 2, 0, 10),
    workers: integer('workers', get('workers'), 4, 1, 64),
    defaultPerNodeTimeoutSeconds: integer('per-node-timeout-seconds', get('per-node-timeout-seconds'), 20, 1, 600),
    policyGraceSeconds: integer('policy-grace-seconds', get('policy-grace-seconds'), 30, 0, 3600),
    policySelector: equalitySelector('policy-selector', get('policy-selector') ?? DEFAULT_POLICY_SELECTOR),
    policyMaxIntervalSeconds: integer('policy-max-interval-seconds', get('policy-max-interval-seconds'), 0, 0, 86_400),
    probeHost: probe.slice(0, colon).replace(/^\[(.*)\]$/, '$1'),
    probePort: integer('probe-listen', probe.slice(colon + 1), 8081, 0, 65535),
    ...(mcp !== undefined ? { mcp } : {}),
    leaderElection: leaderElection === 'true',
    leaseNamespace: namespaceName('lease-namespace', get('lease-namespace') ?? agentNamespace),
    leaseName: get('lease-name') ?? 'gpudiag-operator',
    leaseDurationSeconds: integer('lease-duration-seconds', get('lease-duration-seconds'), 15, 3, 300),
    identity: get('identity') ?? hostname,
    logLevel: level,
  });
}
