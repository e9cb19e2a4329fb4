/**
 * Serialises snapshot documents. The GPU list is most of a body (about 28 KB for 8 GPUs), and
 * every answer from one collection (coalesced or cached) shares the same array, so its JSON is
 * made once per collection instead of once per request — and kept as bytes, so an answer writes
 * the same buffer instead of allocating a 30 KB string (thousands a second under a fan-out, which
 * is what grew the agent's heap). The XID list is shared the same way while no event changes.
 */
import type { NodeSnapshotDocument } from './api/snapshot-document.js';
import { gpuListText } from './nvml/gpu-list-json.js';

const gpusTail = new WeakMap<NodeSnapshotDocument['gpus'], Buffer>();
const eventsBytes = new WeakMap<NodeSnapshotDocument['xid']['events'], Buffer>();

/**
 * A document's JSON in three parts: the per-answer head, the XID list shared while no event
 * changes, and the GPU list shared by a collection's answers.
 */
export interface SnapshotDocumentParts {
  /** Everything but the two lists, up to `"events":` inside `xid`. */
  readonly head: string;
  /** `[…]}`: the XID events and the end of `xid`, as UTF-8. */
  readonly events: Buffer;
  /** `,"gpus":[…]}` as UTF-8. */
  readonly tail: Buffer;
}

/** The document as {@link SnapshotDocumentParts}: `head + events + tail` is its JSON text (`xid.events` last in `xid`, `gpus` last). */
export function snapshotDocumentParts(doc: NodeSnapshotDocument): SnapshotDocumentParts {
  const { gpus, xid, ...front } = doc;
  let tail = gpusTail.get(gpus);
  if (tail === undefined) {
    tail = Buffer.from(`,"gpus":${gpuListText(gpus) ?? JSON.stringify(gpus)}}`);
    gpusTail.set(gpus, tail);
  }
  const { events: list, ...xidRest } = xid;
  let events = eventsBytes.get(list);
  if (events === undefined) {
    events = Buffer.from(`${JSON.stringify(list)}}`);
    eventsBytes.set(list, events);
  }
  const head = `${JSON.stringify(front).slice(0, -1)},"xid":${JSON.stringify(xidRest).slice(0, -1)},"events":`;
  return { head, events, tail };
}

/** The document as JSON text. Snapshots are never changed once collected. */
export function snapshotDocumentJson(doc: NodeSnapshotDocument): string {
  const { head, events, tail } = snapshotDocumentParts(doc);
  return head + events.toString('utf8') + tail.toString('utf8');
}
