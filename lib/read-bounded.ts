/** Reading small files (credentials, configuration) without trusting their size. */
import { open } from 'node:fs/promises';

const CHUNK_BYTES = 64 * 1024;

/** The file's bytes; throws naming `path` when it holds more than `maxBytes`, reading at most one byte past it. */
export async function readFileUpTo(path: string, maxBytes: number): Promise<Buffer> {
  const handle = await open(path, 'r');
  try {
    const chunks: Buffer[] = [];
    let total = 0;
    for (;;) {
      const chunk = Buffer.allocUnsafe(Math.min(CHUNK_BYTES, maxBytes + 1 - total));
      const { bytesRead } = await handle.read(chunk, 0, chunk.length, null);
      if (bytesRead === 0) break;
      chunks.push(chunk.subarray(0, bytesRead));
      total += bytesRead;
      if (total > maxBytes) throw new Error(`${path} is larger than ${maxBytes} bytes`);
    }
    return Buffer.concat(chunks, total);
  } finally {
    await handle.close();
  }
}
