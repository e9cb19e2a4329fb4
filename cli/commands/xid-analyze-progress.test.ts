import { Readable, Writable } from 'node:stream';
import { describe, expect, it } from '@jest/globals';
import { PROGRESS_AFTER_BYTES, runXidAnalyze } from './xid-analyze.js';

class Sink extends Writable {
  text = '';
  constructor(readonly isTTY: boolean) {
    super();
  }
  override _write(chunk: Buffer, _enc: string, done: () => void): void {
    this.text += chunk.toString('utf8');
    done();
  }
}

const XID = "[  179.437933] NVRM: Xid (PCI:0000:3b:00): 79, pid='<unknown>', name=<unknown>, GPU has fallen off the bus.\n";
const CHATTER = '[  180.000001] eth0: link up, 100Gbps, full duplex, flow control rx/tx on this fine interface\n';

/** A kernel log just over the progress threshold: chatter with an XID every 10,000 lines, in 64 KiB chunks. */
function bigLog(): string[] {
  const lines: string[] = [];
  let bytes = 0;
  for (let i = 0; bytes < PROGRESS_AFTER_BYTES + 1024 * 1024; i += 1) {
    const line = i % 10_000 === 0 ? XID : CHATTER;
    lines.push(line);
    bytes += line.length;
  }
  const text = lines.join('');
  const chunks: string[] = [];
  for (let at = 0; at < text.length; at += 64 * 1024) chunks.push(text.slice(at, at + 64 * 1024));
  return chunks;
}

async function analyze(chunks: string[], tty: boolean): Promise<{ code: number; stdout: string; stderr: string }> {
  const stdout = new Sink(false);
  const stderr = new Sink(tty);
  const code = await runXidAnalyze([], { stdin: Readable.from(chunks), stdout, stderr });
  return { code, stdout: stdout.text, stderr: stderr.text };
}

describe('gpudiag xid analyze progress', () => {
  const chunks = bigLog();

  it('draws a progress line on a terminal once the input passes the threshold, then erases it', async () => {
    const res = await analyze(chunks, true);
    expect(res.code).toBe(0);
    const lines = res.stderr.split('\r\u001b[K');
    expect(lines[0]).toBe('');
    expect(lines[1]).toMatch(/^read \d+\.\d MiB, \d+ lines, \d+ XIDs found$/);
    expect(res.stderr.endsWith('\r\u001b[K')).toBe(true);
    expect(res.stdout).toMatch(/^\d+ XID events .* on 1 GPU/m);
  });

  it('writes nothing to a stderr that is not a terminal, and the same result either way', async () => {
    const piped = await analyze(chunks, false);
    expect(piped.stderr).toBe('');
    expect(piped.stdout).toBe((await analyze(chunks, true)).stdout);
  });

  it('stays silent on a terminal for an input under the threshold', async () => {
    const small = await analyze([XID, CHATTER, XID], true);
    expect(small.stderr).toBe('');
    expect(small.stdout).toContain('2 XID events');
  });
});
