/** Splitting a byte stream into lines with bounded memory, for reading logs of any size. */

const NEWLINE = 0x0a;
const NUL = 0x00;

/** The chunk without its NUL bytes (a copy only when it has some). */
function withoutNul(chunk: Buffer): Buffer {
  if (!chunk.includes(NUL)) return chunk;
  const parts: Buffer[] = [];
  let from = 0;
  for (let at = chunk.indexOf(NUL); at >= 0; at = chunk.indexOf(NUL, from)) {
    if (at > from) parts.push(chunk.subarray(from, at));
    from = at + 1;
  }
  parts.push(chunk.subarray(from));
  return Buffer.concat(parts);
}

/**
 * Yields the lines of `input` chunk by chunk — each batch the lines a chunk completed — decoded
 * as UTF-8, without their `\n` (a `\r` before it is kept), and null in place of a line longer
 * than `maxBytes`, whose bytes are dropped as they stream so memory stays bounded. Batches keep
 * the per-line cost to a loop step (one await per chunk, not per line). NUL bytes are dropped
 * first: a log file that a crash cut short is padded with runs of them, often longer than any
 * line, right before the lines written after the reboot.
 */
export async function* readLineBatches(input: AsyncIterable<Buffer | string>, maxBytes: number): AsyncGenerator<(string | null)[]> {
  // The start of a line that continues in the next chunk; empty when oversize.
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  let oversize = false;
  for await (const data of input) {
    const chunk = withoutNul(typeof data === 'string' ? Buffer.from(data, 'utf8') : data);
    const batch: (string | null)[] = [];
    let start = 0;
    for (let end = chunk.indexOf(NEWLINE); end >= 0; end = chunk.indexOf(NEWLINE, start)) {
      if (oversize || pendingBytes + end - start > maxBytes) batch.push(null);
      else if (pendingBytes === 0) batch.push(chunk.toString('utf8', start, end));
      else batch.push(Buffer.concat([...pending, chunk.subarray(start, end)]).toString('utf8'));
      pending = [];
      pendingBytes = 0;
      oversize = false;
      start = end + 1;
    }
    if (start < chunk.length && !oversize) {
      pendingBytes += chunk.length - start;
      oversize = pendingBytes > maxBytes;
      if (oversize) pending = [];
      else pending.push(chunk.subarray(start));
    }
    if (batch.length > 0) yield batch;
  }
  if (oversize) yield [null];
  else if (pendingBytes > 0) yield [Buffer.concat(pending).toString('utf8')];
}

/** Like readLineBatches, one line at a time. */
export async function* readLines(input: AsyncIterable<Buffer | string>, maxBytes: number): AsyncGenerator<string | null> {
  for await (const batch of readLineBatches(input, maxBytes)) yield* batch;
}
