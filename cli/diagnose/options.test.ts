import { describe, expect, it } from '@jest/globals';
import { DiagnoseUsageError, parseDiagnoseArgs } from './options.js';
import { parseLabelSelector, SelectorSyntaxError } from './selector.js';

function usageError(args: string[]): string {
  try {
    parseDiagnoseArgs(args);
  } catch (err) {
    if (err instanceof DiagnoseUsageError) return err.message;
    throw err;
  }
  throw new Error(`${JSON.stringify(args)} was accepted`);
}

describe('parseDiagnoseArgs', () => {
  it('builds the spec from node names and flags, leaving the rest to the CRD defaults', () => {
    const o = parseDiagnoseArgs([
      'gpu-1',
      'gpu-2',
      'gpu-1',
      '-l',
      'pool=training',
      '--checks',
      'health,xid,ecc',
      '--policy',
      'prod',
      '--xid-lookback',
      '24h',
      '-o',
      'yaml',
      '-n',
      'ops',
    ]);
    expect(o.spec).toEqual({
      nodeNames: ['gpu-1', 'gpu-2'],
      nodeSelector: { matchLabels: { pool: 'training' } },
      checks: ['health', 'xid', 'ecc'],
      xidLookback: '24h',
      policyRef: { name: 'prod' },
      ttlSecondsAfterFinished: 86_400,
    });
    expect(o).toMatchObject({ output: 'yaml', namespace: 'ops', waitMs: 300_000 });
    expect(Object.isFrozen(o)).toBe(true);
  });

  it('defaults to every node, table output and a 5 minute wait; --wait=0 and --ttl are read as durations', () => {
    expect(parseDiagnoseArgs([])).toEqual({ help: false, spec: { ttlSecondsAfterFinished: 86_400 }, waitMs: 300_000, output: 'table' });
    expect(parseDiagnoseArgs(['--wait=0', '--ttl', '90s'])).toMatchObject({ waitMs: 0, spec: { ttlSecondsAfterFinished: 90 } });
    expect(parseDiagnoseArgs(['--wait', '1h30m']).waitMs).toBe(5_400_000);
  });

  it.each([
    [['--nodes', 'a'], /Unknown option '--nodes'/],
    [['-o'], /Option '-o, --output <value>' argument missing/],
    [['-o', 'xml'], /^--output must be table, json, yaml, got "xml"$/],
    [['--wait', '5'], /^--wait must be a duration such as 30s, 5m or 1h30m, got "5"$/],
    [['--wait=-1s'], /^--wait must be a duration/],
    [['--wait', '-1s'], /^Option '--wait' argument is ambiguous\. Did you forget/],
    [['--wait', '25h'], /^--wait must be at most 24h, got "25h"$/],
    [['--ttl', 'soon'], /^--ttl must be a duration/],
    [['--xid-lookback', '721h'], /^--xid-lookback must be at most 720h/],
    [['--checks', 'health,gpu-burn'], /^--checks takes a comma-separated list of inventory, health, .*; got "gpu-burn"$/],
    [['--checks', ''], /^--checks takes/],
    [['--selector', 'pool in (a'], /^--selector: unbalanced parentheses/],
    [['--policy', 'Prod Policy'], /^--policy must name a GPUHealthPolicy/],
    [['-n', 'Bad_NS'], /^--namespace must be a namespace name/],
    [['--context', ''], /^--context must name a kubeconfig context$/],
    [['--kubeconfig', '/nonexistent/kubeconfig'], /^--kubeconfig: cannot read "\/nonexistent\/kubeconfig"/],
    [['node_1'], /^NODE must be a node name \(a DNS-1123 subdomain\), got "node_1"$/],
    [['gpu\u001b[31m'], /^NODE must be a node name .*got "gpu\\u001b\[31m"$/],
  ])('%j is refused naming the flag', (args, message) => {
    expect(usageError(args)).toMatch(message);
  });

  it('refuses more than 1000 node names (the CRD limit), pointing at --selector', () => {
    const many = Array.from({ length: 1001 }, (_, i) => `gpu-${i}`);
    expect(usageError(many)).toBe('at most 1000 NODE names, got 1001 (use --selector for more)');
  });

  it('answers --help without reading the other flags', () => {
    expect(parseDiagnoseArgs(['--help', '--wait', 'never']).help).toBe(true);
  });
});

describe('parseLabelSelector', () => {
  it('reads kubectl selector syntax into matchLabels and matchExpressions', () => {
    expect(
      parseLabelSelector('pool=training, gpudiag.io/tier==gold,zone in (a, b),rack notin (r1),env!=dev,nvidia.com/gpu,!cordoned'),
    ).toEqual({
      matchLabels: { pool: 'training', 'gpudiag.io/tier': 'gold' },
      matchExpressions: [
        { key: 'zone', operator: 'In', values: ['a', 'b'] },
        { key: 'rack', operator: 'NotIn', values: ['r1'] },
        { key: 'env', operator: 'NotIn', values: ['dev'] },
        { key: 'nvidia.com/gpu', operator: 'Exists' },
        { key: 'cordoned', operator: 'DoesNotExist' },
      ],
    });
    expect(parseLabelSelector('empty=')).toEqual({ matchLabels: { empty: '' } });
  });

  it.each([
    ['', /empty selector/],
    ['a=b,,c=d', /empty term/],
    ['a=b,a=c', /"a" cannot equal both "b" and "c"/],
    ['zone in ()', /empty value/],
    ['Bad Key=v', /cannot read "Bad Key=v"/],
    ['-key=v', /bad label key in "-key=v"/],
    ['key=bad value!', /cannot read|bad label value/],
    ['key=' + 'x'.repeat(64), /bad label value .*longer than 63/],
    ['zone in (a,(b))', /unbalanced parentheses/],
    ['x'.repeat(5000), /longer than 4096 characters/],
  ])('%j is refused', (selector, message) => {
    expect(() => parseLabelSelector(selector)).toThrow(SelectorSyntaxError);
    expect(() => parseLabelSelector(selector)).toThrow(message);
  });

  it('keeps a prototype-looking key as a plain label', () => {
    expect(parseLabelSelector('constructor=x,toString')).toEqual({
      matchLabels: { constructor: 'x' },
      matchExpressions: [{ key: 'toString', operator: 'Exists' }],
    });
  });
});
