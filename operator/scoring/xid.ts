/**
 * XID events judged by the policy: each is classified from its message (the catalog's bucket,
 * the decodes, the rules that depend on the GPU's other XIDs, the policy's per-code overrides),
 * events outside the lookback are dropped unless their fault lasts until a reboot or a GPU reset
 * (the agent stops sending those once the node rebooted or the GPU was reset), ignored codes
 * are dropped, and escalations raise a code that repeats within a window. Pure: `now` is a
 * parameter.
 */
import type { BusLossReport, SwitchEventReport, XidEventReport } from '../../agent/api/snapshot-document.js';
import { toKernelBusId, toNvmlBusId } from '../../agent/nvml/pci-bus-id.js';
import type { XidPersistence } from '../../agent/xid/actions.js';
import { applyXidPolicy, compareSeverity, defaultXidCatalog, type XidCatalog, type XidCategory } from '../../agent/xid/catalog.js';
import { classifyXid, type XidClassification } from '../../agent/xid/classify.js';
import { applyXidContext } from '../../agent/xid/context.js';
import { finding, sortWorstFirst, type Finding, type Severity } from './finding.js';
import type { ResolvedPolicy, ResolvedXidEscalation } from './policy.js';

/** The key of node-level XID findings (events tied to no GPU). */
export const NODE_LEVEL_KEY = '';

/** Finding codes by the XID's final severity. */
export const XID_FINDING_CODES: Readonly<Record<Severity, string>> = Object.freeze({
  info: 'XidInfo',
  warning: 'XidWarning',
  critical: 'XidCritical',
});

/** One XID event after the policy was applied. */
export interface EvaluatedXidEvent {
  readonly xid: number;
  /** Catalog name. */
  readonly name: string;
  readonly category: XidCategory;
  /** Severity after message rules, overrides and escalations. */
  readonly severity: Severity;
  /** The escalation rule that raised the severity, when one did. */
  readonly escalatedBy?: ResolvedXidEscalation;
  /** Recommended action (the override's when set). */
  readonly action: string;
  /** NVIDIA's bucket after decoding (RESET_GPU, RESTART_BM, IGNORE...). */
  readonly immediateAction: string;
  readonly investigatoryAction: string | null;
  /** How long the fault lasts. */
  readonly persistsUntil: XidPersistence;
  /** How the message was decoded, when it was. */
  readonly decoded?: string;
  readonly count: number;
  readonly firstSeen: string;
  readonly lastSeen: string;
  readonly gpuUuid?: string;
  /** Kernel-form PCI bus id (`0000:3b:00`). */
  readonly pciBusId?: string;
  readonly gpuInstance?: number;
  readonly computeInstance?: number;
  readonly pid: number | null;
  readonly process: string | null;
  /** The kernel message (untrusted text; never copied into findings). */
  readonly message: string;
  /** gpuUuid, else the kernel-form bus id, else NODE_LEVEL_KEY. */
  readonly gpuKey: string;
}

/** What evaluateXidEvents returns. */
export interface XidEvaluation {
  /** Findings per gpuKey (GPU UUID, kernel-form PCI bus id, or NODE_LEVEL_KEY), worst first. */
  readonly findingsByGpu: ReadonlyMap<string, readonly Finding[]>;
  /** Events kept, worst (then newest) first. */
  readonly events: readonly EvaluatedXidEvent[];
}

/** Kernel-form bus id (`0000:3b:00`) from either the NVML or the kernel form; undefined when malformed. */
export function kernelBusIdKey(busId: string): string | undefined {
  const direct = toKernelBusId(busId);
  if (direct !== undefined) return direct;
  const nvml = toNvmlBusId(busId);
  return nvml === undefined ? undefined : toKernelBusId(nvml);
}

function gpuKeyOf(event: XidEventReport): string {
  if (event.gpuUuid !== undefined && event.gpuUuid !== '') return event.gpuUuid;
  if (event.pciBusId !== undefined) return kernelBusIdKey(event.pciBusId) ?? event.pciBusId.trim().toLowerCase();
  return NODE_LEVEL_KEY;
}

function worse(a: Severity, b: Severity): Severity {
  return compareSeverity(a, b) >= 0 ? a : b;
}

/** Occurrences of one code on one GPU, across processes: the basis of escalation. */
interface XidGroup {
  count: number;
  firstMs: number;
  lastMs: number;
}

/**
 * The escalation that applies to a group, if any. Events lie in [first, last]; cutting that span
 * into ceil(span / window) windows, one window holds at least count / windows events
 * (pigeonhole). So a span within one window and count ≥ rule.count escalates, and so does a
 * longer storm dense enough to prove rule.count events in some window.
 */
function escalationFor(xid: number, group: XidGroup, escalations: readonly ResolvedXidEscalation[]): ResolvedXidEscalation | undefined {
  const span = group.lastMs - group.firstMs;
  let chosen: ResolvedXidEscalation | undefined;
  for (const rule of escalations) {
    if (rule.xid !== xid || !Number.isFinite(span)) continue;
    const windows = Math.max(1, Math.ceil(Math.max(0, span) / rule.windowMs));
    if (group.count / windows >= rule.count && (chosen === undefined || compareSeverity(rule.severity, chosen.severity) > 0)) chosen = rule;
  }
  return chosen;
}

function worstFirstEvents(a: EvaluatedXidEvent, b: EvaluatedXidEvent): number {
  return compareSeverity(b.severity, a.severity) || Date.parse(b.lastSeen) - Date.parse(a.lastSeen) || b.count - a.count || a.xid - b.xid;
}

function xidFinding(events: readonly EvaluatedXidEvent[]): Finding {
  const [first] = events;
  if (first === undefined) throw new Error('xidFinding needs at least one event');
  const severity = events.map((e) => e.severity).reduce(worse);
  const count = events.reduce((n, e) => n + e.count, 0);
  const lastSeen = events.map((e) => e.lastSeen).reduce((a, b) => (Date.parse(b) > Date.parse(a) ? b : a));
  const escalation = events.find((e) => e.escalatedBy !== undefined)?.escalatedBy;
  const escalated =
    escalation === undefined ? '' : `; escalated to ${escalation.severity} (${escalation.count}+ within ${escalation.window})`;
  const worst = events.find((e) => e.severity === severity) ?? first;
  const decoded = worst.decoded === undefined ? '' : ` [${worst.decoded}]`;
  const lasts =
    worst.persistsUntil === 'reboot'
      ? ' Lasts until the node reboots.'
      : worst.persistsUntil === 'gpu-reset'
        ? ' Lasts until the GPU is reset.'
        : '';
  return finding(
    'xid',
    severity,
    XID_FINDING_CODES[severity],
    `XID ${first.xid} (${first.name}) logged ${count} time(s), last at ${lastSeen}${escalated}: ` +
      `${worst.immediateAction}${decoded}. Action: ${worst.action.replace(/\.$/, '')}.${lasts}`,
  );
}

/** The worse of the last message's and the worst message's classification (a group's severity never drops). */
function classifyReport(e: XidEventReport, view: ReturnType<typeof applyXidPolicy>, driverVersion: string | null): XidClassification {
  const last = classifyXid(e.xid, e.message, view, { driverVersion });
  if (e.worstMessage === undefined || e.worstMessage === e.message) return last;
  const worst = classifyXid(e.xid, e.worstMessage, view, { driverVersion });
  return compareSeverity(worst.severity, last.severity) > 0 ? worst : last;
}

/** Applies the policy's XID section to the agent's events at time `now` (catalog: the built-in one by default). */
export function evaluateXidEvents(
  events: readonly XidEventReport[],
  policy: ResolvedPolicy,
  now: Date,
  catalog: XidCatalog = defaultXidCatalog,
  driverVersion: string | null = null,
): XidEvaluation {
  const view = applyXidPolicy(catalog, { ignore: policy.xid.ignore, overrides: policy.xid.overrides });
  const cutoff = now.getTime() - policy.xid.lookbackMs;
  const candidates = events.filter((e) => !view.isIgnored(e.xid));
  const single = candidates.map((e) => classifyReport(e, view, driverVersion));
  const judged = applyXidContext(
    candidates.map((e, i) => ({
      xid: e.xid,
      gpuKey: gpuKeyOf(e),
      pid: e.pid,
      firstSeenMs: Date.parse(e.firstSeen),
      lastSeenMs: Date.parse(e.lastSeen),
      classification: single[i] as XidClassification,
      subKey: (single[i] as XidClassification).subKey,
    })),
    view,
  );
  // An unparsable lastSeen cannot be proved old, so it is kept; so is a fault that outlasts the look-back.
  const kept = candidates
    .map((e, i) => ({ e, c: judged[i] as XidClassification }))
    .filter(({ e, c }) => c.persistence !== 'lookback' || !(Date.parse(e.lastSeen) < cutoff));
  const recent = kept.map(({ e }) => e);
  const classificationOf = new Map(kept.map(({ e, c }) => [e, c]));

  const groups = new Map<string, XidGroup>();
  const groupKey = (e: XidEventReport): string => `${gpuKeyOf(e)}\u0000${e.xid}`;
  for (const e of recent) {
    const g = groups.get(groupKey(e)) ?? { count: 0, firstMs: Number.POSITIVE_INFINITY, lastMs: Number.NEGATIVE_INFINITY };
    g.count += e.count;
    g.firstMs = Math.min(g.firstMs, Date.parse(e.firstSeen));
    g.lastMs = Math.max(g.lastMs, Date.parse(e.lastSeen));
    groups.set(groupKey(e), g);
  }

  const evaluated = recent.map((e): EvaluatedXidEvent => {
    const entry = view.lookup(e.xid);
    const c = classificationOf.get(e) as XidClassification;
    const base = c.severity;
    const group = groups.get(groupKey(e));
    const rule = group === undefined ? undefined : escalationFor(e.xid, group, policy.xid.escalations);
    const raised = rule !== undefined && compareSeverity(rule.severity, base) > 0;
    const pciBusId = e.pciBusId === undefined ? undefined : (kernelBusIdKey(e.pciBusId) ?? e.pciBusId);
    return Object.freeze({
      xid: e.xid,
      name: entry.name,
      category: entry.category,
      severity: raised ? rule.severity : base,
      ...(raised ? { escalatedBy: rule } : {}),
      action: c.action,
      immediateAction: c.immediateAction,
      investigatoryAction: c.investigatoryAction,
      persistsUntil: c.persistence,
      ...(c.decoded === undefined ? {} : { decoded: c.decoded }),
      count: e.count,
      firstSeen: e.firstSeen,
      lastSeen: e.lastSeen,
      ...(e.gpuUuid === undefined ? {} : { gpuUuid: e.gpuUuid }),
      ...(pciBusId === undefined ? {} : { pciBusId }),
      ...(e.gpuInstance === undefined ? {} : { gpuInstance: e.gpuInstance }),
      ...(e.computeInstance === undefined ? {} : { computeInstance: e.computeInstance }),
      pid: e.pid,
      process: e.process,
      message: e.message,
      gpuKey: gpuKeyOf(e),
    });
  });

  const byGpuAndXid = new Map<string, Map<number, EvaluatedXidEvent[]>>();
  for (const e of evaluated) {
    const perGpu = byGpuAndXid.get(e.gpuKey) ?? new Map<number, EvaluatedXidEvent[]>();
    perGpu.set(e.xid, [...(perGpu.get(e.xid) ?? []), e]);
    byGpuAndXid.set(e.gpuKey, perGpu);
  }
  const findingsByGpu = new Map<string, readonly Finding[]>();
  for (const [key, perXid] of byGpuAndXid) {
    findingsByGpu.set(key, sortWorstFirst([...perXid.values()].map(xidFinding)));
  }
  return Object.freeze({ findingsByGpu, events: Object.freeze(evaluated.sort(worstFirstEvents)) });
}

/** NVSwitch errors as node-level findings: one per switch and code, fatal ones critical. */
export function switchFindings(events: readonly SwitchEventReport[]): Finding[] {
  const groups = new Map<string, SwitchEventReport[]>();
  for (const e of events) {
    const key = `${e.switchPciBusId ?? '?'}|${e.sxid}`;
    const list = groups.get(key);
    if (list === undefined) groups.set(key, [e]);
    else list.push(e);
  }
  return [...groups.values()].map((list) => {
    const [first] = list as [SwitchEventReport, ...SwitchEventReport[]];
    const fatal = list.some((e) => e.fatal);
    const count = list.reduce((n, e) => n + e.count, 0);
    const links = [...new Set(list.flatMap((e) => (e.link === undefined ? [] : [e.link])))].sort((a, b) => a - b);
    const where = first.switchPciBusId === undefined ? 'an NVSwitch' : `NVSwitch ${first.switchPciBusId}`;
    const onLinks = links.length === 0 ? '' : ` on link${links.length === 1 ? '' : 's'} ${links.join(', ')}`;
    const advice = fatal
      ? "The fabric is impaired: drain NVLink work on this node, collect nvidia-bug-report.sh output and follow NVIDIA's NVSwitch " +
        'guidance (usually a node reboot).'
      : 'Non-fatal: watch for repeats; report them to NVIDIA support.';
    return finding(
      'nvlink',
      fatal ? 'critical' : 'warning',
      fatal ? 'NvSwitchFatalSxid' : 'NvSwitchNonFatalSxid',
      `SXid ${first.sxid} (${fatal ? 'fatal' : 'non-fatal'}) on ${where}${onLinks}, ${count} time(s), last at ${first.lastSeen}. ${advice}`,
    );
  });
}

/** A GPU that fell off the bus without an XID: critical until the node reboots. */
export function busLossFinding(loss: BusLossReport): Finding {
  return finding(
    'xid',
    'critical',
    'GpuFellOffBus',
    `The kernel reports the GPU at ${loss.pciBusId} fell off the bus (${loss.count} time(s), last at ${loss.lastSeen}) without ` +
      `an XID code: RESTART_BM. Drain the node and reboot it; the GPU is unusable until then.`,
  );
}

/** Key of a bus-loss report in findingsByGpu terms. */
export function busLossKey(loss: BusLossReport): string {
  return loss.gpuUuid ?? kernelBusIdKey(loss.pciBusId) ?? loss.pciBusId;
}
