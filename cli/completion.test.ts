import { spawnSync } from 'node:child_process';
import { describe, expect, it } from '@jest/globals';
import { bashCompletion, zshCompletion } from './completion.js';
import { COMMANDS } from './registry.js';

const bash = bashCompletion(COMMANDS);
const zsh = zshCompletion(COMMANDS);
const hasZsh = spawnSync('zsh', ['-c', 'true']).status === 0;
// Found on the test's PATH; the completion itself runs with an empty one (no kubectl to ask for node names).
const BASH = spawnSync('sh', ['-c', 'command -v bash'], { encoding: 'utf8' }).stdout.trim();

/** What the bash function offers for a command line (the last word is the one being completed). */
function bashOffers(...words: string[]): string[] {
  const line = `COMP_WORDS=(${words.map((w) => `'${w}'`).join(' ')}); COMP_CWORD=${words.length - 1}`;
  const script = `${bash}\n${line}; _gpudiag; printf '%s\\n' "\${COMPREPLY[@]}"`;
  const res = spawnSync(BASH, ['--norc', '--noprofile', '-c', script], { encoding: 'utf8', env: { PATH: '/nonexistent' } });
  expect(res.stderr).toBe('');
  return res.stdout.split('\n').filter((l) => l !== '');
}

describe('bash completion', () => {
  it('is valid bash (bash -n) and registers the function for gpudiag', () => {
    const res = spawnSync('bash', ['-n'], { input: bash, encoding: 'utf8' });
    expect(res.stderr).toBe('');
    expect(res.status).toBe(0);
    expect(bash).toMatch(/^complete -o default -F _gpudiag gpudiag$/m);
  });

  it('offers every command word, then the second word of two-word commands', () => {
    expect(bashOffers('gpudiag', '')).toEqual(['agent', 'operator', 'diagnose', 'dev', 'mcp', 'xid', 'completion', '--help', '--version']);
    expect(bashOffers('gpudiag', 'd')).toEqual(['diagnose', 'dev']);
    expect(bashOffers('gpudiag', 'xid', '')).toEqual(['analyze']);
    expect(bashOffers('gpudiag', 'dev', '')).toEqual(['up']);
  });

  it("offers each command's flags, from the command table", () => {
    for (const c of COMMANDS) expect(bashOffers('gpudiag', ...c.words, '-').sort()).toEqual(Object.keys(c.flags).sort());
    expect(bashOffers('gpudiag', 'diagnose', '--ch')).toEqual(['--checks']);
  });

  it('offers the values of -o, --output=, --checks (a comma list), --format and the shells', () => {
    expect(bashOffers('gpudiag', 'diagnose', '-o', '')).toEqual(['table', 'json', 'yaml']);
    expect(bashOffers('gpudiag', 'diagnose', '--output', '=', 'y')).toEqual(['yaml']);
    expect(bashOffers('gpudiag', 'diagnose', '--checks', 'health,x')).toEqual(['health,xid']);
    expect(bashOffers('gpudiag', 'xid', 'analyze', '--format', '')).toEqual(['table', 'jsonl']);
    expect(bashOffers('gpudiag', 'mcp', '--log-level', 'd')).toEqual(['debug']);
    expect(bashOffers('gpudiag', 'completion', '')).toEqual(['bash', 'zsh']);
  });

  it('leaves free-form values to file completion, and offers no node names without kubectl', () => {
    expect(bashOffers('gpudiag', 'diagnose', '--kubeconfig', '')).toEqual([]);
    expect(bashOffers('gpudiag', 'diagnose', 'gpu-')).toEqual([]);
  });
});

describe('zsh completion', () => {
  it('is a #compdef file with an _arguments case for every command and every flag', () => {
    expect(zsh.startsWith('#compdef gpudiag\n')).toBe(true);
    for (const c of COMMANDS) {
      expect(zsh).toContain(`    ${c.words.join('_')})\n      _arguments -s`);
      for (const flag of Object.keys(c.flags)) expect(zsh).toMatch(new RegExp(`'${flag}[=+']`));
    }
    expect(zsh).toContain("'-o+:value:(table json yaml)'");
    expect(zsh).toContain("'--checks=:checks:_values -s , check inventory health xid ecc thermal power nvlink pcie processes'");
  });

  // zsh's own parser and a run with stubbed completion builtins check the script (.ci/run installs zsh).
  it('parses with zsh -n and dispatches to the right command', () => {
    if (!hasZsh) throw new Error('zsh is needed to check the zsh completion: apt-get install zsh (.ci/run does)');
    expect(spawnSync('zsh', ['-n'], { input: zsh, encoding: 'utf8' }).status).toBe(0);
    const run = (words: string[]): string => {
      // Stand-ins for zsh's completion builtins that print what they were given.
      const stubs = [
        'compdef() { :; }',
        '_arguments() { print -r -- "args $*"; }',
        '_describe() { print -r -- "describe $*"; }',
        'compadd() { print -r -- "compadd $*"; }',
      ].join('\n');
      const call = `words=(${words.map((w) => `'${w}'`).join(' ')}); CURRENT=${words.length}; _gpudiag`;
      const res = spawnSync('zsh', ['-f', '-c', `${stubs}\n${zsh}\n${call}`], { encoding: 'utf8' });
      expect(res.stderr).toBe('');
      return res.stdout;
    };
    expect(run(['gpudiag', ''])).toContain('describe command cmds');
    expect(run(['gpudiag', 'xid', ''])).toContain('compadd -- analyze');
    const diagnose = run(['gpudiag', 'diagnose', '-o', '']);
    expect(diagnose).toContain('-o+:value:(table json yaml)');
    expect(diagnose).toContain('*:node:_gpudiag_nodes');
    expect(run(['gpudiag', 'xid', 'analyze', '--format', ''])).toContain('--format=:value:(table jsonl)');
  });
});
