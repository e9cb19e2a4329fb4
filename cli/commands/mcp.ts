/**
 * `gpudiag mcp`: serve the gpudiag MCP tools over stdio with the user's kubeconfig, so their
 * own RBAC applies. Logs go to stderr only (stdout is the protocol). Exits 0 on stdin EOF,
 * SIGTERM/SIGINT or the idle timeout.
 */
import { parseArgs } from 'node:util';
import { choiceFlag, integerFlag, readableFileFlag } from '../../lib/flags.js';
import { equalitySelectorProblem, isDnsLabel } from '../../lib/kube/names.js';
import { createLogger, errorFields } from '../../lib/logger.js';
import { quote } from '../../lib/text.js';
import { DEFAULT_SETTINGS } from '../../operator/mcp/settings.js';
import type { FacadeSettings } from '../../operator/mcp/tool.js';

const USAGE = `usage: gpudiag mcp [options]

Serves gpudiag as MCP tools over stdio, acting with your kubeconfig (your RBAC applies).

  --kubeconfig FILE          kubeconfig (default: $KUBECONFIG or ~/.kube/config)
  --context NAME             kubeconfig context (default: the current context)
  --namespace NS             where GPUDiagnostics are created and read (default: the context's namespace, else default)
  --read-only                only read tools: never create GPUDiagnostics
  --agent-namespace NS       where the gpudiag agents run (default gpudiag-system)
  --agent-selector k=v,...   agent pod labels (default ${DEFAULT_SETTINGS.agentSelector})
  --ttl-seconds N            delete created GPUDiagnostics N seconds after they finish (default 3600)
  --wait-seconds N           default wait for a diagnostic before answering with progress (default 120)
  --idle-timeout-seconds N   exit after N seconds without a message from the client (default 0: never)
  --log-level LEVEL          error|warn|info|debug (default info; logs go to stderr)
`;

class UsageError extends Error {}

const usageError = (m: string): Error => new UsageError(m);

function integer(flag: string, value: string | undefined, fallback: number, min: number, max: number): number {
  return integerFlag(flag, value, fallback, min, max, usageError);
}

function namespace(flag: string, value: string): string {
  if (!isDnsLabel(value)) throw new UsageError(`--${flag} must be a namespace name (RFC 1123 label), got ${quote(value)}`);
  return value;
}

interface McpCliConfig {
  kubeconfig?: string;
  context?: string;
  namespace?: string;
  settings: Omit<FacadeSettings, 'namespace'>;
  idleTimeoutMs: number;
  logLevel: string;
}

function parse(args: string[]): McpCliConfig {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args,
      strict: true,
      allowPositionals: false,
      options: {
        kubeconfig: { type: 'string' },
        context: { type: 'string' },
        namespace: { type: 'string' },
        'read-only': { type: 'boolean' },
        'agent-namespace': { type: 'string' },
        'agent-selector': { type: 'string' },
        'ttl-seconds': { type: 'string' },
        'wait-seconds': { type: 'string' },
        'idle-timeout-seconds': { type: 'string' },
        'log-level': { type: 'string' },
      },
    }));
  } catch (err) {
    throw new UsageError(err instanceof Error ? err.message : String(err));
  }
  const str = (k: string): string | undefined => (typeof values[k] === 'string' ? values[k] : undefined);
  const level = choiceFlag('log-level', str('log-level'), ['error', 'warn', 'info', 'debug'] as const, 'info', usageError);
  const ns = str('namespace');
  const kubeconfig = str('kubeconfig');
  if (kubeconfig !== undefined) readableFileFlag('kubeconfig', kubeconfig, usageError);
  const context = str('context');
  if (context === '') throw new UsageError('--context must name a kubeconfig context');
  const agentSelector = str('agent-selector') ?? DEFAULT_SETTINGS.agentSelector;
  const badTerm = equalitySelectorProblem(agentSelector, { equalityOnly: true });
  if (badTerm !== undefined) throw new UsageError(`--agent-selector must be comma-separated key=value labels, got ${quote(badTerm)}`);
  return {
    ...(kubeconfig !== undefined ? { kubeconfig } : {}),
    ...(context !== undefined ? { context } : {}),
    ...(ns !== undefined ? { namespace: namespace('namespace', ns) } : {}),
    settings: {
      ...DEFAULT_SETTINGS,
      agentNamespace: namespace('agent-namespace', str('agent-namespace') ?? DEFAULT_SETTINGS.agentNamespace),
      agentSelector,
      ttlSecondsAfterFinished: integer('ttl-seconds', str('ttl-seconds'), DEFAULT_SETTINGS.ttlSecondsAfterFinished, 0, 31_536_000),
      defaultWaitSeconds: integer('wait-seconds', str('wait-seconds'), DEFAULT_SETTINGS.defaultWaitSeconds, 1, 600),
      readOnly: values['read-only'] === true,
    },
    idleTimeoutMs: integer('idle-timeout-seconds', str('idle-timeout-seconds'), 0, 0, 86_400) * 1000,
    logLevel: level,
  };
}

/** Runs the stdio MCP server; resolves with the exit code. */
export async function runMcp(args: string[]): Promise<number> {
  if (args.includes('--help') || args.includes('-h')) {
    process.stderr.write(USAGE);
    return 0;
  }
  let config: McpCliConfig;
  try {
    config = parse(args);
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`gpudiag mcp: ${err.message}\n\n${USAGE}`);
      return 2;
    }
    throw err;
  }
  const logger = createLogger({ level: config.logLevel, stderrOnly: true, defaultMeta: { component: 'mcp' } });
  // Loaded only once the flags are valid: a bad flag is refused without loading the SDK.
  const [{ KubeConfig }, { serveStdio }] = await Promise.all([import('@kubernetes/client-node'), import('../../operator/mcp/stdio.js')]);
  const kc = new KubeConfig();
  try {
    if (config.kubeconfig !== undefined) kc.loadFromFile(config.kubeconfig);
    else kc.loadFromDefault();
  } catch (err) {
    logger.error('cannot load the kubeconfig', errorFields(err));
    return 1;
  }
  if (config.context !== undefined) {
    if (kc.getContextObject(config.context) === null) {
      process.stderr.write(`gpudiag mcp: --context: the kubeconfig has no context ${quote(config.context)}\n\n${USAGE}`);
      return 2;
    }
    kc.setCurrentContext(config.context);
  }
  if (kc.getCurrentCluster() === null) {
    logger.error('the kubeconfig has no current cluster', { kubeconfig: config.kubeconfig ?? '(default)' });
    return 1;
  }
  const contextNs = kc.getContextObject(kc.getCurrentContext())?.namespace;
  const settings: FacadeSettings = Object.freeze({
    ...config.settings,
    namespace: config.namespace ?? (contextNs !== undefined && contextNs !== '' ? contextNs : 'default'),
  });
  // serveStdio releases every handle it took: the process exits by itself once it returns.
  await serveStdio({ kc, settings, logger, idleTimeoutMs: config.idleTimeoutMs });
  return 0;
}
