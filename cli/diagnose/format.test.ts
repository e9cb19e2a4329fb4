import { describe, expect, it } from '@jest/globals';
import type { GPUDiagnosticStatus } from '../../api/index.js';
import { compareRows, progressText, renderResult, renderTable, resultRows, type ResultRow } from './format.js';
import { parse } from 'yaml';

type Node = NonNullable<GPUDiagnosticStatus['nodes']>[number];

const gpu = (
  index: number,
  status: 'healthy' | 'degraded' | 'critical' | 'unknown',
  score: number,
  extra: object = {},
): NonNullable<Node['gpus']>[number] => ({
  index,
  status,
  score,
  name: 'NVIDIA H100 80GB HBM3',
  uuid: `GPU-${index}`,
  pciBusId: `0000:${(0x10 + index).toString(16)}:00`,
  ...extra,
});

const status: GPUDiagnosticStatus = {
  phase: 'Completed',
  summary: {
    nodesTargeted: 3,
    nodesCompleted: 3,
    nodesSucceeded: 2,
    nodesFailed: 1,
    nodesByStatus: { healthy: 1, degraded: 0, critical: 1, unknown: 1 },
    gpus: { total: 4, healthy: 3, degraded: 0, critical: 1, unknown: 0 },
    minScore: 40,
  },
  nodes: [
    // Deliberately not worst first: the CLI orders rows itself.
    { name: 'b-healthy', result: 'Succeeded', status: 'healthy', score: 100, gpus: [gpu(1, 'healthy', 100), gpu(0, 'healthy', 100)] },
    { name: 'c-missing', result: 'NoAgent', status: 'unknown', message: 'no ready gpudiag agent pod on node c-missing' },
    {
      name: 'a-faulty',
      result: 'Succeeded',
      status: 'critical',
      score: 40,
      gpus: [
        gpu(0, 'healthy', 100),
        gpu(1, 'critical', 40, {
          findings: [{ check: 'ecc', severity: 'critical', code: 'VolatileDoubleBitEcc', message: 'GPU 1: 2 uncorrectable ECC errors' }],
        }),
      ],
      xidEvents: [
        // Matched to GPU 1 by its bus id in the kernel's spelling, twice, and once by UUID.
        { xid: 48, count: 2, pciBusId: '0000:11:00', severity: 'critical' },
        { xid: 63, count: 1, gpu: 'GPU-1', severity: 'warning' },
        // A bus id no GPU has: the node's own row.
        { xid: 79, count: 1, pciBusId: '0000:5d:00', severity: 'critical' },
      ],
    },
  ],
};

describe('resultRows', () => {
  it('lists one row per GPU worst first, a node without GPUs as its own row, XIDs on the GPU they name', () => {
    const rows = resultRows(status).map((r) => [r.node, r.gpu, r.status, r.score, r.xids]);
    expect(rows).toEqual([
      ['a-faulty', '1 NVIDIA H100 80GB HBM3', 'critical', 40, '48x2, 63'],
      ['a-faulty', '-', 'critical', null, '79'],
      ['c-missing', '-', 'unknown', null, '-'],
      ['a-faulty', '0 NVIDIA H100 80GB HBM3', 'healthy', 100, '-'],
      ['b-healthy', '0 NVIDIA H100 80GB HBM3', 'healthy', 100, '-'],
      ['b-healthy', '1 NVIDIA H100 80GB HBM3', 'healthy', 100, '-'],
    ]);
  });

  it('shows the worst finding (code and message), and why a node was not diagnosed', () => {
    const rows = resultRows(status);
    expect(rows[0]?.worst).toBe('VolatileDoubleBitEcc: GPU 1: 2 uncorrectable ECC errors');
    expect(rows[2]?.worst).toBe('NoAgent: no ready gpudiag agent pod on node c-missing');
    expect(rows[3]?.worst).toBe('-');
  });

  it('neutralises control characters from the cluster (terminal escapes in a finding or GPU name)', () => {
    const hostile: GPUDiagnosticStatus = {
      nodes: [
        {
          name: 'n1',
          result: 'Succeeded',
          status: 'degraded',
          gpus: [
            gpu(0, 'degraded', 80, {
              name: 'GPU\u001b[2J',
              findings: [{ check: 'xid', severity: 'warning', code: 'Xid', message: 'line\nbreak\u001b]0;owned\u0007' }],
            }),
          ],
        },
      ],
    };
    const table = renderTable('ns', 'd', hostile);
    expect([...table].filter((c) => c !== '\n' && (c < ' ' || c === '\u007f'))).toEqual([]);
    expect(table).toContain('Xid: line\uFFFDbreak\uFFFD]0;owned\uFFFD');
  });

  it('orders by status (critical, degraded, unknown, healthy), then score, node name and GPU index', () => {
    const row = (node: string, status: ResultRow['status'], score: number | null, gpuIndex: number | null): ResultRow => ({
      node,
      gpuIndex,
      gpu: '',
      status,
      score,
      worst: '',
      xids: '',
    });
    const rows = [
      row('a', 'healthy', 100, 0),
      row('z', 'degraded', 70, 1),
      row('b', 'unknown', null, null),
      row('a', 'critical', 45, 2),
      row('y', 'critical', 10, 5),
      row('a', 'degraded', 70, 0),
    ];
    expect(rows.sort(compareRows).map((r) => `${r.node}:${r.status}:${r.gpuIndex}`)).toEqual([
      'y:critical:5',
      'a:critical:2',
      'a:degraded:0',
      'z:degraded:1',
      'b:unknown:null',
      'a:healthy:0',
    ]);
  });
});

describe('renderTable', () => {
  it('aligns the columns under the header and ends with the summary over every targeted node', () => {
    const lines = renderTable('default', 'cli-diagnose-x1', status).split('\n');
    const header = lines[0] ?? '';
    expect(header.split(/ {2,}/)).toEqual(['NODE', 'GPU', 'STATUS', 'SCORE', 'WORST FINDING', 'XIDS']);
    // Every cell starts under its heading: the widest cell plus two spaces sets the column.
    const at = (h: string): number => header.indexOf(h);
    expect(at('XIDS')).toBe(at('WORST FINDING') + 'VolatileDoubleBitEcc: GPU 1: 2 uncorrectable ECC errors'.length + 2);
    expect(lines[1]).toBe(
      `a-faulty   1 NVIDIA H100 80GB HBM3  critical  40     VolatileDoubleBitEcc: GPU 1: 2 uncorrectable ECC errors  48x2, 63`,
    );
    expect(lines[3]?.slice(0, at('XIDS'))).toBe(
      'c-missing  -                        unknown   -      NoAgent: no ready gpudiag agent pod on node c-missing'.padEnd(at('XIDS')),
    );
    expect(lines[3]?.slice(at('XIDS'))).toBe('-');
    expect(lines.at(-2)).toBe(
      'GPUDiagnostic default/cli-diagnose-x1 Completed; 3 node(s): 1 critical, 0 degraded, 1 not diagnosed, 1 healthy; ' +
        '4 GPU(s): 1 critical, 0 degraded; min score 40',
    );
  });

  it('prints only the summary when there is no node yet, and says when the status left nodes out', () => {
    expect(renderTable('ns', 'd', { phase: 'Failed' })).toBe(
      'GPUDiagnostic ns/d Failed; 0 node(s): 0 critical, 0 degraded, 0 not diagnosed, 0 healthy; 0 GPU(s): 0 critical, 0 degraded\n',
    );
    expect(renderTable('ns', 'd', { ...status, nodesTruncated: 800 })).toContain('; 800 node(s) not listed (the status keeps the worst)');
  });
});

describe('renderResult', () => {
  it('prints the status itself as JSON or YAML', () => {
    expect(JSON.parse(renderResult('json', 'ns', 'd', status))).toEqual(status);
    expect(parse(renderResult('yaml', 'ns', 'd', status))).toEqual(status);
  });
});

describe('progressText', () => {
  it('says how many nodes answered and how many are critical', () => {
    expect(progressText(undefined)).toBe('waiting for the operator (Pending)');
    expect(progressText({ phase: 'Running', summary: { nodesTargeted: 1000, nodesCompleted: 812, nodesByStatus: { critical: 3 } } })).toBe(
      'nodes 812/1000 answered, 3 critical',
    );
    expect(
      progressText({ phase: 'Running', summary: { nodesTargeted: 4, nodesCompleted: 2, nodesByStatus: { critical: 0, degraded: 1 } } }),
    ).toBe('nodes 2/4 answered, 0 critical, 1 degraded');
  });
});
