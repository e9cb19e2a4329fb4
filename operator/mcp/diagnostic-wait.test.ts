/**
 * waitForDiagnostic against a local HTTP stand-in for the API server that scripts each watch and
 * read: a watch ended by 410 Gone or a malformed line is followed by a read and a new watch from
 * the read's resourceVersion; a watch refused with 403 falls back to polling (logged once);
 * 401, a deletion or an object off-schema end the wait with a clear ToolError; shutdown and the
 * deadline answer with what the wait has.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { KubeConfig } from '@kubernetes/client-node';
import type { GPUDiagnostic } from '../../api/index.js';
import { parseRequestTarget } from '../../lib/http/request-target.js';
import { createLogger } from '../../lib/logger.js';
import { waitForDiagnostic, type Waited } from './diagnostic-wait.js';
import { KubeClient } from './kube.js';
import { DEFAULT_SETTINGS } from './settings.js';
import type { ToolContext } from './tool.js';

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

let server: Server;
let kc: KubeConfig;
/** One handler per request, in order; requests beyond the script hang (a silent watch). */
let script: Handler[] = [];
let seen: { watch: boolean; resourceVersion: string | null }[] = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    const parsed = parseRequestTarget(req.url);
    const query = parsed.ok ? parsed.target.query : new URLSearchParams();
    seen.push({ watch: query.get('watch') === 'true', resourceVersion: query.get('resourceVersion') });
    const next = script.shift();
    if (next !== undefined) next(req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'c', server: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, skipTLSVerify: true }],
    users: [{ name: 'u' }],
    contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
    currentContext: 'x',
  });
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

function diagnostic(rv: string, phase?: 'Running' | 'Completed', done = 0): GPUDiagnostic {
  return {
    apiVersion: 'gpudiag.io/v1alpha1',
    kind: 'GPUDiagnostic',
    metadata: { name: 'd', namespace: 'n', resourceVersion: rv },
    spec: {},
    ...(phase === undefined ? {} : { status: { phase, summary: { nodesTargeted: 2, nodesCompleted: done } } }),
  };
}

const line = (type: string, object: unknown): string => `${JSON.stringify({ type, object })}\n`;
const watchSends =
  (...lines: string[]): Handler =>
  (_req, res) =>
    res.end(lines.join(''));
const answers =
  (code: number, body: unknown): Handler =>
  (_req, res) => {
    res.writeHead(code, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify(body));
  };
const status = (code: number, reason: string): unknown => ({ kind: 'Status', code, reason, message: `${reason} (stand-in)` });

interface Run {
  progress: string[];
  logs: () => string;
  result: Promise<Waited>;
  stop: AbortController;
}

function wait(options: { deadlineMs?: number } = {}): Run {
  const progress: string[] = [];
  const stream = new PassThrough();
  let logs = '';
  stream.on('data', (c: Buffer) => (logs += c.toString('utf8')));
  const stop = new AbortController();
  const ctx: ToolContext = {
    kube: new KubeClient(kc, { user: `alice-${Math.random().toString(36).slice(2)}`, groups: [], impersonate: false }),
    settings: { ...DEFAULT_SETTINGS, namespace: 'n', pollIntervalMs: 20 },
    signal: new AbortController().signal,
    stopping: stop.signal,
    logger: createLogger({ level: 'debug', stream }),
    now: () => new Date(),
    progress: async (done, total) => {
      progress.push(`${done}/${total}`);
    },
  };
  seen = [];
  const target = { namespace: 'n', name: 'd', created: diagnostic('1'), deadlineMs: Date.now() + (options.deadlineMs ?? 10_000) };
  return { progress, logs: () => logs, result: waitForDiagnostic(ctx, target), stop };
}

describe('waitForDiagnostic', () => {
  it('a watch ended by 410 Gone: reads again and watches from the read resourceVersion', async () => {
    script = [
      watchSends(line('MODIFIED', diagnostic('2', 'Running', 0)), line('ERROR', status(410, 'Expired'))),
      answers(200, diagnostic('5', 'Running', 1)),
      watchSends(line('BOOKMARK', { metadata: { resourceVersion: '6' } }), line('MODIFIED', diagnostic('7', 'Completed', 2))),
    ];
    const run = wait();
    const waited = await run.result;
    expect(waited.end).toBe('finished');
    expect(waited.diagnostic.metadata?.resourceVersion).toBe('7');
    expect(run.progress).toEqual(['0/2', '1/2', '2/2']);
    expect(seen).toEqual([
      { watch: true, resourceVersion: '1' },
      { watch: false, resourceVersion: null },
      { watch: true, resourceVersion: '5' },
    ]);
  });

  it('a malformed or oversized line is a failed watch: logged, read again, never a crash', async () => {
    script = [watchSends('{"type":"MODIFIED","object":{\n'), answers(200, diagnostic('3', 'Completed', 2))];
    const run = wait();
    expect((await run.result).end).toBe('finished');
    expect(run.logs()).toContain('watching a GPUDiagnostic failed; reading it again');
    expect(run.logs()).toContain('a watch line that is not JSON');
  });

  it('a watch refused with 403 falls back to polling, logged once per caller', async () => {
    const forbidden = answers(403, status(403, 'Forbidden'));
    script = [forbidden, answers(200, diagnostic('2', 'Running', 1)), answers(200, diagnostic('3', 'Completed', 2))];
    const run = wait();
    expect((await run.result).end).toBe('finished');
    expect(run.progress).toEqual(['1/2', '2/2']);
    expect(seen.map((s) => s.watch)).toEqual([true, false, false]);
    expect(run.logs().match(/may not watch gpudiagnostics; waiting by polling/g)).toHaveLength(1);
  });

  it.each<[string, Handler[], RegExp]>([
    ['401 on the watch', [answers(401, status(401, 'Unauthorized'))], /^unauthorized: the API server did not accept the credentials/],
    ['404 on the watch', [answers(404, status(404, 'NotFound'))], /^not found: gpudiagnostics d in namespace n/],
    ['a DELETED event', [watchSends(line('DELETED', diagnostic('2')))], /^GPUDiagnostic n\/d was deleted before it finished$/],
    ['404 on the read after a watch', [watchSends(), answers(404, status(404, 'NotFound'))], /^GPUDiagnostic n\/d was deleted before/],
    ['an object off the CRD schema', [watchSends(line('MODIFIED', { spec: { timeoutSeconds: 'soon' } }))], /does not match its schema/],
  ])('%s ends the wait with a clear ToolError', async (_label, handlers, message) => {
    script = handlers;
    await expect(wait().result).rejects.toMatchObject({ name: 'ToolError', message: expect.stringMatching(message) });
  });

  it('the server shutting down answers with what the wait has; so does the deadline', async () => {
    script = [(_req, res) => res.write(line('MODIFIED', diagnostic('2', 'Running', 1)))];
    const run = wait();
    setTimeout(() => run.stop.abort(), 100);
    expect(await run.result).toMatchObject({ end: 'stopping', diagnostic: { status: { phase: 'Running' } } });
    script = [];
    expect((await wait({ deadlineMs: 150 }).result).end).toBe('deadline');
  });
});
