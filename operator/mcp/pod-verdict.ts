/**
 * Whether GPU hardware is behind a pod's failure: a pure judgement over what the diagnostic says
 * about the pod's GPUs and the XIDs in its lifetime, with the evidence spelled out, so a person
 * can check it and the rules can be tested as a table.
 */
import type { PodGpuView, PodXidView } from './pods.js';
import { gpuLabel, xidGpu } from './pods.js';

/** How likely GPU hardware caused (or contributed to) the failure. */
export const GPU_HARDWARE_VERDICTS = ['likely', 'possible', 'unlikely', 'unknown'] as const;
export type GpuHardwareVerdict = (typeof GPU_HARDWARE_VERDICTS)[number];

/** One container's failure facts. */
export interface ContainerFacts {
  name: string;
  init: boolean;
  restartCount: number;
  state: 'running' | 'waiting' | 'terminated' | 'unknown';
  waitingReason?: string | undefined;
  /** The current state if terminated, else the last one. */
  lastTerminated?:
    { exitCode: number; signal?: number | undefined; reason?: string | undefined; finishedAt?: string | undefined } | undefined;
}

/** What the verdict is decided from. */
export interface VerdictFacts {
  node: string;
  /** The node answered the diagnostic (result Succeeded). */
  nodeDiagnosed: boolean;
  /** Why not, when it did not (`Unreachable — …`, `no result yet`). */
  nodeProblem?: string | undefined;
  /** The node's GPUs that list the pod. */
  gpus: readonly Pick<PodGpuView, 'index' | 'uuid' | 'pciBusId' | 'status' | 'findings'>[];
  /** XIDs in the pod's lifetime, on its GPUs or unattributed on its node. */
  xidEvents: readonly Pick<PodXidView, 'xid' | 'name' | 'severity' | 'gpu' | 'pciBusId' | 'attribution' | 'lastSeen' | 'count'>[];
  containers: readonly ContainerFacts[];
}

export interface Verdict {
  gpuHardware: GpuHardwareVerdict;
  evidence: string[];
}

/** What a container's last termination (or wait) says, or undefined when it says nothing bad. */
export function containerLine(c: ContainerFacts): string | undefined {
  const who = `${c.init ? 'init container' : 'container'} ${c.name}`;
  const restarts = c.restartCount > 0 ? ` (${c.restartCount} restart(s))` : '';
  const t = c.lastTerminated;
  if (t !== undefined && (t.exitCode !== 0 || (t.reason !== undefined && t.reason !== 'Completed'))) {
    const signal = t.signal === undefined ? '' : `, signal ${t.signal}`;
    const at = t.finishedAt === undefined ? '' : ` at ${t.finishedAt}`;
    const what =
      t.reason === 'OOMKilled'
        ? `was OOMKilled (out of memory; exit code ${t.exitCode}${signal})`
        : `exited with code ${t.exitCode}${signal}${t.reason === undefined ? '' : ` (${t.reason})`}`;
    return `${who} ${what}${at}${restarts}`;
  }
  if (
    c.state === 'waiting' &&
    c.waitingReason !== undefined &&
    c.waitingReason !== 'ContainerCreating' &&
    c.waitingReason !== 'PodInitializing'
  )
    return `${who} is waiting: ${c.waitingReason}${restarts}`;
  return undefined;
}

function gpuLine(g: VerdictFacts['gpus'][number]): string {
  const worst = g.findings.find((f) => f.severity === (g.status === 'critical' ? 'critical' : 'warning')) ?? g.findings[0];
  const codes = [...new Set(g.findings.map((f) => f.code))].join(', ');
  return `${gpuLabel(g)} is ${g.status}${codes === '' ? '' : `: ${codes}`}${worst === undefined ? '' : ` — ${worst.message}`}`;
}

function xidLine(e: VerdictFacts['xidEvents'][number], gpus: VerdictFacts['gpus'], node: string): string {
  const index = xidGpu(e, gpus);
  const gpu = gpus.find((g) => g.index === index);
  const where =
    e.attribution === 'gpu' && gpu !== undefined ? `on ${gpuLabel(gpu)}` : `on node ${node}, naming no GPU (it may have been the pod's)`;
  return (
    `XID ${e.xid}${e.name === undefined ? '' : ` ${e.name}`} (${e.severity ?? 'warning'}, ×${e.count}) ${where}, last seen ` +
    `${e.lastSeen ?? 'at an unknown time'} during the pod's lifetime`
  );
}

/** Decides whether GPU hardware is behind the pod's failure, and why. */
export function gpuHardwareVerdict(facts: VerdictFacts): Verdict {
  const others = facts.containers.map(containerLine).filter((l): l is string => l !== undefined);
  if (!facts.nodeDiagnosed)
    return {
      gpuHardware: 'unknown',
      evidence: [`node ${facts.node} could not be diagnosed${facts.nodeProblem === undefined ? '' : `: ${facts.nodeProblem}`}`, ...others],
    };
  if (facts.gpus.length === 0)
    return {
      gpuHardware: 'unknown',
      evidence: [`no GPU of node ${facts.node} lists this pod, so which GPUs it used is not known`, ...others],
    };

  // XIDs with no severity are treated as warnings, as everywhere in the facade.
  const severityOf = (e: VerdictFacts['xidEvents'][number]): string => e.severity ?? 'warning';
  const critical = [
    ...facts.gpus.filter((g) => g.status === 'critical').map(gpuLine),
    ...facts.xidEvents.filter((e) => severityOf(e) === 'critical').map((e) => xidLine(e, facts.gpus, facts.node)),
  ];
  const warning = [
    ...facts.gpus.filter((g) => g.status === 'degraded').map(gpuLine),
    ...facts.xidEvents.filter((e) => severityOf(e) === 'warning').map((e) => xidLine(e, facts.gpus, facts.node)),
  ];
  if (critical.length > 0) return { gpuHardware: 'likely', evidence: [...critical, ...warning, ...others] };
  if (warning.length > 0) return { gpuHardware: 'possible', evidence: [...warning, ...others] };
  const unknown = facts.gpus.filter((g) => g.status === 'unknown');
  if (unknown.length > 0)
    return { gpuHardware: 'unknown', evidence: [...unknown.map((g) => `the health of ${gpuLabel(g)} is unknown`), ...others] };

  const healthy =
    `${facts.gpus.map(gpuLabel).join(', ')} ${facts.gpus.length === 1 ? 'is' : 'are'} healthy, with no warning or critical XID on ` +
    `${facts.gpus.length === 1 ? 'it' : 'them'} or on the node in the pod's lifetime`;
  return { gpuHardware: 'unlikely', evidence: [healthy, ...others.map((l) => `likelier cause: ${l}`)] };
}
