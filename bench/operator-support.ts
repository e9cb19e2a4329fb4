/**
 * What the operator benchmarks share: samples of a process from /proc, the API server's request
 * counts told apart by who made them, counters read from Prometheus text, and waiting for an
 * operator process to lead.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { CoreV1Api, Watch, type KubeConfig } from '@kubernetes/client-node';
import { applyObjects, installCrds, readManifests } from '../dev/apply.js';
import { repoRoot } from '../dev/control-plane/binaries.js';
import { ControlPlane } from '../dev/control-plane/control-plane.js';
import { GPU_DIAGNOSTICS, type GPUDiagnostic } from '../api/index.js';
import { progress, sleep } from './support.js';

/** Where the operator benchmarks put agents and diagnostics, and the audience of the operator's agent token. */
export const AGENT_NAMESPACE = 'gpudiag-system';
export const DIAGNOSTIC_NAMESPACE = 'gpudiag-bench';
export const AGENT_AUDIENCE = 'gpudiag-agent';
/** Most nodes of the benchmark fleets run this healthy 8×H100 scenario. */
export const HEALTHY_SCENARIO = 'h100-sxm-8x-healthy';
/** The faulty nodes cycle through these (all 8 GPUs, all critical or degraded). */
export const FAULTY_SCENARIOS = ['gpu-lost-xid79', 'a100-dbe-remap-pending', 'nvlink-down', 'thermal-hw-slowdown'];

/** Linux USER_HZ, the unit of utime/stime in /proc/<pid>/stat. */
const CLOCK_TICKS_PER_S = 100;

export interface ProcessSample {
  rssKiB: number;
  hwmKiB: number;
  cpuS: number;
}

export interface ApiDelta {
  /** `VERB group/resource[/subresource]` → requests during the diagnostic. */
  byVerbResource: Record<string, number>;
  /** Requests the operator made for this diagnostic: the GPUDiagnostic, policies, Events. */
  operator: number;
  /** TokenReviews the agents made to verify the operator's token. */
  agentTokenReviews: number;
  /** Lease renewals (the operator's every 2 s, the API server's own every 10 s): background. */
  leases: number;
  /** Everything else (the API server's own loops, informer relists). */
  other: number;
}

export async function sampleProcess(pid: number): Promise<ProcessSample> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kib = (field: string): number => Number(new RegExp(`^${field}:\\s+(\\d+)\\s+kB`, 'm').exec(status)?.[1] ?? NaN);
  // utime and stime are fields 14 and 15; the command name (field 2) may hold spaces, so split after ')'.
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(fields[11]) + Number(fields[12]);
  return { rssKiB: kib('VmRSS'), hwmKiB: kib('VmHWM'), cpuS: ticks / CLOCK_TICKS_PER_S };
}

/** The requests between two scrapes, without the benchmark's own create of the diagnostic. */
export function apiDelta(before: Map<string, number>, after: Map<string, number>): ApiDelta {
  const byVerbResource: Record<string, number> = {};
  for (const [key, value] of after) {
    let delta = value - (before.get(key) ?? 0);
    if (key === 'POST gpudiag.io/gpudiagnostics') delta -= 1;
    if (delta > 0) byVerbResource[key] = delta;
  }
  const delta: ApiDelta = { byVerbResource, operator: 0, agentTokenReviews: 0, leases: 0, other: 0 };
  for (const [key, n] of Object.entries(byVerbResource)) {
    const resource = key.slice(key.indexOf(' ') + 1);
    if (/^gpudiag\.io\/(gpudiagnostics|gpuhealthpolicies)|^events\.k8s\.io\/events/.test(resource)) delta.operator += n;
    else if (resource === 'authentication.k8s.io/tokenreviews') delta.agentTokenReviews += n;
    else if (resource === 'coordination.k8s.io/leases') delta.leases += n;
    else delta.other += n;
  }
  return delta;
}

export async function metricsText(url: string): Promise<string> {
  const res = await fetch(url, { signal: AbortSignal.timeout(10_000) });
  return res.text();
}

/** Sums of a counter by its first label, from Prometheus text. */
export function counterByLabel(text: string, name: string, label: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const m of text.matchAll(new RegExp(`^${name}\\{([^}]*)\\} (\\S+)$`, 'gm'))) {
    const value = new RegExp(`${label}="([^"]*)"`).exec(m[1] ?? '')?.[1] ?? '?';
    out[value] = (out[value] ?? 0) + Number(m[2]);
  }
  return out;
}

export function subtract(after: Record<string, number>, before: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(after)) if (v - (before[k] ?? 0) > 0) out[k] = v - (before[k] ?? 0);
  return out;
}

/** Waits until the operator's probe server says ready and it holds the Lease. */
export async function waitLeading(probeUrl: string, isAlive: () => boolean, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    if (!isAlive()) throw new Error('the operator process exited');
    try {
      const ready = await fetch(`${probeUrl}/readyz`, { signal: AbortSignal.timeout(2_000) });
      await ready.arrayBuffer();
      if (ready.status === 200 && /^gpudiag_leader 1$/m.test(await metricsText(`${probeUrl}/metrics`))) return;
    } catch (err) {
      // Not listening yet; the last failure is reported if it never comes up.
      lastError = err;
    }
    await sleep(100);
  }
  throw new Error(`the operator did not become ready and leader within ${timeoutMs / 1000} s (last: ${String(lastError)})`);
}

/** The value of an unlabelled gauge in Prometheus text (undefined when absent). */
export function gaugeValue(text: string, name: string): number | undefined {
  const m = new RegExp(`^${name} (\\S+)$`, 'm').exec(text);
  return m?.[1] === undefined ? undefined : Number(m[1]);
}

/** A watch on one GPUDiagnostic that resolves on Ready=True or Failed, counting the status writes it saw (each also goes to onModified). */
export async function watchUntilReady(
  admin: KubeConfig,
  namespace: string,
  name: string,
  onModified: (obj: GPUDiagnostic) => void = () => undefined,
): Promise<{ finished: Promise<GPUDiagnostic>; writes: () => number; abort: () => void }> {
  let writes = 0;
  let settle: (obj: GPUDiagnostic) => void = () => undefined;
  let fail: (err: Error) => void = () => undefined;
  const finished = new Promise<GPUDiagnostic>((resolve, reject) => {
    settle = resolve;
    fail = reject;
  });
  // A watch that ends after the race was decided (our own abort) must not surface as unhandled.
  finished.catch((err: unknown) => progress(`diagnostic watch ended: ${err instanceof Error ? err.message : String(err)}`));
  const group = `/apis/${GPU_DIAGNOSTICS.group}/${GPU_DIAGNOSTICS.version}`;
  const watchPath = `${group}/namespaces/${namespace}/${GPU_DIAGNOSTICS.plural}`;
  const controller = await new Watch(admin).watch(
    watchPath,
    { fieldSelector: `metadata.name=${name}` },
    (type: string, obj: GPUDiagnostic) => {
      if (type !== 'MODIFIED') return;
      writes += 1;
      onModified(obj);
      const ready = obj.status?.conditions?.find((c) => c.type === 'Ready');
      if (ready?.status === 'True' || obj.status?.phase === 'Failed') settle(obj);
    },
    (err: unknown) => {
      if (err !== null && err !== undefined) fail(new Error('watch of the diagnostic ended', { cause: err }));
    },
  );
  return { finished, writes: () => writes, abort: () => controller.abort() };
}

/** A fresh API server for one benchmark size: the CRDs, both namespaces, config/rbac/. */
export interface BenchCluster {
  controlPlane: ControlPlane;
  admin: KubeConfig;
  core: CoreV1Api;
  caPem: string;
  /** A token of ServiceAccount `name` in the agent namespace for `audiences` (valid a day). */
  serviceAccountToken(name: string, audiences: string[]): Promise<string>;
}

/** Starts the API server both operator benchmarks diagnose in; its stop goes onto `stops`. */
export async function startBenchCluster(stops: (() => Promise<void>)[]): Promise<BenchCluster> {
  const controlPlane = await ControlPlane.start({ onProgress: (m) => progress(`control plane: ${m}`) });
  stops.push(() => controlPlane.stop());
  const admin = controlPlane.adminKubeConfig();
  await installCrds(admin, path.join(repoRoot, 'crds'));
  const core = admin.makeApiClient(CoreV1Api);
  for (const name of [AGENT_NAMESPACE, DIAGNOSTIC_NAMESPACE]) await core.createNamespace({ body: { metadata: { name } } });
  await applyObjects(admin, await readManifests([path.join(repoRoot, 'config', 'rbac')]));
  const caPem = await readFile(controlPlane.endpoint.certs.caCert, 'utf8');
  const serviceAccountToken = async (name: string, audiences: string[]): Promise<string> => {
    const res = await core.createNamespacedServiceAccountToken({
      namespace: AGENT_NAMESPACE,
      name,
      body: { spec: { audiences, expirationSeconds: 24 * 3600 } },
    });
    return res.status?.token ?? '';
  };
  return { controlPlane, admin, core, caPem, serviceAccountToken };
}
