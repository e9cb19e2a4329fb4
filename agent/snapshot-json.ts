/**
 * Serialises snapshot documents. The GPU list is most of a body (about 30 KB for 8 GPUs), and
 * every answer from one collection (coalesced or cached) shares the same array, so its JSON is
 * made once per collection instead of once per request — and kept as bytes, so an answer writes
 * the same buffer instead of allocating a 30 KB string (thousands a second under a fan-out, which
 * is what grew the agent's heap).
 */
import type { NodeSnapshotDocument } from './api/snapshot-document.js';
import { gpuListText } from './nvml/gpu-list-json.js';

const gpusJson = new WeakMap<NodeSnapshotDocument['gpus'], string>();
const gpusTail = new WeakMap<NodeSnapshotDocument['gpus'], Buffer>();

/** A document's JSON in two parts: the per-answer head, and the GPU list shared by a collection's answers. */
export interface SnapshotDocumentParts {
  /** Everything but the GPU list, without its closing brace. */
  readonly head: string;
  /** `,"gpus":[…]}` as UTF-8. */
  readonly tail: Buffer;
}

/** The document as {@link SnapshotDocumentParts}: `head + tail` is its JSON text. */
export function snapshotDocumentParts(doc: NodeSnapshotDocument): SnapshotDocumentParts {
  const { gpus, ...rest } = doc;
  let tail = gpusTail.get(gpus);
  if (tail === undefined) {
    tail = Buffer.from(`,"gpus":${gpuListText(gpus) ?? JSON.stringify(gpus)}}`);
    gpusTail.set(gpus, tail);
  }
  return { head: JSON.stringify(rest).slice(0, -1), tail };
}

/** The document as JSON text (the GPU list last). Snapshots are never changed once collected. */
export function snapshotDocumentJson(doc: NodeSnapshotDocument): string {
  const { gpus, ...rest } = doc;
  let gpuText = gpusJson.get(gpus);
  if (gpuText === undefined) {
    gpuText = gpuListText(gpus) ?? JSON.stringify(gpus);
    gpusJson.set(gpus, gpuText);
  }
  return `${JSON.stringify(rest).slice(0, -1)},"gpus":${gpuText}}`;
}
