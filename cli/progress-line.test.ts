import { Writable } from 'node:stream';
import { describe, expect, it } from '@jest/globals';
import { ProgressLine } from './progress-line.js';

class Sink extends Writable {
  text = '';
  constructor(
    readonly isTTY: boolean,
    readonly columns = 80,
  ) {
    super();
  }
  override _write(chunk: Buffer, _enc: string, done: () => void): void {
    this.text += chunk.toString('utf8');
    done();
  }
}

describe('ProgressLine', () => {
  it('writes nothing at all when the stream is not a terminal', () => {
    const out = new Sink(false);
    const line = new ProgressLine(out);
    line.update('nodes 1/2 answered', true);
    line.clear();
    expect(line.active).toBe(false);
    expect(out.text).toBe('');
  });

  it('overwrites one line on a terminal, at most once per interval unless forced, and erases it', () => {
    let now = 1_000;
    const out = new Sink(true);
    const line = new ProgressLine(out, 250, () => now);
    line.update('a');
    now += 100;
    line.update(() => 'skipped: within the interval');
    line.update('forced', true);
    now += 250;
    line.update(() => 'c');
    line.clear();
    line.clear();
    expect(out.text).toBe('\r\u001b[Ka\r\u001b[Kforced\r\u001b[Kc\r\u001b[K');
  });

  it('cuts the line to the terminal width so \\r can overwrite it', () => {
    const out = new Sink(true, 20);
    new ProgressLine(out).update('x'.repeat(50), true);
    expect(out.text).toBe(`\r\u001b[K${'x'.repeat(19)}`);
  });

  it('assumes 80 columns on a terminal that reports none', () => {
    const out = new Sink(true, 0);
    new ProgressLine(out).update('y'.repeat(100), true);
    expect(out.text).toBe(`\r\u001b[K${'y'.repeat(79)}`);
  });
});
