/**
 * The operator's configuration, parsed once from flags and environment variables (flags win),
 * validated and frozen. Nothing cluster-specific is hard-coded elsewhere: namespaces, the agent
 * selector, port, scheme and token all come from here.
 */
import { isIP } from 'node:net';
import { choiceFlag, hostPortFlag, integerFlag, readableFileFlag, readFlags } from '../lib/flags.js';
import { equalitySelectorProblem, isDnsLabel, isDnsSubdomain } from '../lib/kube/names.js';
import { quote } from '../lib/text.js';
import { DEFAULT_RATE_LIMIT } from './mcp/limits.js';

/**
 * Agent requests in flight by default. Warm agents answer in about a millisecond, so 64 keep
 * a 5,000-node diagnostic as fast as 256 did (bench/README.md, operator scale) at a lower peak
 * memory; raise it where many agents answer slowly (each slow answer holds a slot up to the
 * per-node timeout).
 */
export const DEFAULT_FANOUT_CONCURRENCY = 64;
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
  mcp?: {
    host: string;
    port: number;
    namespace: string;
    readOnly: boolean;
    allowedHosts: readonly string[];
    audience: string;
    rateLimit: { burst: number; perSecond: number };
  };
  leaderElection: boolean;
  leaseNamespace: string;
  leaseName: string;
  /** How long a Lease stays valid without renewal: how fast a replica takes over from a killed leader. */
  leaseDurationSeconds: number;
  identity: string;
  /** Deadline of one Kubernetes API call (watches excepted). */
  apiTimeoutMs: number;
  /** SIGTERM: how long the operator may take to stop (abort work, release the Lease) before it exits anyway. */
  shutdownGraceMs: number;
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
  'api-timeout-seconds': 'GPUDIAG_API_TIMEOUT_SECONDS',
  'shutdown-grace-seconds': 'GPUDIAG_SHUTDOWN_GRACE_SECONDS',
  'mcp-rate-limit-per-second': 'GPUDIAG_MCP_RATE_LIMIT_PER_SECOND',
  'mcp-rate-limit-burst': 'GPUDIAG_MCP_RATE_LIMIT_BURST',
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
  --fanout-concurrency N          agent requests in flight (default 64)
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
  --mcp-rate-limit-per-second N   calls per caller identity per second (default 10)
  --mcp-rate-limit-burst N        calls a caller may make at once (default 60)
  --leader-election true|false    (default true)
  --lease-namespace NS            (default: the agent namespace)
  --lease-name NAME               (default gpudiag-operator)
  --lease-duration-seconds N      takeover time after a leader dies unreleased (default 15)
  --identity NAME                 leader identity (POD_NAME; default the hostname)
  --api-timeout-seconds N         deadline of one Kubernetes API call (default 30)
  --shutdown-grace-seconds N      on SIGTERM, stop within this long, then exit anyway (default 20;
                                  keep it below the pod's terminationGracePeriodSeconds)
  --log-level LEVEL               error|warn|info|debug (default info)
`;

/** Label a GPUHealthPolicy carries to be reconciled only by the operator whose --policy-selector names it. */
export const POLICY_SHARD_LABEL = 'gpudiag.io/shard';
/** The default --policy-selector: every policy not assigned to a shard. */
export const DEFAULT_POLICY_SELECTOR = `!${POLICY_SHARD_LABEL}`;
const configError = (m: string): Error => new OperatorConfigError(m);
/** A leader identity (pod name or hostname): it becomes holderIdentity and reportingInstance (≤ 128 with the suffix). */
const IDENTITY = /^[A-Za-z0-9]([-A-Za-z0-9_.]{0,117}[A-Za-z0-9])?$/;
/** A token audience: printable, no spaces or commas. */
const AUDIENCE = /^[\x21-\x2b\x2d-\x7e]{1,253}$/;

/** Validates an equality-based label selector (`k=v`, `k==v`, `k!=v`, `k`, `!k`, comma-separated; empty selects everything). */
function equalitySelector(flag: string, value: string): string {
  const bad = equalitySelectorProblem(value);
  if (bad !== undefined)
    throw new OperatorConfigError(
      `--${flag} must be comma-separated terms k=v, k!=v, k or !k with valid label keys and values, got ${quote(bad)}`,
    );
  return value.trim() === ''
    ? ''
    : value
        .split(',')
        .map((t) => t.trim())
        .join(',');
}

function integer(flag: string, value: string | undefined, fallback: number, min: number, max: number): number {
  return integerFlag(flag, value, fallback, min, max, configError);
}

function namespaceName(flag: string, value: string): string {
  if (!isDnsLabel(value)) throw new OperatorConfigError(`--${flag} must be a namespace name (DNS-1123 label), got ${quote(value)}`);
  return value;
}

function trueOrFalse(flag: string, value: string | undefined, fallback: 'true' | 'false'): boolean {
  return choiceFlag(flag, value, ['true', 'false'] as const, fallback, configError) === 'true';
}

/** The MCP endpoint settings, or undefined when --mcp-listen is not given. */
function parseMcp(get: (flag: string) => string | undefined): OperatorConfig['mcp'] {
  const listen = get('mcp-listen');
  if (listen === undefined || listen === '') return undefined;
  const { host, port } = hostPortFlag('mcp-listen', listen, configError);
  const hosts = (get('mcp-allowed-hosts') ?? 'localhost,127.0.0.1,::1')
    .split(',')
    .map((h) => h.trim())
    .filter((h) => h !== '');
  const badHost = hosts.find((h) => !(isIP(h) !== 0 || isDnsSubdomain(h.toLowerCase())));
  if (badHost !== undefined)
    throw new OperatorConfigError(`--mcp-allowed-hosts must be comma-separated host names or addresses, got ${quote(badHost)}`);
  const audience = get('mcp-audience') ?? 'gpudiag-mcp';
  if (!AUDIENCE.test(audience))
    throw new OperatorConfigError(`--mcp-audience must be a token audience without spaces or commas, got ${quote(audience)}`);
  return {
    host,
    port,
    namespace: namespaceName('mcp-namespace', get('mcp-namespace') ?? 'default'),
    readOnly: trueOrFalse('mcp-read-only', get('mcp-read-only'), 'false'),
    allowedHosts: Object.freeze(hosts),
    audience,
    rateLimit: {
      perSecond: integer('mcp-rate-limit-per-second', get('mcp-rate-limit-per-second'), DEFAULT_RATE_LIMIT.perSecond, 1, 10_000),
      burst: integer('mcp-rate-limit-burst', get('mcp-rate-limit-burst'), DEFAULT_RATE_LIMIT.burst, 1, 100_000),
    },
  };
}

/** A file the operator reads at start (kubeconfig, CA, token): it must exist and be readable. */
function readableFile(flag: string, value: string | undefined): string | undefined {
  return value === undefined || value === '' ? undefined : readableFileFlag(flag, value, configError);
}

/** Parses flags (then env) into a frozen OperatorConfig; throws OperatorConfigError naming the flag. */
export function parseOperatorConfig(argv: readonly string[], env: NodeJS.ProcessEnv, hostname: string): Readonly<OperatorConfig> {
  const get = readFlags(argv, env, ENV, [], configError).get;
  const namespaces = (get('namespaces') ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '')
    .map((n) => namespaceName('namespaces', n));
  const agentNamespace = namespaceName('agent-namespace', get('agent-namespace') ?? 'gpudiag-system');
  const agentSelector = get('agent-selector') ?? 'app.kubernetes.io/name=gpudiag,app.kubernetes.io/component=agent';
  const badTerm = equalitySelectorProblem(agentSelector, { equalityOnly: true });
  if (badTerm !== undefined)
    throw new OperatorConfigError(`--agent-selector must be comma-separated key=value labels, got ${quote(badTerm)}`);
  const scheme = choiceFlag('agent-scheme', get('agent-scheme'), ['http', 'https'] as const, 'http', configError);
  const mcp = parseMcp(get);
  const probe = hostPortFlag('probe-listen', get('probe-listen') ?? '0.0.0.0:8081', configError);
  const level = choiceFlag('log-level', get('log-level'), ['error', 'warn', 'info', 'debug'] as const, 'info', configError);
  const kubeconfig = readableFile('kubeconfig', get('kubeconfig'));
  const caFile = readableFile('agent-ca-file', get('agent-ca-file'));
  const agentTokenFile = get('agent-token-file') ?? '/var/run/secrets/gpudiag/agent-token';
  if (agentTokenFile === '') throw new OperatorConfigError('--agent-token-file must name the projected token file');
  const leaseName = get('lease-name') ?? 'gpudiag-operator';
  if (!isDnsSubdomain(leaseName))
    throw new OperatorConfigError(`--lease-name must be a Lease name (DNS-1123 subdomain), got ${quote(leaseName)}`);
  const identity = get('identity') ?? hostname;
  if (!IDENTITY.test(identity))
    throw new OperatorConfigError(
      `--identity must be 1-119 letters, digits, '-', '_' or '.', starting and ending alphanumeric, got ${quote(identity)}`,
    );
  return Object.freeze({
    ...(kubeconfig !== undefined ? { kubeconfig } : {}),
    namespaces: Object.freeze(namespaces),
    agentNamespace,
    agentSelector,
    agentPort: integer('agent-port', get('agent-port'), 9440, 1, 65535),
    agentScheme: scheme,
    ...(caFile !== undefined ? { agentCaFile: caFile } : {}),
    agentTokenFile,
    fanoutConcurrency: integer('fanout-concurrency', get('fanout-concurrency'), DEFAULT_FANOUT_CONCURRENCY, 1, 10_000),
    fanoutRetries: integer('fanout-retries', get('fanout-retries'), 2, 0, 10),
    workers: integer('workers', get('workers'), 4, 1, 64),
    defaultPerNodeTimeoutSeconds: integer('per-node-timeout-seconds', get('per-node-timeout-seconds'), 20, 1, 600),
    policyGraceSeconds: integer('policy-grace-seconds', get('policy-grace-seconds'), 30, 0, 3600),
    policySelector: equalitySelector('policy-selector', get('policy-selector') ?? DEFAULT_POLICY_SELECTOR),
    policyMaxIntervalSeconds: integer('policy-max-interval-seconds', get('policy-max-interval-seconds'), 0, 0, 86_400),
    probeHost: probe.host,
    probePort: probe.port,
    ...(mcp !== undefined ? { mcp } : {}),
    leaderElection: trueOrFalse('leader-election', get('leader-election'), 'true'),
    leaseNamespace: namespaceName('lease-namespace', get('lease-namespace') ?? agentNamespace),
    leaseName,
    leaseDurationSeconds: integer('lease-duration-seconds', get('lease-duration-seconds'), 15, 3, 300),
    identity,
    apiTimeoutMs: integer('api-timeout-seconds', get('api-timeout-seconds'), 30, 1, 600) * 1000,
    shutdownGraceMs: integer('shutdown-grace-seconds', get('shutdown-grace-seconds'), 20, 1, 3600) * 1000,
    logLevel: level,
  });
}
