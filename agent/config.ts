/**
 * The agent's configuration, parsed once from flags and environment variables (flags win),
 * validated, and frozen. Nothing else in the agent reads process.env.
 */
import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import { choiceFlag, hostPortFlag, integerFlag, readableFileFlag, readFlags, writableDirectoryFlag } from '../lib/flags.js';
import { isDnsSubdomain } from '../lib/kube/names.js';
import { inClusterServiceFromEnv } from '../lib/kube/in-cluster-service.js';
import { quote } from '../lib/text.js';

/** The kubelet's default pod-resources socket. */
export const DEFAULT_POD_RESOURCES_SOCKET = '/var/lib/kubelet/pod-resources/kubelet.sock';

/** How the agent verifies callers' tokens (agent/auth/token-verifier.ts; defined here so --auth none loads none of it). */
export type TokenVerificationMode = 'auto' | 'local' | 'tokenreview';
const TOKEN_VERIFICATION_MODES: readonly TokenVerificationMode[] = ['auto', 'local', 'tokenreview'];

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
  /**
   * How tokens are verified: `local` against the issuer's keys, `tokenreview` by the API server,
   * `auto` (the default when unset) local with TokenReview as the fallback.
   */
  tokenVerification?: TokenVerificationMode;
  /** Kubeconfig for the issuer's keys and TokenReview; in-cluster configuration when unset. */
  kubeconfig?: string;
  /** The in-cluster API server (KUBERNETES_SERVICE_HOST/PORT, set by the kubelet), used when `kubeconfig` is unset. */
  kubernetesService?: { host: string; port: string };
  nvmlLibraryPath?: string;
  /** Skip the system libnvidia-ml.so.1 fallback (tests and the simulated fleet). */
  nvmlNoFallback: boolean;
  nvmlCallTimeoutMs: number;
  /** Run NVML on its own worker thread (default); false keeps it on this process's libuv pool. */
  nvmlThreads: boolean;
  /** Watch NVML's event API (XID, DBE). Each watcher holds a libuv pool thread for up to 1 s per wait. */
  nvmlEvents: boolean;
  kmsgPath: string;
  kmsgPollMs: number;
  /** The XID history file: kmsg cursor plus the events read before it (older agents kept only the cursor here). */
  cursorFile?: string;
  /** Least time between XID history writes. */
  historyFlushMs?: number;
  bootIdPath?: string;
  /** The kubelet's pod-resources socket; "" disables the API (the pods of GPUs then come from process cgroups only). */
  podResourcesSocket: string;
  /** The host's /proc, where NVML's pids are looked up (their cgroups name the containers); "" disables that. */
  procRoot: string;
  /** How long a collected snapshot (and the kubelet's pod-resources answer) is reused for concurrent and back-to-back requests. */
  snapshotCacheMs: number;
  requestTimeoutMs: number;
  /** SIGTERM: how long in-flight requests and NVML calls may take before the process exits anyway. */
  shutdownGraceMs: number;
  /**
   * After requests, this long without one counts as idle, and the heaps a burst grew are collected
   * (agent/idle-heap-trimmer.ts; needs node --expose-gc). 0 turns it off; unset: 1000.
   */
  heapTrimIdleMs?: number;
  logLevel: string;
}

/** The default of --heap-trim-idle-ms. */
export const DEFAULT_HEAP_TRIM_IDLE_MS = 1000;
const MIN_HEAP_TRIM_IDLE_MS = 100;

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
  'token-verification': 'GPUDIAG_AGENT_TOKEN_VERIFICATION',
  kubeconfig: 'KUBECONFIG',
  'nvml-library': 'GPUDIAG_NVML_LIBRARY',
  'nvml-call-timeout-ms': 'GPUDIAG_NVML_CALL_TIMEOUT_MS',
  'nvml-events': 'GPUDIAG_NVML_EVENTS',
  'nvml-threads': 'GPUDIAG_NVML_THREADS',
  'kmsg-path': 'GPUDIAG_KMSG_PATH',
  'kmsg-poll-ms': 'GPUDIAG_KMSG_POLL_MS',
  'cursor-file': 'GPUDIAG_KMSG_CURSOR_FILE',
  'history-flush-ms': 'GPUDIAG_XID_HISTORY_FLUSH_MS',
  'boot-id-path': 'GPUDIAG_BOOT_ID_PATH',
  'pod-resources-socket': 'GPUDIAG_POD_RESOURCES_SOCKET',
  'proc-root': 'GPUDIAG_PROC_ROOT',
  'snapshot-cache-ms': 'GPUDIAG_SNAPSHOT_CACHE_MS',
  'request-timeout-ms': 'GPUDIAG_REQUEST_TIMEOUT_MS',
  'shutdown-grace-seconds': 'GPUDIAG_SHUTDOWN_GRACE_SECONDS',
  'heap-trim-idle-ms': 'GPUDIAG_HEAP_TRIM_IDLE_MS',
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
  --token-verification auto|local|tokenreview
                               verify tokens against the issuer's keys (local), by TokenReview, or locally
                               with TokenReview where the keys are unavailable (GPUDIAG_AGENT_TOKEN_VERIFICATION;
                               default auto)
  --kubeconfig FILE            for the issuer's keys and TokenReview (KUBECONFIG; in-cluster config when unset)
  --nvml-library PATH          libnvidia-ml.so.1 to load (GPUDIAG_NVML_LIBRARY)
  --nvml-no-fallback           do not fall back to the system libnvidia-ml.so.1 (GPUDIAG_NVML_NO_FALLBACK=true)
  --nvml-call-timeout-ms N     deadline of one NVML call (GPUDIAG_NVML_CALL_TIMEOUT_MS; default 2000)
  --nvml-events true|false     watch NVML's event API for XIDs (GPUDIAG_NVML_EVENTS; default true)
  --nvml-threads true|false    NVML on its own worker thread, watched for hung calls (GPUDIAG_NVML_THREADS;
                               default true; false: this process's libuv pool, for many agents in one process)
  --kmsg-path PATH             kernel log device or stand-in; "" disables (GPUDIAG_KMSG_PATH; default /dev/kmsg)
  --kmsg-poll-ms N             kernel log poll interval (GPUDIAG_KMSG_POLL_MS; default 500)
  --cursor-file PATH           where the XID history persists: the kmsg cursor with every event read
                               before it, so a restart loses nothing (GPUDIAG_KMSG_CURSOR_FILE; default none)
  --history-flush-ms N         least time between history writes (GPUDIAG_XID_HISTORY_FLUSH_MS; default 2000)
  --boot-id-path PATH          boot identity (GPUDIAG_BOOT_ID_PATH; default /proc/sys/kernel/random/boot_id)
  --pod-resources-socket PATH  the kubelet's pod-resources socket, for the pods of each GPU; "" disables
                               (GPUDIAG_POD_RESOURCES_SOCKET; default /var/lib/kubelet/pod-resources/kubelet.sock)
  --proc-root PATH             the host's /proc, where GPU processes are mapped to containers; "" disables
                               (GPUDIAG_PROC_ROOT; default /proc)
  --snapshot-cache-ms N        reuse a snapshot and the pod-resources answer this long
                               (GPUDIAG_SNAPSHOT_CACHE_MS; default 2000)
  --request-timeout-ms N       per-request deadline (GPUDIAG_REQUEST_TIMEOUT_MS; default 30000)
  --shutdown-grace-seconds N   on SIGTERM, wait this long for in-flight work, then exit anyway
                               (GPUDIAG_SHUTDOWN_GRACE_SECONDS; default 20; keep it below the pod's
                               terminationGracePeriodSeconds)
  --heap-trim-idle-ms N        after requests, this long without one and the heap a burst grew is given
                               back by one full collection (GPUDIAG_HEAP_TRIM_IDLE_MS; default 1000;
                               0 disables; needs node --expose-gc, which the agent image passes)
  --log-level LEVEL            error|warn|info|debug (GPUDIAG_LOG_LEVEL; default info)
`;

/** A username or audience: printable, no spaces or commas, bounded. */
const TOKEN_NAME = /^[\x21-\x2b\x2d-\x7e]{1,253}$/;

const configError = (m: string): Error => new ConfigError(m);

function integer(flag: string, value: string | undefined, fallback: number, min: number, max: number): number {
  return integerFlag(flag, value, fallback, min, max, configError);
}

/** --heap-trim-idle-ms: 0 (off) or 100 ms to an hour; a shorter interval would collect between the requests of one burst. */
function heapTrimIdleFlag(value: string | undefined): number {
  const ms = integer('heap-trim-idle-ms', value, DEFAULT_HEAP_TRIM_IDLE_MS, 0, 3_600_000);
  if (ms > 0 && ms < MIN_HEAP_TRIM_IDLE_MS)
    throw new ConfigError(`--heap-trim-idle-ms must be 0 (off) or at least ${MIN_HEAP_TRIM_IDLE_MS}, got ${ms}`);
  return ms;
}

/** The kubernetes Service address the kubelet puts in every pod's environment; undefined outside a pod. */
function inClusterService(env: NodeJS.ProcessEnv): { host: string; port: string } | undefined {
  try {
    return inClusterServiceFromEnv(env);
  } catch (err) {
    throw new ConfigError((err as Error).message);
  }
}

/** Longest unix socket path (sun_path holds 108 bytes with the terminating NUL). */
const MAX_SOCKET_PATH_BYTES = 107;

/** The pod-resources socket flag: "" (disabled) or an absolute path short enough for a unix socket. */
function podResourcesSocketFlag(value: string): string {
  if (value === '') return value;
  if (!path.isAbsolute(value)) throw new ConfigError(`--pod-resources-socket must be an absolute path or "", got ${quote(value)}`);
  if (Buffer.byteLength(value) > MAX_SOCKET_PATH_BYTES)
    throw new ConfigError(
      `--pod-resources-socket must be at most ${MAX_SOCKET_PATH_BYTES} bytes (a unix socket path), got ${quote(value)}`,
    );
  return value;
}

/** The proc root flag: "" (no process mapping) or an absolute path to an existing directory. */
function procRootFlag(value: string): string {
  if (value === '') return value;
  if (!path.isAbsolute(value)) throw new ConfigError(`--proc-root must be an absolute path, got ${quote(value)}`);
  let isDirectory = false;
  try {
    isDirectory = statSync(value).isDirectory();
  } catch (err) {
    throw new ConfigError(`--proc-root: cannot read ${quote(value, 200)}: ${(err as Error).message}`);
  }
  if (!isDirectory) throw new ConfigError(`--proc-root: ${quote(value, 200)} is not a directory`);
  return value;
}

/** Parses flags (then env) into a frozen AgentConfig; throws ConfigError naming the bad flag. */
export function parseAgentConfig(argv: readonly string[], env: NodeJS.ProcessEnv): Readonly<AgentConfig> {
  const flags = readFlags(argv, env, ENV, ['nvml-no-fallback'], configError);
  const get = flags.get;

  const nodeName = get('node-name') ?? '';
  if (nodeName === '') throw new ConfigError('--node-name (or NODE_NAME) is required');
  if (!isDnsSubdomain(nodeName)) throw new ConfigError(`--node-name must be a DNS-1123 subdomain, got ${quote(nodeName)}`);

  const { host: listenHost, port: listenPort } = hostPortFlag('listen', get('listen') ?? '0.0.0.0:9440', configError);

  const certFile = get('tls-cert');
  const keyFile = get('tls-key');
  if ((certFile === undefined) !== (keyFile === undefined)) throw new ConfigError('--tls-cert and --tls-key must be given together');
  if (certFile !== undefined) readableFileFlag('tls-cert', certFile, configError);
  if (keyFile !== undefined) readableFileFlag('tls-key', keyFile, configError);

  const auth = choiceFlag('auth', get('auth'), ['tokenreview', 'none'] as const, 'tokenreview', configError);
  const allowedCallers = (get('allowed-callers') ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  if (auth === 'tokenreview' && allowedCallers.length === 0) {
    throw new ConfigError('--allowed-callers is required with --auth tokenreview (e.g. system:serviceaccount:gpudiag:gpudiag-operator)');
  }
  const badCaller = allowedCallers.find((c) => !TOKEN_NAME.test(c));
  if (badCaller !== undefined)
    throw new ConfigError(`--allowed-callers must be comma-separated usernames without spaces, got ${quote(badCaller)}`);
  const tokenAudience = get('token-audience') ?? 'gpudiag-agent';
  if (!TOKEN_NAME.test(tokenAudience))
    throw new ConfigError(`--token-audience must be a token audience without spaces or commas, got ${quote(tokenAudience)}`);

  const tokenVerification = choiceFlag('token-verification', get('token-verification'), TOKEN_VERIFICATION_MODES, 'auto', configError);

  const nvmlEvents = choiceFlag('nvml-events', get('nvml-events'), ['true', 'false'] as const, 'true', configError);
  const nvmlThreads = choiceFlag('nvml-threads', get('nvml-threads'), ['true', 'false'] as const, 'true', configError);
  const level = choiceFlag('log-level', get('log-level'), ['error', 'warn', 'info', 'debug'] as const, 'info', configError);

  const optional = <K extends string>(key: K, value: string | undefined): { [P in K]?: string } =>
    (value === undefined || value === '' ? {} : { [key]: value }) as { [P in K]?: string };
  const kubeconfig = get('kubeconfig');
  if (kubeconfig !== undefined && kubeconfig !== '') readableFileFlag('kubeconfig', kubeconfig, configError);
  const kubernetesService = auth === 'tokenreview' && (kubeconfig ?? '') === '' ? inClusterService(env) : undefined;
  const cursorFile = get('cursor-file');
  if (cursorFile !== undefined && cursorFile !== '') {
    writableDirectoryFlag('cursor-file', cursorFile, configError);
    if (existsSync(cursorFile)) readableFileFlag('cursor-file', cursorFile, configError);
  }

  return Object.freeze({
    nodeName,
    listenHost,
    listenPort,
    ...(certFile !== undefined && keyFile !== undefined ? { tls: { certFile, keyFile } } : {}),
    auth,
    allowedCallers: Object.freeze(allowedCallers),
    tokenAudience,
    tokenVerification,
    ...optional('kubeconfig', kubeconfig),
    ...(kubernetesService !== undefined ? { kubernetesService: Object.freeze(kubernetesService) } : {}),
    ...optional('nvmlLibraryPath', get('nvml-library')),
    nvmlNoFallback: flags.isSet('nvml-no-fallback') || env['GPUDIAG_NVML_NO_FALLBACK'] === 'true',
    nvmlCallTimeoutMs: integer('nvml-call-timeout-ms', get('nvml-call-timeout-ms'), 2000, 10, 60_000),
    nvmlEvents: nvmlEvents === 'true',
    nvmlThreads: nvmlThreads === 'true',
    kmsgPath: get('kmsg-path') ?? '/dev/kmsg',
    kmsgPollMs: integer('kmsg-poll-ms', get('kmsg-poll-ms'), 500, 10, 60_000),
    ...optional('cursorFile', cursorFile),
    historyFlushMs: integer('history-flush-ms', get('history-flush-ms'), 2000, 0, 3_600_000),
    ...optional('bootIdPath', get('boot-id-path')),
    podResourcesSocket: podResourcesSocketFlag(get('pod-resources-socket') ?? DEFAULT_POD_RESOURCES_SOCKET),
    procRoot: procRootFlag(get('proc-root') ?? '/proc'),
    snapshotCacheMs: integer('snapshot-cache-ms', get('snapshot-cache-ms'), 2000, 0, 600_000),
    requestTimeoutMs: integer('request-timeout-ms', get('request-timeout-ms'), 30_000, 100, 600_000),
    shutdownGraceMs: integer('shutdown-grace-seconds', get('shutdown-grace-seconds'), 20, 1, 3600) * 1000,
    heapTrimIdleMs: heapTrimIdleFlag(get('heap-trim-idle-ms')),
    logLevel: level,
  });
}
