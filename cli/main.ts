/**
 * The `gpudiag` command. Each subcommand lives in its own module under cli/commands/, listed
 * in cli/registry.ts and loaded lazily.
 */
import { argv, exit, stderr, stdout } from 'node:process';
import { versionRequested } from '../lib/flags.js';
import { packageVersion } from '../lib/package-version.js';
import { COMMANDS as commands } from './registry.js';

function usage(): string {
  const width = Math.max(...commands.map((c) => c.words.join(' ').length));
  return [
    'usage: gpudiag <command> [options]',
    '',
    'commands:',
    ...commands.map((c) => `  ${c.words.join(' ').padEnd(width)}  ${c.summary}`),
    '',
    "Run `gpudiag <command> --help` for a command's options; every command also takes --version.",
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
  const rest = args.slice(match.words.length);
  // Answered here, before the command's own parser, so every command takes --version.
  if (versionRequested(rest)) {
    stdout.write(`gpudiag ${packageVersion()}\n`);
    return 0;
  }
  const run = await match.load();
  return run(rest);
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
