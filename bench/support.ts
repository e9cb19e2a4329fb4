/** Helpers shared by the benchmark scripts (they print figures; nothing here asserts). */
import type { KubeConfig } from '@kubernetes/client-node';
import { kubeGetText } from '../lib/kube/raw-request.js';

export { freePort } from '../dev/control-plane/control-plane.js';

/** Rounds to `digits` decimals. */
export function round(n: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}

/** Waits `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** A timestamped progress line on stderr (stdout carries the figures). */
export function progress(message: string): void {
  process.stderr.write(`[${new Date().toISOString().slice(11, 19)}] ${message}\n`);
}

/** Nearest-rank percentile of an ascending array (NaN when empty). */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank] ?? NaN;
}

/** The API server's apiserver_request_total by `VERB group/resource[/subresource]` (resource requests only). */
export async function apiRequestCounts(kc: KubeConfig): Promise<Map<string, number>> {
  const text = await kubeGetText(kc, '/metrics');
  const counts = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line.startsWith('apiserver_request_total{')) continue;
    const labels = Object.fromEntries([...line.matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1] ?? '', m[2] ?? '']));
    if ((labels['resource'] ?? '') === '') continue;
    const group = labels['group'] === '' ? 'core' : labels['group'];
    const key = `${labels['verb'] ?? '?'} ${group}/${labels['resource']}${labels['subresource'] ? `/${labels['subresource']}` : ''}`;
    counts.set(key, (counts.get(key) ?? 0) + Number(line.slice(line.lastIndexOf(' ') + 1)));
  }
  return counts;
}
