/**
 * Kernel-log parser benchmark. Generates a realistic 1,000,000-line kernel log (dmesg,
 * dmesg -T, syslog and journald prefixes; ~1.5% NVRM Xid lines over many codes, some
 * `NVRM: GPU at PCI` and other NVRM lines, the rest ordinary kernel chatter), then measures
 *   (a) parseKernelLine throughput in this process (median of several runs), and
 *   (b) `gpudiag xid analyze` end to end (wall time, lines/s, peak RSS via /usr/bin/time -v).
 * Prints figures and writes bench/results/parser.json; asserts nothing. Bounded, self-stopping.
 *
 *   npx tsc -p tsconfig.json && node dist/bench/parser-bench.js [--lines 1000000] [--runs 5]
 *
 * XID, UUID and negative NVRM payloads come from test/fixtures/xid/corpus.jsonl (real lines
 * from public reports); only their prefixes are re-generated.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { parseKernelLine } from '../agent/xid/parser.js';
import { round } from './support.js';

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const HARD_DEADLINE_MS = 5 * 60_000;
const SEED = 0x5eed_1e55;
/** Share of lines of each kind; the rest are ordinary kernel lines. */
const XID_SHARE = 0.015;
const GPU_UUID_SHARE = 0.002;
const OTHER_NVRM_SHARE = 0.005;
const GNU_TIME = '/usr/bin/time';

/** The running `xid analyze` process, killed on the hard deadline too. */
let cliChild: ChildProcess | undefined;

/** Deterministic PRNG (mulberry32), so every run benchmarks the same file. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Ordinary kernel messages (no NVRM), with `#` replaced by a number. */
const ORDINARY = [
  'EXT4-fs (nvme0n1p2): mounted filesystem with ordered data mode. Quota mode: none.',
  'IPv6: ADDRCONF(NETDEV_CHANGE): eth#: link becomes ready',
  'mlx5_core 0000:#:00.0: mlx5_pcie_event:301:(pid #): PCIe slot advertised sufficient power (75W).',
  'mlx5_core 0000:#:00.1 ib#: Link up',
  'audit: type=1400 audit(#.123:#): apparmor="DENIED" operation="open" profile="snap.lxd" name="/proc/#/mounts" pid=# comm="lxd"',
  'cgroup: fork rejected by pids controller in /kubepods.slice/kubepods-burstable.slice',
  'nvidia-uvm: Loaded the UVM driver, major device number #.',
  'nvidia-modeset: Loading NVIDIA Kernel Mode Setting Driver for UNIX platforms  550.54.15',
  'nvidia-nvswitch#: open (major=#)',
  'perf: interrupt took too long (# > #), lowering kernel.perf_event_max_sample_rate to #',
  'TCP: request_sock_TCP: Possible SYN flooding on port #. Sending cookies.  Check SNMP counters.',
  'eth#: renamed from veth#',
  'cni0: port #(veth#) entered forwarding state',
  'cni0: port #(veth#) entered disabled state',
  'device veth# entered promiscuous mode',
  'overlayfs: upperdir is in-use as upperdir/workdir of another mount, accessing files from both mounts will result in undefined behavior.',
  'xfs filesystem being remounted at /var/lib/kubelet/pods/#/volume-subpaths supports timestamps until 2038 (0x7fffffff)',
  'Memory cgroup out of memory: Killed process # (python3) total-vm:#kB, anon-rss:#kB, file-rss:#kB, shmem-rss:0kB, UID:0 ' +
    'pgtables:#kB oom_score_adj:#',
  'python3 invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=0, oom_score_adj=#',
  'systemd[1]: Started Session # of user ubuntu.',
  'nfs: server 10.0.#.# not responding, still trying',
  'nfs: server 10.0.#.# OK',
  'igb 0000:#:00.0 eno1: igb: eno1 NIC Link is Up 1000 Mbps Full Duplex, Flow Control: RX/TX',
  'pcieport 0000:#:01.0: AER: Corrected error received: 0000:#:00.0',
  'nvme nvme0: I/O # QID # timeout, completion polled',
  'blk_update_request: I/O error, dev sdb, sector # op 0x0:(READ) flags 0x0 phys_seg 1 prio class 0',
  'kauditd_printk_skb: # callbacks suppressed',
  'IPVS: rr: TCP 10.96.#.#:443 - no destination available',
  'docker0: port #(veth#) entered blocking state',
  'infiniband mlx5_#: mlx5_ib_add: mlx5_ib_add: IB device registered',
  'random: crng reseeded on system resumption',
  'watchdog: BUG: soft lockup - CPU## stuck for 22s! [kworker/#:1:#]',
  'INFO: task python3:# blocked for more than 120 seconds.',
  'hrtimer: interrupt took # ns',
  'ACPI: \\_SB_.PCI0: _OSC: OS supports [ExtendedConfig ASPM ClockPM Segments MSI HPX-Type3]',
];

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];

interface CorpusPayloads {
  xid: string[];
  gpuUuid: string[];
  otherNvrm: string[];
}

/** The `NVRM: ...` part of every corpus line, grouped by what the parser should make of it. */
async function corpusPayloads(): Promise<CorpusPayloads> {
  const text = await readFile(path.join(REPO_ROOT, 'test', 'fixtures', 'xid', 'corpus.jsonl'), 'utf8');
  const out: CorpusPayloads = { xid: [], gpuUuid: [], otherNvrm: [] };
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    const entry = JSON.parse(line) as { line: string; expected: { kind: string } | null };
    const at = entry.line.indexOf('NVRM:');
    if (at < 0) continue;
    const payload = entry.line.slice(at);
    const kind = entry.expected?.kind;
    if (kind === 'xid') out.xid.push(payload);
    else if (kind === 'gpu-uuid') out.gpuUuid.push(payload);
    else out.otherNvrm.push(payload);
  }
  return out;
}

function pad(n: number, width = 2): string {
  return String(n).padStart(width, '0');
}

/** Writes `lines` generated lines to `file`; returns counts by kind. */
async function generate(file: string, lines: number): Promise<Record<string, number>> {
  const payloads = await corpusPayloads();
  const rnd = prng(SEED);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(rnd() * items.length)] as T;
  const num = (): string => String(Math.floor(rnd() * 65536));
  const counts = { xid: 0, gpuUuid: 0, otherNvrm: 0, ordinary: 0 };
  const out = createWriteStream(file);
  const host = 'gpu-node-17';
  let wallMs = Date.UTC(2025, 1, 23, 16, 0, 0);
  let uptime = 1843.439662;
  let chunk: string[] = [];
  for (let i = 0; i < lines; i += 1) {
    const step = rnd() * 50;
    wallMs += step;
    uptime += step / 1000;
    const r = rnd();
    let message: string;
    if (r < XID_SHARE) {
      message = pick(payloads.xid);
      counts.xid += 1;
    } else if (r < XID_SHARE + GPU_UUID_SHARE) {
      message = pick(payloads.gpuUuid);
      counts.gpuUuid += 1;
    } else if (r < XID_SHARE + GPU_UUID_SHARE + OTHER_NVRM_SHARE) {
      message = pick(payloads.otherNvrm);
      counts.otherNvrm += 1;
    } else {
      message = pick(ORDINARY).replace(/#/g, num);
      counts.ordinary += 1;
    }
    const d = new Date(wallMs);
    const hms = `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}`;
    const raw = `[${uptime.toFixed(6).padStart(12)}]`;
    const style = rnd();
    let line: string;
    if (style < 0.4) line = `${raw} ${message}`;
    else if (style < 0.6)
      line =
        `[${DAYS[d.getUTCDay()]} ${MONTHS[d.getUTCMonth()]} ${String(d.getUTCDate()).padStart(2)} ${hms} ${d.getUTCFullYear()}] ` +
        `${message}`;
    else if (style < 0.9)
      line = `${MONTHS[d.getUTCMonth()]} ${String(d.getUTCDate()).padStart(2)} ${hms} ${host} kernel: ${raw} ${message}`;
    else line = `${d.toISOString().slice(0, 19)}+0000 ${host} kernel: ${message}`;
    chunk.push(line);
    if (chunk.length === 10_000) {
      if (!out.write(`${chunk.join('\n')}\n`)) await new Promise<void>((resolve) => out.once('drain', () => resolve()));
      chunk = [];
    }
  }
  if (chunk.length > 0) out.write(`${chunk.join('\n')}\n`);
  await new Promise<void>((resolve, reject) => out.end((err?: Error | null) => (err ? reject(err) : resolve())));
  return counts;
}

function median(values: readonly number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? (s[mid] ?? NaN) : ((s[mid - 1] ?? NaN) + (s[mid] ?? NaN)) / 2;
}

interface ParserResult {
  runs: number;
  linesPerS: number[];
  medianLinesPerS: number;
  medianNsPerLine: number;
  found: Record<'xid' | 'gpu-uuid' | 'bus-lost', number>;
  /** The same over only the file's NVRM lines (the slow path; what an XID storm looks like). */
  nvrmOnly: { lines: number; medianLinesPerS: number; medianNsPerLine: number };
}

/** lines/s of parseKernelLine over `lines`, one run per entry. */
function parseRates(lines: readonly string[], runs: number, found?: Record<string, number>): number[] {
  const rates: number[] = [];
  for (let run = 0; run < runs; run += 1) {
    const counts: Record<string, number> = { xid: 0, 'gpu-uuid': 0, 'bus-lost': 0 };
    const started = performance.now();
    for (const line of lines) {
      const parsed = parseKernelLine(line);
      if (parsed !== null) counts[parsed.kind] = (counts[parsed.kind] ?? 0) + 1;
    }
    const s = (performance.now() - started) / 1000;
    rates.push(lines.length / s);
    if (found !== undefined) Object.assign(found, counts);
  }
  return rates;
}

/** (a) parseKernelLine over every line, in memory; returns lines/s per run and what was found. */
async function inProcess(file: string, runs: number): Promise<ParserResult> {
  const lines = (await readFile(file, 'utf8')).split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  const found = { xid: 0, 'gpu-uuid': 0, 'bus-lost': 0 };
  for (const line of lines.slice(0, 50_000)) parseKernelLine(line); // warm-up (JIT)
  const rates = parseRates(lines, runs, found);
  const nvrm = lines.filter((l) => l.includes('NVRM:'));
  // repeated so one run lasts long enough to time
  const nvrmRates = parseRates(Array.from({ length: 10 }, () => nvrm).flat(), runs);
  return {
    runs,
    linesPerS: rates.map((r) => Math.round(r)),
    medianLinesPerS: Math.round(median(rates)),
    medianNsPerLine: round(1e9 / median(rates), 1),
    found,
    nvrmOnly: { lines: nvrm.length, medianLinesPerS: Math.round(median(nvrmRates)), medianNsPerLine: round(1e9 / median(nvrmRates), 1) },
  };
}

interface CliRun {
  wallS: number;
  maxRssMiB: number | null;
  outputLines: number;
  exitCode: number | null;
}

/** (b) one `gpudiag xid analyze` process; peak RSS from GNU time when it is installed. */
async function cliRun(file: string, format: 'jsonl' | 'table', outFile: string): Promise<CliRun> {
  const useTime = existsSync(GNU_TIME);
  const cli = [path.join(REPO_ROOT, 'bin', 'gpudiag.js'), 'xid', 'analyze', '--format', format, file];
  const [cmd, args] = useTime ? [GNU_TIME, ['-v', process.execPath, ...cli]] : [process.execPath, cli];
  const out = createWriteStream(outFile);
  await new Promise<void>((resolve) => out.once('open', () => resolve()));
  const started = performance.now();
  const child = spawn(cmd, args, { stdio: ['ignore', out, 'pipe'] });
  cliChild = child;
  let stderr = '';
  child.stderr.on('data', (c: Buffer) => (stderr = (stderr + c.toString()).slice(-8000)));
  const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
  const exitCode = await new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
  clearTimeout(timer);
  const wallS = (performance.now() - started) / 1000;
  await new Promise<void>((resolve) => out.end(() => resolve()));
  if (exitCode !== 0) throw new Error(`xid analyze exited with ${exitCode}: ${stderr}`);
  const m = /Maximum resident set size \(kbytes\): (\d+)/.exec(stderr);
  const text = await readFile(outFile, 'utf8');
  return {
    wallS: round(wallS, 3),
    maxRssMiB: m === null ? null : round(Number(m[1]) / 1024, 1),
    outputLines: text.split('\n').length - 1,
    exitCode,
  };
}

async function endToEnd(file: string, lines: number, runs: number, dir: string): Promise<Record<string, unknown>> {
  const result: Record<string, unknown> = { peakRssFrom: existsSync(GNU_TIME) ? `${GNU_TIME} -v` : 'not measured (no GNU time)' };
  for (const format of ['jsonl', 'table'] as const) {
    const all: CliRun[] = [];
    for (let run = 0; run < runs; run += 1) all.push(await cliRun(file, format, path.join(dir, `out.${format}`)));
    const wall = median(all.map((r) => r.wallS));
    const rss = all.map((r) => r.maxRssMiB).filter((v): v is number => v !== null);
    result[format] = {
      runs: all,
      medianWallS: round(wall, 3),
      linesPerS: Math.round(lines / wall),
      maxRssMiB: rss.length > 0 ? Math.max(...rss) : null,
      outputLines: all[0]?.outputLines,
    };
  }
  return result;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      lines: { type: 'string', default: '1000000' },
      runs: { type: 'string', default: '5' },
      'cli-runs': { type: 'string', default: '3' },
    },
  });
  const lines = Number(values.lines);
  const runs = Number(values.runs);
  const cliRuns = Number(values['cli-runs']);
  if (![lines, runs, cliRuns].every((n) => Number.isInteger(n) && n > 0))
    throw new Error('--lines, --runs and --cli-runs must be positive integers');

  const dir = await mkdtemp(path.join(os.tmpdir(), 'gpudiag-parser-bench-'));
  try {
    const file = path.join(dir, 'kernel.log');
    process.stderr.write(`generating ${lines} lines...\n`);
    const generated = await generate(file, lines);
    const bytes = (await stat(file)).size;
    process.stderr.write(`parseKernelLine in-process, ${runs} runs...\n`);
    const parser = await inProcess(file, runs);
    process.stderr.write(`gpudiag xid analyze, ${cliRuns} runs per format...\n`);
    const cli = await endToEnd(file, lines, cliRuns, dir);

    const out = {
      date: new Date().toISOString(),
      node: process.version,
      cpus: os.cpus().length,
      cpuModel: os.cpus()[0]?.model ?? 'unknown',
      loadAverage1m: round(os.loadavg()[0] ?? NaN, 2),
      input: { lines, bytes, seed: SEED, generated },
      parseKernelLine: parser,
      xidAnalyze: cli,
    };
    const resultsDir = path.join(REPO_ROOT, 'bench', 'results');
    await mkdir(resultsDir, { recursive: true });
    await writeFile(path.join(resultsDir, 'parser.json'), `${JSON.stringify(out, null, 2)}\n`);

    const j = cli['jsonl'] as { medianWallS: number; linesPerS: number; maxRssMiB: number | null; outputLines: number };
    const t = cli['table'] as { medianWallS: number; linesPerS: number; maxRssMiB: number | null };
    const mib = (v: number | null): string => (v === null ? 'n/a' : `${v} MiB`);
    process.stdout.write(
      [
        `gpudiag parser benchmark — ${out.cpus} CPUs, node ${process.version}`,
        `input: ${lines} lines, ${round(bytes / 1024 / 1024, 1)} MiB; ${generated.xid} Xid lines, ` +
          `${generated.gpuUuid} "GPU at PCI" lines, ${generated.otherNvrm} other NVRM lines`,
        `parseKernelLine (in-process): median ${parser.medianLinesPerS.toLocaleString('en-US')} lines/s ` +
          `(${parser.medianNsPerLine} ns/line) over ${runs} runs; found ${JSON.stringify(parser.found)}`,
        `parseKernelLine, NVRM lines only (${parser.nvrmOnly.lines}): median ` +
          `${parser.nvrmOnly.medianLinesPerS.toLocaleString('en-US')} lines/s (${parser.nvrmOnly.medianNsPerLine} ns/line)`,
        `xid analyze --format jsonl: median ${j.medianWallS} s wall, ${j.linesPerS.toLocaleString('en-US')} lines/s, peak RSS ` +
          `${mib(j.maxRssMiB)}, ${j.outputLines} events written`,
        `xid analyze --format table: median ${t.medianWallS} s wall, ${t.linesPerS.toLocaleString('en-US')} lines/s, peak RSS ` +
          `${mib(t.maxRssMiB)}`,
        `written: ${path.relative(process.cwd(), path.join(resultsDir, 'parser.json'))}`,
        '',
      ].join('\n'),
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const deadline = setTimeout(() => {
  process.stderr.write(`parser-bench: gave up after ${HARD_DEADLINE_MS / 1000} s\n`);
  if (cliChild !== undefined && cliChild.exitCode === null) cliChild.kill('SIGKILL');
  process.exit(1);
}, HARD_DEADLINE_MS);
deadline.unref();

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`parser-bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
