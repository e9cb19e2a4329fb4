/**
 * No log forgery: values from outside (kernel messages, node names, label values, MCP
 * arguments, HTTP paths) cannot break a record into two lines, inject a fake record or carry
 * terminal escapes; every record stays one JSON line whose values read back unchanged.
 */
import { PassThrough } from 'node:stream';
import { describe, expect, it } from '@jest/globals';
import { createLogger, errorFields } from '../../lib/logger.js';

const HOSTILE = {
  node: 'gpu-node-1\n{"level":"error","message":"node drained","node":"gpu-node-2"}',
  path: '/v1/snapshot\r\n\u001b[31mRED\u001b[0m\u0007',
  kernel: 'NVRM: Xid 79\u009b2J\u2028{"forged":true}\u2029\u202eevil',
  label: 'a\u0000b\u007fc\u0085d',
};

function capture(): { logger: ReturnType<typeof createLogger>; text: () => string } {
  const stream = new PassThrough();
  let text = '';
  stream.on('data', (c: Buffer) => (text += c.toString('utf8')));
  return { logger: createLogger({ level: 'debug', stream, defaultMeta: { component: 'test' } }), text: () => text };
}

describe('log records from hostile values', () => {
  it('stay one parseable JSON line each, the values unchanged and no control character raw', async () => {
    const { logger, text } = capture();
    logger.warn('snapshot request refused', HOSTILE);
    logger.error('request handler failed', { ...errorFields(new Error(HOSTILE.kernel, { cause: new Error(HOSTILE.node) })), path: HOSTILE.path });
    logger.info('tool call completed', { caller: HOSTILE.label, arguments: { nodeNames: [HOSTILE.node] } });
    await new Promise((r) => setImmediate(r));
    const lines = text().split('\n').filter((l) => l !== '');
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
