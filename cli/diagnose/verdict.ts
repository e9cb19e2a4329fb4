/**
 * What `gpudiag diagnose` exits with, so scripts can gate on it: healthy, unhealthy, or could
 * not diagnose. Pure: the diagnostic's status (and whether it finished) in, a code out.
 */
import type { GPUDiagnosticStatus } from '../../api/index.js';

/** The exit codes, as `gpudiag diagnose --help` and docs/operations.md document them. */
export const EXIT = Object.freeze({
  /** Every targeted node answered and every GPU is healthy. */
  healthy: 0,
  /** At least one GPU or node is degraded or critical (whatever else happened). */
  unhealthy: 1,
  /** No verdict: the wait expired, the diagnostic failed, nodes did not answer, or the API refused. */
  undiagnosed: 2,
  /** A bad flag or argument (sysexits' EX_USAGE). */
  usage: 64,
  /** Interrupted (Ctrl-C): 128 + SIGINT. The diagnostic keeps running. */
  interrupted: 130,
});

/** The verdict a status gives, and a line that says why. */
export interface Verdict {
  readonly code: number;
  readonly reason: string;
}

/**
 * The verdict of a diagnostic. A degraded or critical finding wins over nodes that could not be
 * diagnosed: what was found is certain, while a node that did not answer leaves the rest unknown.
 */
export function verdictOf(status: GPUDiagnosticStatus | undefined, finished: boolean): Verdict {
  if (!finished) return { code: EXIT.undiagnosed, reason: `the diagnostic did not finish (phase ${status?.phase ?? 'Pending'})` };
  if (status?.phase === 'Failed') {
    const stalled = status.conditions?.find((c) => c.type === 'Stalled');
    return {
      code: EXIT.undiagnosed,
      reason: `the diagnostic failed${stalled === undefined ? '' : `: ${stalled.reason}: ${stalled.message}`}`,
    };
  }
  const summary = status?.summary ?? {};
  const byStatus = summary.nodesByStatus ?? {};
  const gpus = summary.gpus ?? {};
  const critical = Math.max(byStatus.critical ?? 0, gpus.critical ?? 0);
  const degraded = Math.max(byStatus.degraded ?? 0, gpus.degraded ?? 0);
  if (critical > 0 || degraded > 0) {
    return { code: EXIT.unhealthy, reason: `unhealthy: ${byStatus.critical ?? 0} node(s) critical, ${byStatus.degraded ?? 0} degraded` };
  }
  const targeted = summary.nodesTargeted ?? 0;
  if (targeted === 0) return { code: EXIT.undiagnosed, reason: 'no node matched' };
  const notDiagnosed = Math.max(summary.nodesFailed ?? 0, byStatus.unknown ?? 0, targeted - (summary.nodesSucceeded ?? 0));
  if (notDiagnosed > 0 || (gpus.unknown ?? 0) > 0) {
    return { code: EXIT.undiagnosed, reason: `${notDiagnosed} of ${targeted} node(s) could not be diagnosed; the others are healthy` };
  }
  return { code: EXIT.healthy, reason: `healthy: ${targeted} node(s), ${gpus.total ?? 0} GPU(s)` };
}
