/** `gpudiag completion bash|zsh`: prints a shell completion script generated from the command table. */
import { quote } from '../../lib/text.js';
import { completionScript, SHELLS, type Shell } from '../completion.js';
import { COMMANDS } from '../registry.js';

export const COMPLETION_USAGE = `usage: gpudiag completion bash|zsh

Prints a completion script for commands, flags and flag values (and node names for
\`gpudiag diagnose\`, through kubectl when it is installed).

  bash:  source <(gpudiag completion bash)     # or save it in /etc/bash_completion.d/gpudiag
  zsh:   source <(gpudiag completion zsh)      # or save it as _gpudiag in a directory on $fpath

options:
  -h, --help   show this help
  --version    print gpudiag's version

exit status: 0 on success, 2 on a usage error.
`;

/** Runs `gpudiag completion`; returns the exit code. */
export async function runCompletion(
  args: string[],
  out: NodeJS.WritableStream = process.stdout,
  err: NodeJS.WritableStream = process.stderr,
): Promise<number> {
  if (args.includes('--help') || args.includes('-h')) {
    out.write(COMPLETION_USAGE);
    return 0;
  }
  const shell = SHELLS.find((s) => s === args[0]);
  if (args.length !== 1 || shell === undefined) {
    const got = args.length === 0 ? 'nothing' : quote(args.join(' '));
    err.write(`gpudiag completion: expected one shell, bash or zsh; got ${got}\n\n${COMPLETION_USAGE}`);
    return 2;
  }
  out.write(completionScript(shell satisfies Shell, COMMANDS));
  return 0;
}
