import { describe, expect, it } from '@jest/globals';
import {
  compileSelector,
  InvalidSelectorError,
  labelKeyProblem,
  labelValueProblem,
  matchesSelector,
  type LabelSelector,
} from './label-selector.js';

const gpuNode = { 'nvidia.com/gpu.present': 'true', 'nvidia.com/gpu.product': 'H100', zone: 'a', empty: '' };

describe('matchesSelector', () => {
  const cases: [string, Record<string, string> | undefined, LabelSelector | undefined, boolean][] = [
    ['absent selector matches everything', gpuNode, undefined, true],
    ['empty selector matches everything', gpuNode, {}, true],
    ['empty selector matches a node without labels', undefined, {}, true],
    ['matchLabels equal', gpuNode, { matchLabels: { zone: 'a' } }, true],
    ['matchLabels different value', gpuNode, { matchLabels: { zone: 'b' } }, false],
    ['matchLabels missing key', gpuNode, { matchLabels: { rack: '1' } }, false],
    ['matchLabels all must hold', gpuNode, { matchLabels: { zone: 'a', 'nvidia.com/gpu.product': 'A100' } }, false],
    ['matchLabels empty value needs the key present', gpuNode, { matchLabels: { empty: '' } }, true],
    ['matchLabels empty value, key absent', gpuNode, { matchLabels: { other: '' } }, false],
    ['matchLabels on unlabelled node', undefined, { matchLabels: { zone: 'a' } }, false],
    ['In matches one of the values', gpuNode, { matchExpressions: [{ key: 'zone', operator: 'In', values: ['b', 'a'] }] }, true],
    ['In with no matching value', gpuNode, { matchExpressions: [{ key: 'zone', operator: 'In', values: ['b'] }] }, false],
    ['In with key absent', gpuNode, { matchExpressions: [{ key: 'rack', operator: 'In', values: ['1'] }] }, false],
    ['NotIn with other value', gpuNode, { matchExpressions: [{ key: 'zone', operator: 'NotIn', values: ['b'] }] }, true],
    ['NotIn with listed value', gpuNode, { matchExpressions: [{ key: 'zone', operator: 'NotIn', values: ['a'] }] }, false],
    ['NotIn matches when the key is absent', gpuNode, { matchExpressions: [{ key: 'rack', operator: 'NotIn', values: ['1'] }] }, true],
    ['Exists with key present', gpuNode, { matchExpressions: [{ key: 'nvidia.com/gpu.present', operator: 'Exists' }] }, true],
    ['Exists with key present and empty value', gpuNode, { matchExpressions: [{ key: 'empty', operator: 'Exists', values: [] }] }, true],
    ['Exists with key absent', gpuNode, { matchExpressions: [{ key: 'rack', operator: 'Exists' }] }, false],
    ['DoesNotExist with key absent', gpuNode, { matchExpressions: [{ key: 'rack', operator: 'DoesNotExist' }] }, true],
    ['DoesNotExist with key present', gpuNode, { matchExpressions: [{ key: 'zone', operator: 'DoesNotExist' }] }, false],
    [
      'matchLabels and expressions are ANDed',
      gpuNode,
      {
        matchLabels: { zone: 'a' },
        matchExpressions: [
          { key: 'nvidia.com/gpu.product', operator: 'In', values: ['H100'] },
          { key: 'rack', operator: 'DoesNotExist' },
        ],
      },
      true,
    ],
    [
      'one failing expression fails the selector',
      gpuNode,
      { matchLabels: { zone: 'a' }, matchExpressions: [{ key: 'zone', operator: 'NotIn', values: ['a'] }] },
      false,
    ],
    ['inherited object keys are not labels', {}, { matchExpressions: [{ key: 'constructor', operator: 'Exists' }] }, false],
  ];
  it.each(cases)('%s', (_name, labels, selector, expected) => {
    expect(matchesSelector(labels, selector)).toBe(expected);
  });
});

describe('selector validation', () => {
  const bad: [string, unknown, string][] = [
    [
      'In without values',
      { matchExpressions: [{ key: 'zone', operator: 'In', values: [] }] },
      'nodeSelector.matchExpressions[0].values: must be non-empty for operator In',
    ],
    [
      'NotIn without values',
      { matchExpressions: [{ key: 'zone', operator: 'NotIn' }] },
      'nodeSelector.matchExpressions[0].values: must be non-empty for operator NotIn',
    ],
    [
      'Exists with values',
      { matchExpressions: [{ key: 'zone', operator: 'Exists', values: ['a'] }] },
      'nodeSelector.matchExpressions[0].values: must be empty for operator Exists',
    ],
    [
      'DoesNotExist with values',
      {
        matchExpressions: [
          { key: 'a', operator: 'In', values: ['x'] },
          { key: 'zone', operator: 'DoesNotExist', values: ['a'] },
        ],
      },
      'nodeSelector.matchExpressions[1].values: must be empty for operator DoesNotExist',
    ],
    [
      'unknown operator',
      { matchExpressions: [{ key: 'zone', operator: 'Equals', values: ['a'] }] },
      'nodeSelector.matchExpressions[0].operator: "Equals" is not one of',
    ],
    [
      'bad key in expression',
      { matchExpressions: [{ key: 'bad key', operator: 'Exists' }] },
      'nodeSelector.matchExpressions[0].key: "bad key" is not a qualified name',
    ],
    [
      'bad value in expression',
      { matchExpressions: [{ key: 'zone', operator: 'In', values: ['ok', '-bad'] }] },
      'nodeSelector.matchExpressions[0].values[1]: "-bad" is not a valid label value',
    ],
    [
      'bad key in matchLabels',
      { matchLabels: { 'Example.com/x': 'a' } },
      'nodeSelector.matchLabels: key "Example.com/x" has a prefix that is not a DNS-1123 subdomain',
    ],
    ['bad value in matchLabels', { matchLabels: { zone: 'a b' } }, 'nodeSelector.matchLabels["zone"]: "a b" is not a valid label value'],
    ['value too long', { matchLabels: { zone: 'a'.repeat(64) } }, 'nodeSelector.matchLabels["zone"]: "aaaa'],
    ['name part too long', { matchLabels: { ['k'.repeat(64)]: 'a' } }, 'has a name part longer than 63 characters'],
    ['empty prefix', { matchLabels: { '/zone': 'a' } }, 'has an empty prefix'],
    ['empty name', { matchLabels: { 'example.com/': 'a' } }, 'has an empty name part'],
    ['expression not an object', { matchExpressions: ['zone'] }, 'nodeSelector.matchExpressions[0]: must be an object'],
    ['matchExpressions not a list', { matchExpressions: { key: 'zone' } }, 'nodeSelector.matchExpressions: must be a list'],
  ];
  it.each(bad)('rejects %s naming the field', (_name, selector, message) => {
    let thrown: unknown;
    try {
      compileSelector(selector as LabelSelector);
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toBeInstanceOf(InvalidSelectorError);
    expect((thrown as Error).message).toContain(message);
  });

  it('uses the given field path', () => {
    expect(() => compileSelector({ matchLabels: { zone: '_' } }, 'spec.nodeSelector')).toThrow('spec.nodeSelector.matchLabels["zone"]');
  });

  it('bounds and escapes untrusted text in messages', () => {
    const message = labelValueProblem(`x\n${'y'.repeat(200)}`) ?? '';
    expect(message).not.toContain('\n');
    expect(message.length).toBeLessThan(200);
  });

  it('accepts valid keys and values', () => {
    for (const key of ['zone', 'nvidia.com/gpu.product', 'a', 'A_b-c.d', `${'p'.repeat(253)}/n`, 'k'.repeat(63)])
      expect(labelKeyProblem(key)).toBeUndefined();
    for (const value of ['', 'a', 'H100-80GB_HBM3.v1', 'v'.repeat(63)]) expect(labelValueProblem(value)).toBeUndefined();
  });
});
