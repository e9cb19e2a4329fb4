/**
 * The catalog's rules that depend on the other XIDs of the same GPU, applied to classified
 * events (classify.ts) of one node. Pure.
 * - 45 after another XID on the same GPU is a side effect: act on the other one; alone it asks
 *   for a Fabric Manager restart.
 * - 48 together with 63 or 64: drain and reset.
 * - 13 on the same GPC+TPC, and 31 on the same GPU, in several different processes: suspected
 *   hardware; one burst alone is the application's.
 * - XID 154: the latest one per GPU says what to do now; earlier ones are superseded; "to 0x0
 *   (None)" clears the codes it reports for (catalog xid154 linkage) that came before it; codes
 *   whose bucket is XID_154 / XID_154_EVAL follow a 154 logged with or after them.
 */
import { bucketMeaning } from './actions.js';
import { defaultXidView, type XidPolicyView } from './catalog.js';
import type { XidClassification } from './classify.js';

/** What the rules need to know of an event. */
export interface XidContextEvent {
  readonly xid: number;
  /** The GPU (UUID or kernel bus id); '' for node-level events, which never relate to each other. */
  readonly gpuKey: string;
  readonly pid: number | null;
  readonly firstSeenMs: number;
  readonly lastSeenMs: number;
  readonly classification: XidClassification;
  /** The decode's sub-key (GPC/TPC for 13). */
  readonly subKey?: string;
}

/** Tuning of the context rules (docs/xid.md gives the defaults). */
export interface XidContextOptions {
  /** Two XIDs are "together" when one was logged within this time of the other. */
  readonly togetherMs?: number;
  /** Distinct processes needed for 13/31 to suggest hardware. */
  readonly repeatProcesses?: number;
  /** Window within which those processes must have faulted. */
  readonly repeatWindowMs?: number;
}

export const DEFAULT_TOGETHER_MS = 60_000;
export const DEFAULT_REPEAT_PROCESSES = 3;
export const DEFAULT_REPEAT_WINDOW_MS = 24 * 60 * 60 * 1000;
const XID_154 = 154;

function near(a: XidContextEvent, b: XidContextEvent, ms: number): boolean {
  return a.firstSeenMs <= b.lastSeenMs + ms && b.firstSeenMs <= a.lastSeenMs + ms;
}

function rebucket(c: XidClassification, xid: number, bucket: string, decoded: string, view: XidPolicyView): XidClassification {
  const meaning = bucketMeaning(bucket);
  const override = view.override(xid);
  return Object.freeze({
    ...c,
    immediateAction: bucket,
    severity: override?.severity ?? meaning.severity,
    action: override?.action ?? meaning.action,
    persistence: meaning.persistence,
    decoded,
  });
}

function distinctProcesses(events: readonly XidContextEvent[]): number {
  return new Set(events.map((e) => e.pid ?? -1)).size;
}

/** Applies the rules; returns one classification per input event, in input order. */
export function applyXidContext(
  events: readonly XidContextEvent[],
  view: XidPolicyView = defaultXidView,
  options: XidContextOptions = {},
): XidClassification[] {
  const togetherMs = options.togetherMs ?? DEFAULT_TOGETHER_MS;
  const repeatProcesses = options.repeatProcesses ?? DEFAULT_REPEAT_PROCESSES;
  const repeatWindowMs = options.repeatWindowMs ?? DEFAULT_REPEAT_WINDOW_MS;
  const byGpu = new Map<string, XidContextEvent[]>();
  for (const e of events) {
    if (e.gpuKey === '') continue;
    const list = byGpu.get(e.gpuKey);
    if (list === undefined) byGpu.set(e.gpuKey, [e]);
    else list.push(e);
  }
  const latest154 = new Map<string, XidContextEvent>();
  for (const [gpu, list] of byGpu) {
    const last = list
      .filter((e) => e.xid === XID_154)
      .reduce<XidContextEvent | undefined>((a, b) => (a === undefined || b.lastSeenMs > a.lastSeenMs ? b : a), undefined);
    if (last !== undefined) latest154.set(gpu, last);
  }

  // Repetition groups of 13 (per GPC/TPC) and 31 (per GPU): when a whole group fits in the
  // window the answer is the same for every member, so a storm of many processes stays linear.
  const repeatKey = (e: XidContextEvent): string => `${e.gpuKey}\u0000${e.xid}\u0000${e.xid === 31 ? '' : (e.subKey ?? '')}`;
  const repeatGroups = new Map<string, XidContextEvent[]>();
  for (const e of events) {
    if (e.gpuKey === '' || (e.xid !== 13 && e.xid !== 31)) continue;
    const list = repeatGroups.get(repeatKey(e));
    if (list === undefined) repeatGroups.set(repeatKey(e), [e]);
    else list.push(e);
  }
  const wholeGroup = new Map<string, number | undefined>();
  for (const [key, group] of repeatGroups) {
    const times = group.map((o) => o.lastSeenMs);
    wholeGroup.set(key, Math.max(...times) - Math.min(...times) <= repeatWindowMs ? distinctProcesses(group) : undefined);
  }
  const processesNear = (e: XidContextEvent): number =>
    wholeGroup.get(repeatKey(e)) ??
    distinctProcesses((repeatGroups.get(repeatKey(e)) ?? []).filter((o) => Math.abs(o.lastSeenMs - e.lastSeenMs) <= repeatWindowMs));

  return events.map((e) => {
    const c = e.classification;
    if (e.gpuKey === '') return c;
    const same = byGpu.get(e.gpuKey) ?? [];
    const current = latest154.get(e.gpuKey);
    switch (e.xid) {
      case 45: {
        if (c.immediateAction !== 'RESTART_FM') return c;
        const cause = same.find((o) => o.xid !== 45 && o.xid !== XID_154 && near(o, e, togetherMs));
        return cause === undefined
          ? c
          : rebucket(c, e.xid, 'IGNORE (sympathetic)', `logged with XID ${cause.xid} on the same GPU: act on that one`, view);
      }
      case 48:
      case 63:
      case 64: {
        const partners = e.xid === 48 ? [63, 64] : [48];
        const partner = same.find((o) => partners.includes(o.xid) && near(o, e, togetherMs));
        return partner === undefined
          ? c
          : rebucket(c, e.xid, 'DRAIN_AND_RESET', `XID ${e.xid} with XID ${partner.xid}: drain and reset the GPU`, view);
      }
      case 13:
      case 31: {
        const processes = processesNear(e);
        if (processes < repeatProcesses) return c;
        const where = e.xid === 13 && e.subKey !== undefined && e.subKey !== '' ? `on ${e.subKey}` : 'on this GPU';
        return rebucket(c, e.xid, 'HW_SUSPECTED', `XID ${e.xid} ${where} in ${processes} different processes: suspected hardware`, view);
      }
      case XID_154:
        return current === undefined || current === e
          ? c
          : rebucket(
              c,
              e.xid,
              'IGNORE',
              `superseded by a later XID 154 (${current.classification.decoded ?? current.classification.immediateAction})`,
              view,
            );
      default:
        break;
    }
    if (current === undefined) return c;
    const clears = current.classification.immediateAction === 'IGNORE' && current.lastSeenMs >= e.lastSeenMs;
    if (clears && view.lookup(e.xid).xid154 !== null)
      return rebucket(c, e.xid, 'IGNORE', 'a later XID 154 says no recovery action is needed any more', view);
    if ((c.immediateAction === 'XID_154' || c.immediateAction === 'XID_154_EVAL') && current.lastSeenMs >= e.firstSeenMs) {
      return rebucket(
        c,
        e.xid,
        current.classification.immediateAction,
        `follows XID 154: ${current.classification.decoded ?? current.classification.immediateAction}`,
        view,
      );
    }
    return c;
  });
}
