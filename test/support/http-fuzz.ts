/**
 * A raw-socket HTTP fuzzer for the listeners' tests: sends each request of
 * test/fixtures/http-fuzz/corpus.jsonl (expanded per path) on its own TCP connection and
 * records what came back (a status line, a close, or nothing within the bound); a slowloris
 * client; and the RSS of a process, to see that memory returns near its start.
 */
import { readFile } from 'node:fs/promises';
import { connect } from 'node:net';
import path from 'node:path';
import { repoRoot } from '../../dev/control-plane/binaries.js';

/** One corpus line. `incomplete` requests are answered or closed only at the server's head timeout. */
export interface CorpusEntry {
  name: string;
  raw: string;
  incomplete?: boolean;
}

/** Where a listener is and what it accepts. */
export interface FuzzTarget {
  port: number;
  /** A Host header value the listener accepts (the MCP endpoint checks it). */
  hostHeader: string;
  /** Paths the listener serves; every corpus entry is sent once per path. */
  paths: readonly string[];
}

/** One expanded request. */
export interface FuzzRequest {
  name: string;
  path: string;
  data: Buffer;
  incomplete: boolean;
}

/** What one request got back. */
export interface RawAnswer {
  /** Status code of the first status line, when one arrived. */
  status?: number;
  /** The server closed the connection without a status line. */
  closed: boolean;
  /** Nothing came back within the bound. */
  pending: boolean;
}

/** Figures of one corpus run. */
export interface FuzzReport {
  sent: number;
  answered: number;
  closedWithoutAnswer: number;
  pending: number;
  /** Requests that got neither an answer nor a close within their bound: must be empty. */
  unanswered: string[];
  /** Answers by status code. */
  statuses: Record<string, number>;
}

const CORPUS = path.join(repoRoot, 'test', 'fixtures', 'http-fuzz', 'corpus.jsonl');
const STATUS_LINE = /^HTTP\/1\.[01] (\d{3})/;
/** Innermost `{repeat:TEXT:N}` (TEXT holds no other repeat). */
const REPEAT = /\{repeat:((?:(?!\{repeat:)[\s\S])*?):(\d+)\}/;

/** Reads the corpus file. */
export async function loadCorpus(): Promise<CorpusEntry[]> {
  const text = await readFile(CORPUS, 'utf8');
  return text
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line) as CorpusEntry);
}

/** Expands one raw template for a path: repeats, then placeholders; U+0000-U+00FF become single bytes. */
export function expandRaw(raw: string, requestPath: string, hostHeader: string): Buffer {
  let text = raw;
  for (let m = REPEAT.exec(text); m !== null; m = REPEAT.exec(text)) {
    text = `${text.slice(0, m.index)}${(m[1] ?? '').repeat(Number(m[2]))}${text.slice(m.index + m[0].length)}`;
  }
  return Buffer.from(text.replaceAll('{path}', requestPath).replaceAll('{host}', hostHeader), 'latin1');
}

/** Every corpus entry once per path of the target. */
export function expandCorpus(entries: readonly CorpusEntry[], target: FuzzTarget): FuzzRequest[] {
  return entries.flatMap((e) =>
    target.paths.map((p) => ({
      name: `${e.name} (${p})`,
      path: p,
      data: expandRaw(e.raw, p, target.hostHeader),
      incomplete: e.incomplete === true,
    })),
  );
}

/** Sends `data` on a new connection; resolves at the first status line, a close, or after `timeoutMs`. */
export async function sendRaw(port: number, data: Buffer, timeoutMs = 3_000): Promise<RawAnswer> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    let received = '';
    let done = false;
    const finish = (answer: RawAnswer): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(answer);
    };
    const timer = setTimeout(() => finish({ closed: false, pending: true }), timeoutMs);
    socket.on('connect', () => {
      // The server may answer and close before a large request is written: that is fine.
      socket.write(data, () => undefined);
    });
    socket.on('data', (chunk: Buffer) => {
      received += chunk.toString('latin1');
      const m = STATUS_LINE.exec(received);
      if (m !== null) finish({ status: Number(m[1]), closed: false, pending: false });
      else if (received.length > 64 * 1024) finish({ closed: false, pending: false });
    });
    // EPIPE/ECONNRESET after the server refused mid-request count as a close.
    socket.on('error', () => finish({ closed: true, pending: false }));
    socket.on('close', () => finish({ closed: true, pending: false }));
  });
}

/**
 * Sends every request and tallies the answers: complete requests `concurrency` at a time, each
 * answered within 3 s; incomplete ones all at once, each answered or closed by the server
 * within `incompleteBoundMs` (its head timeout).
 */
export async function runCorpus(
  port: number,
  requests: readonly FuzzRequest[],
  incompleteBoundMs: number,
  concurrency = 8,
): Promise<FuzzReport> {
  const report: FuzzReport = { sent: 0, answered: 0, closedWithoutAnswer: 0, pending: 0, unanswered: [], statuses: {} };
  const tally = (request: FuzzRequest, answer: RawAnswer): void => {
    report.sent++;
    if (answer.status !== undefined) {
      report.answered++;
      report.statuses[String(answer.status)] = (report.statuses[String(answer.status)] ?? 0) + 1;
    } else if (answer.pending) {
      report.pending++;
      report.unanswered.push(request.name);
    } else report.closedWithoutAnswer++;
  };
  const complete = requests.filter((r) => !r.incomplete);
  const incomplete = Promise.all(
    requests.filter((r) => r.incomplete).map(async (r) => tally(r, await sendRaw(port, r.data, incompleteBoundMs))),
  );
  let next = 0;
  const worker = async (): Promise<void> => {
    for (let i = next++; i < complete.length; i = next++) {
      const request = complete[i];
      if (request === undefined) break;
      tally(request, await sendRaw(port, request.data));
    }
  };
  await Promise.all([incomplete, ...Array.from({ length: concurrency }, () => worker())]);
  return report;
}

/** Figures of a slowloris run. */
export interface SlowlorisReport {
  connections: number;
  /** Connections the server closed before `maxMs`, and the longest time one stayed open. */
  closedByServer: number;
  longestOpenMs: number;
}

/**
 * Opens `connections` sockets that send a request head one header every `intervalMs` and never
 * finish it; resolves once the server closed them all, or after `maxMs`.
 */
export async function slowloris(port: number, connections: number, intervalMs: number, maxMs: number): Promise<SlowlorisReport> {
  const started = Date.now();
  const results = await Promise.all(
    Array.from(
      { length: connections },
      () =>
        new Promise<{ closed: boolean; openMs: number }>((resolve) => {
          const socket = connect({ host: '127.0.0.1', port });
          let n = 0;
          const drip = setInterval(() => socket.write(`X-Slow-${n++}: ${'a'.repeat(10)}\r\n`, () => undefined), intervalMs);
          const giveUp = setTimeout(() => end(false), maxMs);
          const end = (closed: boolean): void => {
            clearInterval(drip);
            clearTimeout(giveUp);
            socket.destroy();
            resolve({ closed, openMs: Date.now() - started });
          };
          socket.on('connect', () => socket.write('GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n', () => undefined));
          socket.on('error', () => end(true));
          socket.on('close', () => end(true));
        }),
    ),
  );
  return { connections, closedByServer: results.filter((r) => r.closed).length, longestOpenMs: Math.max(...results.map((r) => r.openMs)) };
}

/** Resident memory of a process in MiB (from /proc). */
export async function rssMiB(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kib = Number(/^VmRSS:\s+(\d+) kB$/m.exec(status)?.[1] ?? NaN);
  return Math.round((kib / 1024) * 10) / 10;
}

/** What a listener's fuzz run found. */
export interface ListenerFuzzResult {
  corpus: FuzzReport;
  slowloris: SlowlorisReport;
  rssBeforeMiB: number;
  rssAfterMiB: number;
}

/** The usual fuzz run of one listener: the expanded corpus beside a slowloris client. */
export async function fuzzListener(pid: number, target: FuzzTarget, slowlorisMaxMs: number): Promise<ListenerFuzzResult> {
  const rssBeforeMiB = await rssMiB(pid);
  const [corpus, slow] = await Promise.all([
    runCorpus(target.port, expandCorpus(await loadCorpus(), target), slowlorisMaxMs),
    slowloris(target.port, 40, 500, slowlorisMaxMs),
  ]);
  // Let freed buffers go back before measuring again.
  await new Promise((r) => setTimeout(r, 1_000));
  return { corpus, slowloris: slow, rssBeforeMiB, rssAfterMiB: await rssMiB(pid) };
}

/** Prints one listener's figures (the closing note of the hostile-input issue quotes them). */
export function reportFuzz(listener: string, result: ListenerFuzzResult, propertyRuns: number, crashes: number): void {
  const { corpus, slowloris: slow } = result;
  console.info(
    `fuzz ${listener}: ${corpus.sent} corpus requests + ${propertyRuns} property-based, crashes ${crashes}; answered ` +
      `${corpus.answered}, closed ${corpus.closedWithoutAnswer}, ` +
      `pending ${corpus.pending}; statuses ${JSON.stringify(corpus.statuses)}; slowloris ` +
      `${slow.closedByServer}/${slow.connections} closed by the server within ${slow.longestOpenMs} ms; ` +
      `RSS ${result.rssBeforeMiB} → ${result.rssAfterMiB} MiB`,
  );
}

/** True when `line` is one JSON object (a log record). */
export function isJsonObject(line: string): boolean {
  try {
    const value: unknown = JSON.parse(line);
    return typeof value === 'object' && value !== null && !Array.isArray(value);
  } catch {
    return false;
  }
}
