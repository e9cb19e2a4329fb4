/**
 * The `gpudiag` command. Each subcommand lives in its own module under cli/commands/ and is
 * loaded lazily, so `gpudiag xid analyze` does not pay for the Kubernetes client.
 */
import { argv, exit, stderr, stdout } from 'node:process';
import { packageVersion } from '../lib/package-version.js';

/** A subcommand: receives its own arguments (after the command words) and returns an exit code. */
export type CommandRunner = (args: string[]) => Promise<number>;

interface CommandEntry {
  words: string[];
  summary: string;
  load: () => Promise<CommandRunner>;
}

const commands: CommandEntry[] = [
  { words: ['agent'], summary: 'run the node agent (NVML snapshots and XID events over HTTP)', load: async () => (await import('./commands/agent.js')).runAgent },
  { words: ['operator'], summary: 'run the operator (reconciles GPUDiagnostics by asking the agents)', load: async () => (await import('./commands/operator.js')).runOperator },
  { words: ['dev', 'up'], summary: 'start gpudiag locally on an embedded control plane', load: async () => (await import('./commands/dev-up.js')).runDevUp },
  { words: ['mcp'], summary: 'serve gpudiag as MCP tools over stdio (uses your kubeconfig and RBAC)', load: async () => (await import('./commands/mcp.js')).runMcp },
  { words: ['xid', 'analyze'], summary: 'find XID errors in kernel-log text (file or stdin)', load: async () => (await import('./commands/xid-analyze.js')).runXidAnalyze },
];

function usage(): string {
  const width = Math.max(...commands.map((c) => c.words.join(' ').length));
  return [
    'usage: gpudiag <command> [options]',
    '',
    'commands:',
    ...commands.map((c) => `  ${c.words.join(' ').padEnd(width)}  ${c.summary}`),
    '',
    'Run `gpudiag <command> --help` for a command\'s options, `gpudiag --version` for the version.',
    '',
  ].join('\n');
}

async function main(args: string[]): Promise<number> {
  if (args.length === 0 || args[0] === '--help' || args[0] === '-h' || args[0] === 'help') {
    stdout.write(usage());
    return 0;
  }
  if (args[0] === '--version' || args[0] === '-V' || args[0] === 'version') {
    stdout.write(`gpudiag ${packageVersion()}\n`);
    return 0;
  }
  const match = commands.find((c) => c.words.every((w, i) => args[i] === w));
  if (match === undefined) {
    stderr.write(`gpudiag: unknown command "${args.slice(0, 2).join(' ')}"\n\n${usage()}`);
    return 2;
  }
  const run = await match.load();
  return run(args.slice(match.words.length));
}

main(argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    stderr.write(`gpudiag: ${err instanceof Error ? err.message : String(err)}\n`);
    exit(1);
  },
);
