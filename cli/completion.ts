/**
 * Shell completion scripts for bash and zsh, generated from the command table
 * (cli/registry.ts): commands, each command's flags, the values of flags with a fixed set
 * (`-o table|json|yaml`, `--checks` as a comma list), files elsewhere, and node names for
 * `gpudiag diagnose` through kubectl when it is installed. Pure: the table in, a script out.
 */
import type { CommandEntry, FlagKind } from './registry.js';

/** Shells a script can be generated for. */
export const SHELLS = ['bash', 'zsh'] as const;
export type Shell = (typeof SHELLS)[number];

/** Node names for `gpudiag diagnose NODE...`, bounded in time so a slow cluster never hangs the shell. */
const KUBECTL_NODES = 'kubectl get nodes -o name --request-timeout=3s 2>/dev/null | sed "s|^node/||"';

/** Only names the registry controls reach the scripts; still, refuse anything a shell would read as syntax. */
function word(text: string): string {
  if (!/^[-A-Za-z0-9_.,]+$/.test(text)) throw new Error(`completion: ${JSON.stringify(text)} is not a plain word`);
  return text;
}

function choices(kind: FlagKind): readonly string[] | undefined {
  return typeof kind === 'string' ? undefined : kind;
}

const key = (c: CommandEntry): string => c.words.join('_');

function bashCommandCase(c: CommandEntry): string {
  const flags = Object.keys(c.flags).map(word);
  const valueFlags = Object.entries(c.flags).filter(([, k]) => k !== 'switch');
  const lines = [`    ${word(key(c))})`, '      case "$prev" in'];
  for (const [flag, kind] of valueFlags) {
    const values = choices(kind);
    // A value with no fixed set returns nothing, and `complete -o default` offers file names.
    if (values === undefined) lines.push(`        ${word(flag)}) return 0 ;;`);
    else lines.push(`        ${word(flag)}) _gpudiag_values "${values.map(word).join(' ')}"; return 0 ;;`);
  }
  lines.push('      esac');
  lines.push(`      if [[ "$cur" == -* ]]; then COMPREPLY=( $(compgen -W "${flags.join(' ')}" -- "$cur") ); return 0; fi`);
  if (c.words.join(' ') === 'diagnose')
    lines.push(`      command -v kubectl >/dev/null && COMPREPLY=( $(compgen -W "$(${KUBECTL_NODES})" -- "$cur") )`);
  if (c.words.join(' ') === 'completion') lines.push('      COMPREPLY=( $(compgen -W "bash zsh" -- "$cur") )');
  lines.push('      ;;');
  return lines.join('\n');
}

/** The bash script: `source <(gpudiag completion bash)`. */
export function bashCompletion(commands: readonly CommandEntry[]): string {
  const firstWords = [...new Set(commands.map((c) => word(c.words[0] ?? '')))];
  const seconds = new Map<string, string[]>();
  for (const c of commands) {
    if (c.words.length > 1) seconds.set(c.words[0] ?? '', [...(seconds.get(c.words[0] ?? '') ?? []), word(c.words[1] ?? '')]);
  }
  const detect = commands.map((c) => {
    const tests = c.words.map((w, i) => `"\${COMP_WORDS[${i + 1}]}" == "${word(w)}"`).join(' && ');
    return `  if [[ $COMP_CWORD -gt ${c.words.length} && ${tests} ]]; then cmd=${word(key(c))}; fi`;
  });
  return `# bash completion for gpudiag. Load it with: source <(gpudiag completion bash)
# or install it: gpudiag completion bash > /etc/bash_completion.d/gpudiag

# Offers the words in $1 for the current word; a comma list (--checks a,b) completes its last item.
_gpudiag_values() {
  local head="" last="$cur"
  if [[ "$cur" == *,* ]]; then head="\${cur%,*},"; last="\${cur##*,}"; fi
  COMPREPLY=( $(compgen -P "$head" -W "$1" -- "$last") )
}

_gpudiag() {
  local cur="\${COMP_WORDS[COMP_CWORD]}" prev="\${COMP_WORDS[COMP_CWORD-1]}" cmd=""
  # --flag=value: bash splits at "=", so the flag is the word before it.
  if [[ "$cur" == "=" ]]; then cur=""; fi
  if [[ "$prev" == "=" && $COMP_CWORD -gt 1 ]]; then prev="\${COMP_WORDS[COMP_CWORD-2]}"; fi
${detect.join('\n')}
  if [[ -z "$cmd" ]]; then
    if [[ $COMP_CWORD -eq 1 ]]; then
      COMPREPLY=( $(compgen -W "${firstWords.join(' ')} --help --version" -- "$cur") )
    elif [[ $COMP_CWORD -eq 2 ]]; then
      case "\${COMP_WORDS[1]}" in
${[...seconds].map(([first, next]) => `        ${word(first)}) COMPREPLY=( $(compgen -W "${next.join(' ')}" -- "$cur") ) ;;`).join('\n')}
      esac
    fi
    return 0
  fi
  case "$cmd" in
${commands.map(bashCommandCase).join('\n')}
  esac
  return 0
}

complete -o default -F _gpudiag gpudiag
`;
}

function zshSpec(flag: string, kind: FlagKind): string {
  const values = choices(kind);
  // "--flag=": the value may follow as the next word or after "=" (zsh's _arguments syntax).
  const name = flag.startsWith('--') ? `${word(flag)}=` : `${word(flag)}+`;
  if (kind === 'switch') return `'${word(flag)}'`;
  if (values === undefined) return `'${name}:value:_files'`;
  if (flag === '--checks') return `'${name}:checks:_values -s , check ${values.map(word).join(' ')}'`;
  return `'${name}:value:(${values.map(word).join(' ')})'`;
}

function zshCommandCase(c: CommandEntry): string {
  const specs = Object.entries(c.flags).map(([f, k]) => zshSpec(f, k));
  const joined = c.words.join(' ');
  if (joined === 'diagnose') specs.push("'*:node:_gpudiag_nodes'");
  else if (joined === 'xid analyze') specs.push("'*:file:_files'");
  else if (joined === 'completion') specs.push("'1:shell:(bash zsh)'");
  return [`    ${word(key(c))})`, `      _arguments -s \\`, ...specs.map((s) => `        ${s} \\`), '        && return 0', '      ;;'].join(
    '\n',
  );
}

/** The zsh script: `source <(gpudiag completion zsh)`, or saved as `_gpudiag` on $fpath. */
export function zshCompletion(commands: readonly CommandEntry[]): string {
  const firsts = new Map<string, string[]>();
  for (const c of commands) {
    const first = word(c.words[0] ?? '');
    const summary = c.words.length === 1 ? c.summary : `${c.words.join(' ')}: ${c.summary}`;
    // The summaries are ours; ':' and quotes would break _describe's 'name:description' items.
    firsts.set(first, [...(firsts.get(first) ?? []), summary.replace(/:\s*/g, ' - ').replace(/['\\]/g, ' ')]);
  }
  const items = [...firsts].map(([w, s]) => `    '${w}:${s.join('; ')}'`);
  const seconds = commands.filter((c) => c.words.length > 1);
  return `#compdef gpudiag
# zsh completion for gpudiag. Load it with: source <(gpudiag completion zsh)
# or save it as _gpudiag in a directory on $fpath.

_gpudiag_nodes() {
  local -a nodes
  (( $+commands[kubectl] )) && nodes=(\${(f)"$(${KUBECTL_NODES})"})
  compadd -a nodes
}

_gpudiag() {
  local -a cmds
  cmds=(
${items.join('\n')}
  )
  if (( CURRENT == 2 )); then
    _describe 'command' cmds
    compadd -- --help --version
    return
  fi
  local cmd="\${words[2]}" n=1
  case "\${words[2]}" in
${[...new Set(seconds.map((c) => c.words[0] ?? ''))]
  .map((first) => {
    const next = seconds.filter((c) => c.words[0] === first).map((c) => word(c.words[1] ?? ''));
    return [
      `    ${word(first)})`,
      `      if (( CURRENT == 3 )); then compadd -- ${next.join(' ')}; return; fi`,
      '      cmd="${words[2]}_${words[3]}"; n=2 ;;',
    ].join('\n');
  })
  .join('\n')}
  esac
  shift $n words
  (( CURRENT -= n ))
  case "$cmd" in
${commands.map(zshCommandCase).join('\n')}
  esac
}

if [ "$funcstack[1]" = "_gpudiag" ]; then
  _gpudiag "$@"
else
  compdef _gpudiag gpudiag
fi
`;
}

/** The script for `shell`. */
export function completionScript(shell: Shell, commands: readonly CommandEntry[]): string {
  return shell === 'bash' ? bashCompletion(commands) : zshCompletion(commands);
}
