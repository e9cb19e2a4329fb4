/**
 * Every `gpudiag` subcommand in one table: main.ts dispatches through it and the shell
 * completion scripts are generated from it. Modules load lazily, so `gpudiag xid analyze`
 * does not pay for the Kubernetes client. The flag lists are checked against each command's
 * own --help text by cli/registry.test.ts, so completion cannot drift from the parsers.
 */

/** A subcommand: receives its own arguments (after the command words) and returns an exit code. */
export type CommandRunner = (args: string[]) => Promise<number>;

/** How a flag is completed: a switch takes no value, `value` any text (files offered), a list its choices. */
export type FlagKind = 'switch' | 'value' | readonly string[];

/** One subcommand. */
export interface CommandEntry {
  readonly words: readonly string[];
  readonly summary: string;
  /** Long flags (and their short aliases as separate keys) with how their values complete. */
  readonly flags: Readonly<Record<string, FlagKind>>;
  readonly load: () => Promise<CommandRunner>;
}

const LOG_LEVELS = ['error', 'warn', 'info', 'debug'] as const;
/** The checks of a GPUDiagnostic (crds/gpudiag.io_gpudiagnostics.yaml spec.checks). */
export const CHECKS = ['inventory', 'health', 'xid', 'ecc', 'thermal', 'power', 'nvlink', 'pcie', 'processes'] as const;
/** Output formats of `gpudiag diagnose`. */
export const DIAGNOSE_OUTPUTS = ['table', 'json', 'yaml'] as const;

/** Flags every command answers (main.ts handles --version before the command parses its own). */
const COMMON: Readonly<Record<string, FlagKind>> = { '--help': 'switch', '-h': 'switch', '--version': 'switch' };

const flags = (own: Record<string, FlagKind>): Readonly<Record<string, FlagKind>> => Object.freeze({ ...own, ...COMMON });

const value = (...names: string[]): Record<string, FlagKind> => Object.fromEntries(names.map((n) => [n, 'value' as const]));

export const COMMANDS: readonly CommandEntry[] = [
  {
    words: ['agent'],
    summary: 'run the node agent (NVML snapshots and XID events over HTTP)',
    flags: flags({
      ...value(
        '--node-name',
        '--listen',
        '--tls-cert',
        '--auth',
        '--allowed-callers',
        '--token-audience',
        '--kubeconfig',
        '--nvml-library',
      ),
      ...value(
        '--nvml-call-timeout-ms',
        '--nvml-events',
        '--nvml-threads',
        '--kmsg-path',
        '--kmsg-poll-ms',
        '--cursor-file',
        '--history-flush-ms',
      ),
      ...value(
        '--boot-id-path',
        '--pod-resources-socket',
        '--proc-root',
        '--snapshot-cache-ms',
        '--request-timeout-ms',
        '--shutdown-grace-seconds',
        '--heap-trim-idle-ms',
      ),
      '--nvml-no-fallback': 'switch',
      '--token-verification': ['auto', 'local', 'tokenreview'],
      '--log-level': LOG_LEVELS,
    }),
    load: async () => (await import('./commands/agent.js')).runAgent,
  },
  {
    words: ['operator'],
    summary: 'run the operator (reconciles GPUDiagnostics by asking the agents)',
    flags: flags({
      ...value(
        '--kubeconfig',
        '--namespaces',
        '--agent-namespace',
        '--agent-selector',
        '--agent-port',
        '--agent-scheme',
        '--agent-ca-file',
      ),
      ...value(
        '--agent-token-file',
        '--fanout-concurrency',
        '--fanout-retries',
        '--workers',
        '--per-node-timeout-seconds',
        '--policy-grace-seconds',
      ),
      ...value(
        '--policy-selector',
        '--policy-max-interval-seconds',
        '--probe-listen',
        '--mcp-listen',
        '--mcp-namespace',
        '--mcp-read-only',
      ),
      ...value('--mcp-allowed-hosts', '--mcp-audience', '--mcp-rate-limit-per-second', '--mcp-rate-limit-burst', '--leader-election'),
      ...value(
        '--lease-namespace',
        '--lease-name',
        '--lease-duration-seconds',
        '--identity',
        '--api-timeout-seconds',
        '--shutdown-grace-seconds',
      ),
      '--log-level': LOG_LEVELS,
    }),
    load: async () => (await import('./commands/operator.js')).runOperator,
  },
  {
    words: ['diagnose'],
    summary: 'diagnose GPUs now: create a GPUDiagnostic, follow it, print the result worst first',
    flags: flags({
      ...value('--selector', '-l', '--policy', '--xid-lookback', '--wait', '--ttl', '--kubeconfig', '--context', '--namespace', '-n'),
      '--checks': CHECKS,
      '--output': DIAGNOSE_OUTPUTS,
      '-o': DIAGNOSE_OUTPUTS,
    }),
    load: async () => (await import('./commands/diagnose.js')).runDiagnose,
  },
  {
    words: ['dev', 'up'],
    summary: 'start gpudiag locally on an embedded control plane',
    flags: flags({ ...value('--nodes', '--scenario', '--state-dir'), '--real-node': 'switch', '--no-samples': 'switch' }),
    load: async () => (await import('./commands/dev-up.js')).runDevUp,
  },
  {
    words: ['mcp'],
    summary: 'serve gpudiag as MCP tools over stdio (uses your kubeconfig and RBAC)',
    flags: flags({
      ...value('--kubeconfig', '--context', '--namespace', '--agent-namespace', '--agent-selector', '--ttl-seconds', '--wait-seconds'),
      ...value('--idle-timeout-seconds'),
      '--read-only': 'switch',
      '--log-level': LOG_LEVELS,
    }),
    load: async () => (await import('./commands/mcp.js')).runMcp,
  },
  {
    words: ['xid', 'analyze'],
    summary: 'find XID errors in kernel-log text (file or stdin)',
    flags: flags({ '--format': ['table', 'jsonl'], '--driver-version': 'value' }),
    load: async () => (await import('./commands/xid-analyze.js')).runXidAnalyze,
  },
  {
    words: ['completion'],
    summary: 'print a shell completion script: gpudiag completion bash|zsh',
    flags: flags({}),
    load: async () => (await import('./commands/completion.js')).runCompletion,
  },
];
