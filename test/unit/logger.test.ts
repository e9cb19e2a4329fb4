/**
 * No log forgery: values from outside (kernel messages, node names, label values, MCP
 * arguments, HTTP paths) cannot break a record into two lines, inject a fake record or carry
 * terminal escapes; every record stays one JSON line whose values read back unchanged.
 */
import { PassThrough } from 'node:stream';
import { describe, expect, it } from '@jest/globals';
import { createJsonLogger } from '../../lib/json-logger.js';
import { createLogger, errorFields, type Logger, type LoggerOptions } from '../../lib/logger.js';

const HOSTILE = {
  node: 'gpu-node-1\n{"level":"error","message":"node drained","node":"gpu-node-2"}',
  path: '/v1/snapshot\r\n\u001b[31mRED\u001b[0m\u0007',
  kernel: 'NVRM: Xid 79\u009b2J\u2028{"forged":true}\u2029\u202eevil',
  label: 'a\u0000b\u007fc\u0085d',
};

type Factory = (options: LoggerOptions) => Logger;
/** The operator's and MCP server's winston logger, and the agent's JSON-lines logger. */
const LOGGERS: ReadonlyArray<readonly [string, Factory]> = [
  ['winston', createLogger],
  ['json-lines (agent)', createJsonLogger],
];

function capture(factory: Factory, level = 'debug'): { logger: Logger; text: () => string } {
  const stream = new PassThrough();
  let text = '';
  stream.on('data', (c: Buffer) => (text += c.toString('utf8')));
  return { logger: factory({ level, stream, defaultMeta: { component: 'test' } }), text: () => text };
}

async function records(text: () => string): Promise<Array<Record<string, unknown>>> {
  await new Promise((r) => setImmediate(r));
  return text()
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

describe('the agent’s JSON-lines logger', () => {
  it('writes the records winston writes: sorted keys, child fields, levels below the threshold dropped', async () => {
    const [winston, json] = [capture(createLogger, 'info'), capture(createJsonLogger, 'info')];
    for (const { logger } of [winston, json]) {
      logger.child({ node: 'gpu-node-1' }).warn('snapshot failed', { gpu: 3, error: 'GPU_IS_LOST' });
      logger.debug('not written');
      logger.info('agent started', { port: 9440, pid: 12n });
    }
    const strip = (r: Record<string, unknown>): Record<string, unknown> => ({ ...r, timestamp: typeof r['timestamp'] });
    const [a, b] = [await records(winston.text), await records(json.text)];
    expect(b.map(strip)).toEqual(a.map(strip));
    expect(json.text().split('\n')[0]).toMatch(
      /^\{"component":"test","error":"GPU_IS_LOST","gpu":3,"level":"warn","message":"snapshot failed","node":"gpu-node-1","timestamp":"\d{4}-/,
    );
  });
});

describe.each(LOGGERS)('log records from hostile values (%s)', (_name, factory) => {
  it('stay one parseable JSON line each, the values unchanged and no control character raw', async () => {
    const { logger, text } = capture(factory);
    logger.warn('snapshot request refused', HOSTILE);
    logger.error('request handler failed', {
      ...errorFields(new Error(HOSTILE.kernel, { cause: new Error(HOSTILE.node) })),
      path: HOSTILE.path,
    });
    logger.info('tool call completed', { caller: HOSTILE.label, arguments: { nodeNames: [HOSTILE.node] } });
    await new Promise((r) => setImmediate(r));
    const lines = text()
      .split('\n')
      .filter((l) => l !== '');
    expect(lines).toHaveLength(3);
    for (const line of lines) {
      // eslint-disable-next-line no-control-regex
      expect(line).not.toMatch(/[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/);
      expect(() => JSON.parse(line)).not.toThrow();
    }
    const [first, second, third] = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(first).toMatchObject({ level: 'warn', message: 'snapshot request refused', ...HOSTILE });
    expect(second).toMatchObject({ level: 'error', error: HOSTILE.kernel, cause: HOSTILE.node, path: HOSTILE.path });
    expect(third).toMatchObject({ caller: HOSTILE.label, arguments: { nodeNames: [HOSTILE.node] } });
    // Only the three records: the fake JSON fragments are inside values, not records of their own.
    expect(lines.filter((l) => l.startsWith('{"forged"') || l.includes('"message":"node drained","node":"gpu-node-2"}\n'))).toEqual([]);
  });
});
