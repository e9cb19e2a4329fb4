/**
 * Serialises snapshot documents. The GPU list is most of a body (about 30 KB for 8 GPUs), and
 * every answer from one collection (coalesced or cached) shares the same array, so its JSON is
 * made once per collection instead of once per request.
 */
import type { NodeSnapshotDocument } from './api/snapshot-document.js';

const gpusJson = new WeakMap<NodeSnapshotDocument['gpus'], string>();

/** The document as JSON text (the GPU list last). Snapshots are never changed once collected. */
export function snapshotDocumentJson(doc: NodeSnapshotDocument): string {
  const { gpus, ...rest } = doc;
  let gpuText = gpusJson.get(gpus);
  if (gpuText === undefined) {
    gpuText = JSON.stringify(gpus);
    gpusJson.set(gpus, gpuText);
  }
  return `${JSON.stringify(rest).slice(0, -1)},"gpus":${gpuText}}`;
}
