/**
 * The agent's configuration, parsed once from flags and environment variables (flags win),
 * validated, and frozen. Nothing else in the agent reads process.env.
 */
import { integerFlag, readFlags } from '../lib/flags.js';

/** Validated agent configuration. */
export interface AgentConfig {
  nodeName: string;
  listenHost: string;
  listenPort: number;
  tls?: { certFile: string; keyFile: string };
  /** `tokenreview` verifies bearer tokens with the API server; `none` is for local demos only. */
  auth: 'tokenreview' | 'none';
  /** Usernames allowed to call /v1/snapshot (e.g. system:serviceaccount:gpudiag:gpudiag-operator). */
  allowedCallers: readonly string[];
  /** Audience the caller's token must be bound to. */
  tokenAudience: string;
  /** Kubeconfig for TokenReview; in-cluster configuration when unset. */
  kubeconfig?: string;
  nvmlLibraryPath?: string;
  /** Skip the system libnvidia-ml.so.1 fallback (tests and the simulated fleet). */
  nvmlNoFallback: boolean;
  nvmlCallTimeoutMs: number;
  /** Watch NVML's event API (XID, DBE). Each watcher holds a libuv pool thread for up to 1 s per wait. */
  nvmlEvents: boolean;
  kmsgPath: string;
  kmsgPollMs: number;
  cursorFile?: string;
  bootIdPath?: string;
  /** How long a collected snapshot is reused for concurrent and back-to-back requests. */
  snapshotCacheMs: number;
  requestTimeoutMs: number;
  logLevel: string;
}

/** A configuration problem, naming the flag. */
export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

/** Flag name → environment variable used when the flag is absent. */
const ENV: Record<string, string> = {
  'node-name': 'NODE_NAME',
  listen: 'GPUDIAG_AGENT_LISTEN',
  'tls-cert': 'GPUDIAG_AGENT_TLS_CERT',
  'tls-key': 'GPUDIAG_AGENT_TLS_KEY',
  auth: 'GPUDIAG_AGENT_AUTH',
  'allowed-callers': 'GPUDIAG_AGENT_ALLOWED_CALLERS',
  'token-audience': 'GPUDIAG_AGENT_TOKEN_AUDIENCE',
  kubeconfig: 'KUBECONFIG',
  'nvml-library': 'GPUDIAG_NVML_LIBRARY',
  'nvml-call-timeout-ms': 'GPUDIAG_NVML_CALL_TIMEOUT_MS',
  'nvml-events': 'GPUDIAG_NVML_EVENTS',
  'kmsg-path': 'GPUDIAG_KMSG_PATH',
  'kmsg-poll-ms': 'GPUDIAG_KMSG_POLL_MS',
  'cursor-file': 'GPUDIAG_KMSG_CURSOR_FILE',
  'boot-id-path': 'GPUDIAG_BOOT_ID_PATH',
  'snapshot-cache-ms': 'GPUDIAG_SNAPSHOT_CACHE_MS',
  'request-timeout-ms': 'GPUDIAG_REQUEST_TIMEOUT_MS',
  'log-level': 'GPUDIAG_LOG_LEVEL',
};

/** Usage text for `gpudiag agent --help`. */
export const AGENT_USAGE = `usage: gpudiag agent [options]

Serves GPU snapshots (NVML) and XID events (/dev/kmsg, NVML events) to the operator.
Every option can also be set with the environment variable shown.

  --node-name NAME             this node's name (NODE_NAME; required)
  --listen HOST:PORT           listen address (GPUDIAG_AGENT_LISTEN; default 0.0.0.0:9440)
  --tls-cert FILE --tls-key FILE  serve HTTPS (GPUDIAG_AGENT_TLS_CERT/_KEY)
  --auth tokenreview|none      caller authentication (GPUDIAG_AGENT_AUTH; default tokenreview)
  --allowed-callers LIST       comma-separated usernames allowed to call /v1/snapshot, e.g.
                               system:serviceaccount:gpudiag:gpudiag-operator (required with tokenreview)
  --token-audience AUD         audience callers' tokens must carry (GPUDIAG_AGENT_TOKEN_AUDIENCE; default gpudiag-agent)
  --kubeconfig FILE            for TokenReview (KUBECONFIG; in-cluster config when unset)
  --nvml-library PATH          libnvidia-ml.so.1 to load (GPUDIAG_NVML_LIBRARY)
  --nvml-no-fallback           do not fall back to the system libnvidia-ml.so.1 (GPUDIAG_NVML_NO_FALLBACK=true)
  --nvml-call-timeout-ms N     deadline of one NVML call (GPUDIAG_NVML_CALL_TIMEOUT_MS; default 2000)
  --nvml-events true|false     watch NVML's event API for XIDs (GPUDIAG_NVML_EVENTS; default true)
  --kmsg-path PATH             kernel log device or stand-in; "" disables (GPUDIAG_KMSG_PATH; default /dev/kmsg)
  --kmsg-poll-ms N             kernel log poll interval (GPUDIAG_KMSG_POLL_MS; default 500)
  --cursor-file PATH           where the kmsg cursor persists (GPUDIAG_KMSG_CURSOR_FILE; default none)
  --boot-id-path PATH          boot identity (GPUDIAG_BOOT_ID_PATH; default /proc/sys/kernel/random/boot_id)
  --snapshot-cache-ms N        reuse a snapshot this long (GPUDIAG_SNAPSHOT_CACHE_MS; default 2000)
  --request-timeout-ms N       per-request deadline (GPUDIAG_REQUEST_TIMEOUT_MS; default 30000)
  --log-level LEVEL            error|warn|info|debug (GPUDIAG_LOG_LEVEL; default info)
`;

const NODE_NAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

function integer(flag: string, value: string | undefined, fallback: number, min: number, max: number): number {
  return integerFlag(flag, value, fallback, min, max, (m) => new ConfigError(m));
}

/** Parses flags (then env) into a frozen AgentConfig; throws ConfigError naming the bad flag. */
export function parseAgentConfig(argv: readonly string[], env: NodeJS.ProcessEnv): Readonly<AgentConfig> {
  const flags = readFlags(argv, env, ENV, ['nvml-no-fallback'], (m) => new ConfigError(m));
  const get = flags.get;

  const nodeName = get('node-name') ?? '';
  if (nodeName === '') throw new ConfigError('--node-name (or NODE_NAME) is required');
  if (nodeName.length > 253 || !NODE_NAME.test(nodeName)) throw new ConfigError(`--node-name must be a DNS-1123 subdomain, got "${nodeName.slice(0, 80)}"`);

  const listen = get('listen') ?? '0.0.0.0:9440';
  const colon = listen.lastIndexOf(':');
  if (colon <= 0) throw new ConfigError(`--listen must be HOST:PORT, got "${listen}"`);
  const listenHost = listen.slice(0, colon).replace(/^\[(.*)\]$/, '$1');
  const listenPort = integer('listen', listen.slice(colon + 1), 0, 0, 65535);

  const certFile = get('tls-cert');
  const keyFile = get('tls-key');
  if ((certFile === undefined) !== (keyFile === undefined)) throw new ConfigError('--tls-cert and --tls-key must be given together');

  const auth = get('auth') ?? 'tokenreview';
  if (auth !== 'tokenreview' && auth !== 'none') throw new ConfigError(`--auth must be "tokenreview" or "none", got "${auth}"`);
  const allowedCallers = (get('allowed-callers') ?? '').split(',').map((s) => s.trim()).filter((s) => s !== '');
  if (auth === 'tokenreview' && allowedCallers.length === 0) {
    throw new ConfigError('--allowed-callers is required with --auth tokenreview (e.g. system:serviceaccount:gpudiag:gpudiag-operator)');
  }

  const nvmlEvents = get('nvml-events') ?? 'true';
  if (nvmlEvents !== 'true' && nvmlEvents !== 'false') throw new ConfigError(`--nvml-events must be true or false, got "${nvmlEvents}"`);

  const level = get('log-level') ?? 'info';
  if (!['error', 'warn', 'info', 'debug'].includes(level)) throw new ConfigError(`--log-level must be error, warn, info or debug, got "${level}"`);

  const optional = <K extends string>(key: K, value: string | undefined): { [P in K]?: string } =>
    (value === undefined || value === '' ? {} : { [key]: value }) as { [P in K]?: string };

  return Object.freeze({
    nodeName,
    listenHost,
    listenPort,
    ...(certFile !== undefined && keyFile !== undefined ? { tls: { certFile, keyFile } } : {}),
    auth,
    allowedCallers: Object.freeze(allowedCallers),
    tokenAudience: get('token-audience') ?? 'gpudiag-agent',
    ...optional('kubeconfig', get('kubeconfig')),
    ...optional('nvmlLibraryPath', get('nvml-library')),
    nvmlNoFallback: flags.isSet('nvml-no-fallback') || env['GPUDIAG_NVML_NO_FALLBACK'] === 'true',
    nvmlCallTimeoutMs: integer('nvml-call-timeout-ms', get('nvml-call-timeout-ms'), 2000, 10, 60_000),
    nvmlEvents: nvmlEvents === 'true',
    kmsgPath: get('kmsg-path') ?? '/dev/kmsg',
    kmsgPollMs: integer('kmsg-poll-ms', get('kmsg-poll-ms'), 500, 10, 60_000),
    ...optional('cursorFile', get('cursor-file')),
    ...optional('bootIdPath', get('boot-id-path')),
    snapshotCacheMs: integer('snapshot-cache-ms', get('snapshot-cache-ms'), 2000, 0, 600_000),
    requestTimeoutMs: integer('request-timeout-ms', get('request-timeout-ms'), 30_000, 100, 600_000),
    logLevel: level,
  });
}
