/**
 * Hardware validation (`npm run validate:hardware`): on a node with an NVIDIA GPU and driver,
 * starts `gpudiag agent` against the system libnvidia-ml.so.1, takes a snapshot between two
 * `nvidia-smi -q -x` readings, compares them field by field (dev/hardware/compare.ts), checks
 * that the NVML event watcher runs and, with --inject-xid, that a real XID 43 reaches the
 * agent. Prints a table per GPU, writes report.json and the raw inputs under --out (or $OUT),
 * and exits 0 (all agree), 1 (a DIFF, MISSING or event failure) or 2 (could not run). The whole
 * run is bounded by --deadline-s; the agent is stopped on every path (a watchdog kills it even
 * if this process is killed). See docs/hardware-validation.md.
 */
import { execFile } from 'node:child_process';
import { accessSync, closeSync, constants, existsSync, mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { NodeSnapshotDocument, XidEventReport } from '../../agent/api/snapshot-document.js';
import { validateSnapshotDocument } from '../../agent/api/validate-snapshot.js';
import { toKernelBusId } from '../../agent/nvml/pci-bus-id.js';
import { integerFlag, readFlags } from '../../lib/flags.js';
import { isDnsSubdomain } from '../../lib/kube/names.js';
import { clip, quote } from '../../lib/text.js';
import { freePort } from '../control-plane/control-plane.js';
import { startOrphanWatchdog, startProcess, type ManagedProcess } from '../control-plane/processes.js';
import { compareSnapshot, formatComparison, type ComparisonReport, type FieldComparison } from './compare.js';
import { parseNvidiaSmiLog, type NvidiaSmiLog } from './nvidia-smi-log.js';
import { parseNvLinkStatus, type SmiNvLinkGpu } from './nvlink-status.js';

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
/** Every check the agent answers that reads a GPU (xid is read separately for the event path). */
const SNAPSHOT_CHECKS = 'inventory,health,ecc,thermal,power,nvlink,pcie,processes';
const XID_TEST_CODE = 43;
const XID_WAIT_MS = 30_000;
const READY_WAIT_MS = 60_000;
/** After this long with /healthz up but /readyz refusing, carry on (the reasons go into the report). */
const READY_GRACE_MS = 20_000;
const COMMAND_TIMEOUT_MS = 60_000;
const REQUEST_TIMEOUT_MS = 30_000;
const AGENT_STOP_GRACE_MS = 25_000;
const MAX_OUTPUT_BYTES = 64 * 1024 * 1024;
const POLL_MS = 500;

const USAGE = `usage: npm run validate:hardware -- [options]

Compares the agent's snapshot with nvidia-smi on this node (needs the NVIDIA driver).

  --out DIR            where report.json and the raw inputs go (OUT; default .gpudiag/hardware-validation/<time>)
  --nvidia-smi PATH    nvidia-smi to run (default nvidia-smi)
  --nvml-library PATH  libnvidia-ml.so.1 for the agent (default: the system one)
  --kmsg-path PATH     kernel log for the agent; "" disables (default /dev/kmsg when readable, else "")
  --node-name NAME     the agent's --node-name (default: this host's name, made DNS-safe)
  --deadline-s N       bound on the whole run (default 180)
  --inject-xid         raise a real XID 43 on one GPU (a failing device-side assert in a CUDA
                       program; needs nvcc or --xid-command) and wait for the agent to report it
  --xid-gpu INDEX      the GPU for --inject-xid (default 0)
  --xid-command PATH   a prebuilt program that raises XID 43 (default: build dev/hardware/xid43.cu)
  --nvcc PATH          CUDA compiler for xid43.cu (default nvcc)
`;

/** Validated options of one run. */
export interface ValidateConfig {
  outDir: string;
  nvidiaSmi: string;
  nvmlLibrary?: string;
  kmsgPath: string;
  nodeName: string;
  deadlineMs: number;
  injectXid: boolean;
  xidGpu: number;
  xidCommand?: string;
  nvcc: string;
}

/** The options, help, or what is wrong with them. */
export type ValidateArgs = { ok: true; config: Readonly<ValidateConfig> } | { ok: true; help: true } | { ok: false; error: string };

class UsageError extends Error {}

const ENV: Record<string, string> = {
  out: 'OUT',
  'nvidia-smi': 'GPUDIAG_VALIDATE_NVIDIA_SMI',
  'nvml-library': 'GPUDIAG_NVML_LIBRARY',
  'kmsg-path': 'GPUDIAG_VALIDATE_KMSG_PATH',
  'node-name': 'GPUDIAG_VALIDATE_NODE_NAME',
  'deadline-s': 'GPUDIAG_VALIDATE_DEADLINE_S',
  'xid-gpu': 'GPUDIAG_VALIDATE_XID_GPU',
  'xid-command': 'GPUDIAG_VALIDATE_XID_COMMAND',
  nvcc: 'GPUDIAG_VALIDATE_NVCC',
};

/** A host name as a DNS-1123 subdomain (the agent's --node-name rule). */
export function dnsSafeNodeName(host: string): string {
  const name = host
    .toLowerCase()
    .replace(/[^a-z0-9.-]+/g, '-')
    .replace(/^[^a-z0-9]+|[^a-z0-9]+$/g, '')
    .slice(0, 253)
    .replace(/[^a-z0-9]+$/, '');
  return isDnsSubdomain(name) ? name : 'hardware-validation';
}

function readable(file: string): boolean {
  try {
    accessSync(file, constants.R_OK);
    return true;
  } catch {
    // EACCES / ENOENT: the agent then runs without the kernel log, and the report says so
    return false;
  }
}

/** Parses flags (then env) once; never throws. */
export function parseValidateArgs(argv: readonly string[], env: NodeJS.ProcessEnv, now: Date = new Date()): ValidateArgs {
  try {
    const flags = readFlags(argv, env, ENV, ['inject-xid', 'help'], (m) => new UsageError(m));
    if (flags.isSet('help')) return { ok: true, help: true };
    const stamp = now.toISOString().replace(/[:.]/g, '-');
    const nodeName = flags.get('node-name') ?? dnsSafeNodeName(os.hostname());
    if (!isDnsSubdomain(nodeName)) throw new UsageError(`--node-name must be a DNS-1123 subdomain, got ${quote(nodeName)}`);
    const kmsg = flags.get('kmsg-path') ?? (readable('/dev/kmsg') ? '/dev/kmsg' : '');
    const nvmlLibrary = flags.get('nvml-library');
    const xidCommand = flags.get('xid-command');
    const config: ValidateConfig = {
      outDir: path.resolve(flags.get('out') ?? path.join('.gpudiag', 'hardware-validation', stamp)),
      nvidiaSmi: flags.get('nvidia-smi') ?? 'nvidia-smi',
      ...(nvmlLibrary !== undefined && nvmlLibrary !== '' ? { nvmlLibrary } : {}),
      kmsgPath: kmsg,
      nodeName,
      deadlineMs: integerFlag('deadline-s', flags.get('deadline-s'), 180, 30, 1800, (m) => new UsageError(m)) * 1000,
      injectXid: flags.isSet('inject-xid'),
      xidGpu: integerFlag('xid-gpu', flags.get('xid-gpu'), 0, 0, 63, (m) => new UsageError(m)),
      ...(xidCommand !== undefined && xidCommand !== '' ? { xidCommand } : {}),
      nvcc: flags.get('nvcc') ?? 'nvcc',
    };
    return { ok: true, config: Object.freeze(config) };
  } catch (err) {
    if (err instanceof UsageError) return { ok: false, error: err.message };
    throw err;
  }
}

/** A run that could not be completed (exit 2), as opposed to one that found differences (exit 1). */
class SetupError extends Error {
  override readonly name = 'SetupError';
}

interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a program without a shell; a missing program or a timeout is a SetupError. */
function run(command: string, args: readonly string[], signal: AbortSignal, env: NodeJS.ProcessEnv = process.env): Promise<CommandResult> {
  return new Promise((resolve, reject) => {
    execFile(
      command,
      [...args],
      { timeout: COMMAND_TIMEOUT_MS, maxBuffer: MAX_OUTPUT_BYTES, signal, env, encoding: 'utf8' },
      (err, stdout, stderr) => {
        if (err === null) {
          resolve({ code: 0, stdout, stderr });
          return;
        }
        const e = err as NodeJS.ErrnoException & { code?: number | string; killed?: boolean };
        if (typeof e.code === 'number') resolve({ code: e.code, stdout, stderr });
        else reject(new SetupError(`${command} ${args.join(' ')} did not run: ${e.message}`, { cause: err }));
      },
    );
  });
}

async function nvidiaSmiLog(config: ValidateConfig, signal: AbortSignal, file: string): Promise<NvidiaSmiLog> {
  const r = await run(config.nvidiaSmi, ['-q', '-x'], signal);
  writeFileSync(file, r.stdout);
  if (r.code !== 0) throw new SetupError(`${config.nvidiaSmi} -q -x exited ${r.code}: ${clip(r.stderr.trim() || r.stdout.trim(), 400)}`);
  const parsed = parseNvidiaSmiLog(r.stdout);
  if (!parsed.ok) throw new SetupError(`cannot read ${path.basename(file)}: ${parsed.error}`);
  return parsed.log;
}

/** `nvidia-smi nvlink --status`, or undefined (with the reason noted) when it fails. */
async function nvlinkStatus(
  config: ValidateConfig,
  signal: AbortSignal,
  file: string,
  notes: string[],
): Promise<SmiNvLinkGpu[] | undefined> {
  const r = await run(config.nvidiaSmi, ['nvlink', '--status'], signal).catch((err: unknown) => {
    notes.push(`nvidia-smi nvlink --status did not run: ${err instanceof Error ? err.message : String(err)}`);
    return undefined;
  });
  if (r === undefined) return undefined;
  writeFileSync(file, r.stdout + r.stderr);
  if (r.code !== 0) {
    notes.push(`nvidia-smi nvlink --status exited ${r.code}: ${clip(r.stderr.trim() || r.stdout.trim(), 200)}`);
    return undefined;
  }
  return parseNvLinkStatus(r.stdout);
}

async function getJson(url: string, signal: AbortSignal): Promise<{ status: number; body: unknown }> {
  const res = await fetch(url, { signal: AbortSignal.any([signal, AbortSignal.timeout(REQUEST_TIMEOUT_MS)]) });
  const text = await res.text();
  try {
    return { status: res.status, body: JSON.parse(text) as unknown };
  } catch (err) {
    throw new SetupError(`${url} answered ${res.status} with a body that is not JSON: ${clip(text, 200)}`, { cause: err });
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener(
      'abort',
      () => {
        clearTimeout(timer);
        resolve();
      },
      { once: true },
    );
  });
}

/** The agent child process and its address. */
interface RunningAgent {
  process: ManagedProcess;
  url: string;
  stopWatchdog: () => void;
}

async function startAgent(config: ValidateConfig, logFile: string): Promise<RunningAgent> {
  const port = await freePort();
  const args = [
    path.join(REPO_ROOT, 'bin', 'gpudiag.js'),
    'agent',
    '--auth',
    'none',
    '--listen',
    `127.0.0.1:${port}`,
    '--node-name',
    config.nodeName,
    '--kmsg-path',
    config.kmsgPath,
    '--snapshot-cache-ms',
    '0',
    ...(config.nvmlLibrary !== undefined ? ['--nvml-library', config.nvmlLibrary] : []),
  ];
  const child = await startProcess('gpudiag agent', process.execPath, args, logFile);
  return { process: child, url: `http://127.0.0.1:${port}`, stopWatchdog: startOrphanWatchdog(process.pid, [child.pid]) };
}

function logTail(file: string): string {
  try {
    return clip(readFileSync(file, 'utf8').slice(-2000), 2000);
  } catch (err) {
    return `(agent log unreadable: ${(err as Error).message})`;
  }
}

/** Waits for /readyz; after READY_GRACE_MS of a live but unready agent, returns the reasons instead. */
async function waitReady(agent: RunningAgent, logFile: string, signal: AbortSignal): Promise<string | undefined> {
  const started = Date.now();
  let exited: string | undefined;
  void agent.process.exited.then((d) => (exited = d));
  let lastProblem = 'no answer yet';
  while (Date.now() - started < READY_WAIT_MS && !signal.aborted) {
    if (exited !== undefined) throw new SetupError(`the agent exited (${exited}) before it was ready:\n${logTail(logFile)}`);
    try {
      const ready = await getJson(`${agent.url}/readyz`, signal);
      if (ready.status === 200) return undefined;
      lastProblem = JSON.stringify(ready.body);
      if (Date.now() - started > READY_GRACE_MS) return `agent live but not ready: ${clip(lastProblem, 300)}`;
    } catch (err) {
      // not listening yet (NVML initialisation takes a while with many GPUs)
      lastProblem = err instanceof Error ? err.message : String(err);
    }
    await sleep(POLL_MS, signal);
  }
  throw new SetupError(`the agent was not ready within ${READY_WAIT_MS / 1000} s (${clip(lastProblem, 200)}):\n${logTail(logFile)}`);
}

async function snapshot(agent: RunningAgent, query: string, signal: AbortSignal): Promise<NodeSnapshotDocument> {
  const { status, body } = await getJson(`${agent.url}/v1/snapshot?${query}`, signal);
  if (status !== 200) throw new SetupError(`GET /v1/snapshot answered ${status}: ${clip(JSON.stringify(body), 300)}`);
  const valid = validateSnapshotDocument(body);
  if (!valid.ok) throw new SetupError(`the agent's snapshot does not match its schema: ${valid.problems.join('; ')}`);
  return valid.document;
}

/** Rows about the event path: the watcher runs, the kernel log is read, and (optionally) a real XID arrives. */
function eventRows(doc: NodeSnapshotDocument, kmsgEnabled: boolean): FieldComparison[] {
  const sources = doc.agent.xidSources;
  const row = (field: string, ok: boolean, ours: string, note?: string): FieldComparison => ({
    field,
    ours,
    nvidiaSmi: 'true',
    status: ok ? 'OK' : 'DIFF',
    ...(note !== undefined ? { note } : {}),
  });
  const rows = [
    row('xidSources.nvmlEvents.running', sources.nvmlEvents.running, String(sources.nvmlEvents.running), sources.nvmlEvents.error),
  ];
  if (kmsgEnabled)
    rows.push(
      row(
        'xidSources.kmsg.running',
        sources.kmsg.running,
        String(sources.kmsg.running),
        sources.kmsg.error ?? `${sources.kmsg.records} records read`,
      ),
    );
  return rows;
}

async function xidProgram(config: ValidateConfig, signal: AbortSignal, workDir: string): Promise<string> {
  if (config.xidCommand !== undefined) return config.xidCommand;
  const binary = path.join(workDir, 'xid43');
  const r = await run(config.nvcc, ['-o', binary, path.join(REPO_ROOT, 'dev', 'hardware', 'xid43.cu')], signal);
  if (r.code !== 0) throw new SetupError(`${config.nvcc} could not build xid43.cu (exit ${r.code}): ${clip(r.stderr, 400)}`);
  return binary;
}

/** Raises XID 43 on the chosen GPU and waits for the agent to report it from each enabled source. */
async function injectXid(
  config: ValidateConfig,
  agent: RunningAgent,
  doc: NodeSnapshotDocument,
  signal: AbortSignal,
  notes: string[],
): Promise<FieldComparison[]> {
  const gpu = doc.gpus.find((g) => g.index === config.xidGpu);
  if (gpu?.uuid === undefined) throw new SetupError(`--xid-gpu ${config.xidGpu}: no such GPU with a UUID in the snapshot`);
  const workDir = await mkdtemp(path.join(os.tmpdir(), 'gpudiag-xid-'));
  try {
    const program = await xidProgram(config, signal, workDir);
    const since = new Date(Date.now() - 1000).toISOString();
    const r = await run(program, [], signal, { ...process.env, CUDA_VISIBLE_DEVICES: gpu.uuid });
    notes.push(`XID program on GPU ${gpu.index}: exit ${r.code}, ${clip(r.stdout.trim(), 120)}`);
    const key = gpu.pciBusId === undefined ? undefined : toKernelBusId(gpu.pciBusId);
    const wanted: ('nvml' | 'kmsg')[] = config.kmsgPath === '' ? ['nvml'] : ['nvml', 'kmsg'];
    const seen = new Map<string, XidEventReport>();
    const deadline = Date.now() + XID_WAIT_MS;
    while (Date.now() < deadline && !signal.aborted && seen.size < wanted.length) {
      const events = (await snapshot(agent, `checks=xid&xidSince=${encodeURIComponent(since)}`, signal)).xid.events;
      for (const e of events.filter(
        (x) => x.xid === XID_TEST_CODE && (x.gpuUuid === gpu.uuid || (key !== undefined && x.pciBusId === key)),
      )) {
        for (const s of e.sources) if (!seen.has(s)) seen.set(s, e);
      }
      if (seen.size < wanted.length) await sleep(1000, signal);
    }
    return wanted.map((source) => {
      const e = seen.get(source);
      return {
        field: `xid${XID_TEST_CODE}.${source}`,
        ours: e === undefined ? '' : `XID ${e.xid} at ${e.lastSeen}`,
        nvidiaSmi: `XID ${XID_TEST_CODE} on GPU ${gpu.index}`,
        status: e === undefined ? 'MISSING' : 'OK',
        ...(e === undefined ? { note: `not reported from ${source} within ${XID_WAIT_MS / 1000} s` } : {}),
      };
    });
  } finally {
    await rm(workDir, { recursive: true, force: true });
  }
}

/** What report.json holds. */
interface ValidationReport {
  tool: 'gpudiag hardware validation';
  startedAt: string;
  finishedAt: string;
  host: string;
  config: Readonly<ValidateConfig>;
  driverVersion?: string;
  cudaVersion?: string;
  gpus: string[];
  comparison?: ComparisonReport;
  events: FieldComparison[];
  notes: string[];
  error?: string;
  passed: boolean;
  files: string[];
}

function eventTable(rows: readonly FieldComparison[]): string {
  if (rows.length === 0) return '';
  const w = [
    Math.max(5, ...rows.map((r) => r.field.length)),
    Math.max(4, ...rows.map((r) => r.ours.length)),
    Math.max(8, ...rows.map((r) => r.nvidiaSmi.length)),
  ];
  const line = (c: readonly string[]): string =>
    c
      .map((x, i) => x.padEnd(w[i] ?? 0))
      .join('  ')
      .trimEnd();
  return [
    'Event path',
    line(['field', 'ours', 'expected', 'status']),
    ...rows.map((r) => line([r.field, r.ours, r.nvidiaSmi, r.note === undefined ? r.status : `${r.status}  (${r.note})`])),
  ].join('\n');
}

/** One validation run; resolves with the exit code after writing the report. */
export async function runValidation(config: Readonly<ValidateConfig>): Promise<number> {
  mkdirSync(config.outDir, { recursive: true });
  const started = new Date();
  const signal = AbortSignal.timeout(config.deadlineMs);
  const file = (name: string): string => path.join(config.outDir, name);
  const report: ValidationReport = {
    tool: 'gpudiag hardware validation',
    startedAt: started.toISOString(),
    finishedAt: '',
    host: os.hostname(),
    config,
    gpus: [],
    events: [],
    notes: [],
    passed: false,
    files: [],
  };
  const logFile = file('agent.log');
  closeSync(openSync(logFile, 'w'));
  let agent: RunningAgent | undefined;
  let code = 2;
  try {
    agent = await startAgent(config, logFile);
    const unready = await waitReady(agent, logFile, signal);
    if (unready !== undefined) report.notes.push(unready);
    const before = await nvidiaSmiLog(config, signal, file('nvidia-smi-before.xml'));
    const doc = await snapshot(agent, `checks=${SNAPSHOT_CHECKS}`, signal);
    writeFileSync(file('snapshot.json'), `${JSON.stringify(doc, null, 2)}\n`);
    const after = await nvidiaSmiLog(config, signal, file('nvidia-smi-after.xml'));
    const links = await nvlinkStatus(config, signal, file('nvlink-status.txt'), report.notes);
    Object.assign(report, {
      ...(before.driverVersion !== undefined ? { driverVersion: before.driverVersion } : {}),
      ...(before.cudaVersion !== undefined ? { cudaVersion: before.cudaVersion } : {}),
      gpus: before.gpus.map((g) => `${g.productName ?? '?'} ${g.uuid ?? ''}`.trim()),
    });
    const comparison = compareSnapshot({
      snapshot: doc,
      readings: [before, after],
      ...(links !== undefined ? { nvlinkStatus: links } : {}),
    });
    report.comparison = comparison;
    report.events = eventRows(doc, config.kmsgPath !== '');
    if (config.injectXid) report.events.push(...(await injectXid(config, agent, doc, signal, report.notes)));
    else report.notes.push('no XID injected (pass --inject-xid to raise a real XID 43 and follow it through the agent)');
    const eventsOk = report.events.every((r) => r.status === 'OK');
    report.passed = comparison.passed && eventsOk;
    process.stdout.write(`${formatComparison(comparison)}\n\n${eventTable(report.events)}\n`);
    code = report.passed ? 0 : 1;
  } catch (err) {
    const message = signal.aborted
      ? `gave up after the ${config.deadlineMs / 1000} s deadline`
      : err instanceof Error
        ? err.message
        : String(err);
    report.error = message;
    process.stderr.write(`validate:hardware: ${message}\n`);
  } finally {
    if (agent !== undefined) {
      await agent.process.stop(AGENT_STOP_GRACE_MS);
      agent.stopWatchdog();
    }
  }
  report.finishedAt = new Date().toISOString();
  const written = ['agent.log', 'nvidia-smi-before.xml', 'snapshot.json', 'nvidia-smi-after.xml', 'nvlink-status.txt'];
  report.files = ['report.json', ...written.filter((f) => existsSync(file(f)))];
  writeFileSync(file('report.json'), `${JSON.stringify(report, null, 2)}\n`);
  process.stdout.write(`${report.passed ? 'PASS' : code === 1 ? 'FAIL' : 'NOT RUN'}: report written to ${file('report.json')}\n`);
  return code;
}

async function main(): Promise<number> {
  const args = parseValidateArgs(process.argv.slice(2), process.env);
  if (!args.ok) {
    process.stderr.write(`validate:hardware: ${args.error}\n\n${USAGE}`);
    return 2;
  }
  if ('help' in args) {
    process.stdout.write(USAGE);
    return 0;
  }
  return runValidation(args.config);
}

if (process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().then(
    (code) => process.exit(code),
    (err: unknown) => {
      process.stderr.write(`validate:hardware failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
      process.exit(2);
    },
  );
}
