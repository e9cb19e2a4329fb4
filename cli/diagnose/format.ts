/**
 * How `gpudiag diagnose` shows a result: one table row per GPU (and per node that has no GPU
 * to show, or findings of its own), worst first; or the status as JSON or YAML. Pure. Finding
 * and node messages can carry kernel-log text, so control characters never reach the terminal.
 */
import { stringify } from 'yaml';
import type { GPUDiagnosticStatus } from '../../api/index.js';
import { clip } from '../../lib/text.js';
import type { DiagnoseOutput } from './options.js';

type StatusNode = NonNullable<GPUDiagnosticStatus['nodes']>[number];
type StatusGpu = NonNullable<StatusNode['gpus']>[number];
type XidEvent = NonNullable<StatusNode['xidEvents']>[number];
type Finding = NonNullable<StatusNode['findings']>[number];
type Health = StatusNode['status'];

/** One table row. */
export interface ResultRow {
  readonly node: string;
  /** The GPU's NVML index, or null for the node's own row. */
  readonly gpuIndex: number | null;
  readonly gpu: string;
  readonly status: Health;
  readonly score: number | null;
  readonly worst: string;
  readonly xids: string;
}

/** Worst first: critical, degraded, unknown (not diagnosed), healthy — the operator's order. */
const RANK: Readonly<Record<Health, number>> = { critical: 0, degraded: 1, unknown: 2, healthy: 3 };
const SEVERITY_HEALTH: Readonly<Record<Finding['severity'], Health>> = { critical: 'critical', warning: 'degraded', info: 'healthy' };
const WORST_WIDTH = 72;
const GPU_NAME_WIDTH = 28;

/** Replaces control characters (terminal escape sequences included) with U+FFFD. */
export function printable(text: string): string {
  // eslint-disable-next-line no-control-regex -- matching control characters is the point
  return text.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g, '\uFFFD');
}

function worstFinding(findings: readonly Finding[] | undefined, fallback: string | undefined): string {
  const f = findings?.[0];
  const text = f !== undefined ? `${f.code}: ${f.message}` : (fallback ?? '');
  return text === '' ? '-' : clip(printable(text), WORST_WIDTH);
}

/** `79`, `13x4, 31`: codes worst first as the node lists them, with counts above one. */
function xidList(events: readonly XidEvent[]): string {
  const counts = new Map<number, number>();
  for (const e of events) counts.set(e.xid, (counts.get(e.xid) ?? 0) + e.count);
  return counts.size === 0 ? '-' : [...counts].map(([xid, n]) => (n > 1 ? `${xid}x${n}` : String(xid))).join(', ');
}

/** The kernel's bus id (`0000:3b:00`) and NVML's (`00000000:3B:00.0`) compare by domain, bus and device. */
function busKey(id: string | undefined): string | undefined {
  const m = id === undefined ? null : /^([0-9a-f]+):([0-9a-f]{2}):([0-9a-f]{2})/i.exec(id);
  return m === null ? undefined : `${parseInt(m[1] ?? '', 16)}:${(m[2] ?? '').toLowerCase()}:${(m[3] ?? '').toLowerCase()}`;
}

function belongsTo(event: XidEvent, gpu: StatusGpu): boolean {
  if (event.gpu !== undefined && event.gpu === gpu.uuid) return true;
  const key = busKey(event.pciBusId);
  return key !== undefined && key === busKey(gpu.pciBusId);
}

function gpuLabel(gpu: StatusGpu): string {
  return gpu.name === undefined ? String(gpu.index) : `${gpu.index} ${clip(printable(gpu.name), GPU_NAME_WIDTH)}`;
}

function rowsOfNode(node: StatusNode): ResultRow[] {
  const gpus = node.gpus ?? [];
  const events = node.xidEvents ?? [];
  const name = printable(node.name);
  const rows: ResultRow[] = gpus.map((g) => ({
    node: name,
    gpuIndex: g.index,
    gpu: gpuLabel(g),
    status: g.status,
    score: g.score ?? null,
    worst: worstFinding(g.findings, undefined),
    xids: xidList(events.filter((e) => belongsTo(e, g))),
  }));
  const unclaimed = events.filter((e) => !gpus.some((g) => belongsTo(e, g)));
  const findings = node.findings ?? [];
  if (gpus.length === 0 || findings.length > 0 || unclaimed.length > 0) {
    rows.push({
      node: name,
      gpuIndex: null,
      gpu: '-',
      // When no GPU stands for the node its own status is the row's; else what its own findings and XIDs say.
      status: gpus.length === 0 ? node.status : ownStatus(findings, unclaimed),
      score: gpus.length === 0 ? (node.score ?? null) : null,
      worst: worstFinding(findings, gpus.length === 0 ? `${node.result}: ${node.message ?? ''}` : undefined),
      xids: xidList(unclaimed),
    });
  }
  return rows;
}

function ownStatus(findings: readonly Finding[], unclaimed: readonly XidEvent[]): Health {
  const severities = [...findings.map((f) => f.severity), ...unclaimed.map((e) => e.severity ?? 'warning')];
  const worst = severities.map((sev) => SEVERITY_HEALTH[sev]).sort((x, y) => RANK[x] - RANK[y])[0];
  return worst ?? 'healthy';
}

/** Compares rows worst first: status, then score (none last), then node name, then the node's own row before its GPUs. */
export function compareRows(a: ResultRow, b: ResultRow): number {
  return (
    RANK[a.status] - RANK[b.status] ||
    (a.score ?? 101) - (b.score ?? 101) ||
    a.node.localeCompare(b.node) ||
    (a.gpuIndex ?? -1) - (b.gpuIndex ?? -1)
  );
}

/** Every row of a status, worst first. */
export function resultRows(status: GPUDiagnosticStatus | undefined): ResultRow[] {
  return (status?.nodes ?? []).flatMap(rowsOfNode).sort(compareRows);
}

const HEADER = ['NODE', 'GPU', 'STATUS', 'SCORE', 'WORST FINDING', 'XIDS'];

/** Aligned columns; the last column is not padded. */
export function renderColumns(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, col) => Math.max(h.length, ...rows.map((r) => (r[col] ?? '').length)));
  const line = (cells: readonly string[]): string =>
    cells
      .map((c, col) => (col === cells.length - 1 ? c : c.padEnd(widths[col] ?? 0)))
      .join('  ')
      .trimEnd();
  return [header, ...rows].map(line).join('\n');
}

/** One line over every targeted node (the summary also counts nodes left out of the table). */
export function summaryLine(namespace: string, name: string, status: GPUDiagnosticStatus | undefined): string {
  const s = status?.summary ?? {};
  const byStatus = s.nodesByStatus ?? {};
  const gpus = s.gpus ?? {};
  const parts = [
    `GPUDiagnostic ${namespace}/${name} ${status?.phase ?? 'Pending'}`,
    `${s.nodesTargeted ?? 0} node(s): ${byStatus.critical ?? 0} critical, ${byStatus.degraded ?? 0} degraded, ` +
      `${byStatus.unknown ?? 0} not diagnosed, ${byStatus.healthy ?? 0} healthy`,
    `${gpus.total ?? 0} GPU(s): ${gpus.critical ?? 0} critical, ${gpus.degraded ?? 0} degraded`,
  ];
  if (s.minScore !== undefined) parts.push(`min score ${s.minScore}`);
  if ((status?.nodesTruncated ?? 0) > 0) parts.push(`${status?.nodesTruncated} node(s) not listed (the status keeps the worst)`);
  return parts.join('; ');
}

/** The table: header, rows worst first, a blank line and the summary. */
export function renderTable(namespace: string, name: string, status: GPUDiagnosticStatus | undefined): string {
  const rows = resultRows(status).map((r) => [r.node, r.gpu, r.status, r.score === null ? '-' : String(r.score), r.worst, r.xids]);
  const table = rows.length === 0 ? '' : `${renderColumns(HEADER, rows)}\n\n`;
  return `${table}${summaryLine(namespace, name, status)}\n`;
}

/** The result in the chosen format: the table, or the object's status as JSON or YAML. */
export function renderResult(output: DiagnoseOutput, namespace: string, name: string, status: GPUDiagnosticStatus | undefined): string {
  if (output === 'json') return `${JSON.stringify(status ?? {}, null, 2)}\n`;
  if (output === 'yaml') return stringify(status ?? {});
  return renderTable(namespace, name, status);
}

/** The progress line shown on a terminal while the diagnostic runs: `nodes 812/1000 answered, 3 critical`. */
export function progressText(status: GPUDiagnosticStatus | undefined): string {
  const s = status?.summary;
  if (s?.nodesTargeted === undefined) return `waiting for the operator (${status?.phase ?? 'Pending'})`;
  const critical = s.nodesByStatus?.critical ?? 0;
  const degraded = s.nodesByStatus?.degraded ?? 0;
  return `nodes ${s.nodesCompleted ?? 0}/${s.nodesTargeted} answered, ${critical} critical${degraded > 0 ? `, ${degraded} degraded` : ''}`;
}
