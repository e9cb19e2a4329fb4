/** explain_pod_failure: a pod's failure facts and whether its GPUs are to blame (creates a GPUDiagnostic of its node). */
import type { V1Pod } from '@kubernetes/client-node';
import { z } from 'zod';
import { GPU_HARDWARE_VERDICTS, gpuHardwareVerdict, type ContainerFacts, type GpuHardwareVerdict } from '../pod-verdict.js';
import { containerStatuses, gpuLabel, podGpuReport, podGpusOutput, podGpusShape, podToolArguments, timeOf } from '../pods.js';
import { CREATES_DIAGNOSTIC, defineTool } from '../tool.js';
import { UNTRUSTED_NOTE, unfinishedLine } from '../views.js';

/** Pod status messages come from the kubelet or the scheduler, and are kept short. */
const MAX_MESSAGE = 1000;

const containerSchema = z.object({
  name: z.string(),
  init: z.boolean(),
  restartCount: z.number(),
  state: z.enum(['running', 'waiting', 'terminated', 'unknown']),
  waitingReason: z.string().optional(),
  lastTerminated: z
    .object({
      exitCode: z.number(),
      signal: z.number().optional(),
      reason: z.string().optional().describe('e.g. OOMKilled, Error, Completed'),
      finishedAt: z.string().optional(),
    })
    .optional()
    .describe('the current state if terminated, else the last termination (the container may have restarted since)'),
});

const output = z.object({
  ...podGpusShape,
  failure: z.object({
    phase: z.string(),
    reason: z.string().optional(),
    message: z.string().optional(),
    containers: z.array(containerSchema),
  }),
  gpuHardware: z.enum(GPU_HARDWARE_VERDICTS).describe('how likely GPU hardware caused the failure'),
  evidence: z.array(z.string()).describe('what the verdict rests on'),
});

/** Each container's state and last termination. The termination message is left out: the workload writes it. */
export function containerFacts(pod: V1Pod): ContainerFacts[] {
  return containerStatuses(pod).map(({ status, init }) => {
    const t = status.state?.terminated ?? status.lastState?.terminated;
    const finishedAt = timeOf(t?.finishedAt);
    const state =
      status.state?.running !== undefined
        ? 'running'
        : status.state?.waiting !== undefined
          ? 'waiting'
          : status.state?.terminated !== undefined
            ? 'terminated'
            : 'unknown';
    return {
      name: status.name,
      init,
      restartCount: status.restartCount,
      state,
      ...(status.state?.waiting?.reason !== undefined ? { waitingReason: status.state.waiting.reason } : {}),
      ...(t !== undefined
        ? {
            lastTerminated: {
              exitCode: t.exitCode,
              ...(t.signal !== undefined ? { signal: t.signal } : {}),
              ...(t.reason !== undefined ? { reason: t.reason } : {}),
              ...(finishedAt !== undefined ? { finishedAt: finishedAt.toISOString() } : {}),
            },
          }
        : {}),
    };
  });
}

const VERDICT_SENTENCE: Record<GpuHardwareVerdict, string> = {
  likely: 'GPU hardware is the likely cause',
  possible: 'GPU hardware may have contributed',
  unlikely: 'GPU hardware is an unlikely cause',
  unknown: 'Whether GPU hardware is involved cannot be told',
};

/** The explain_pod_failure tool. */
export const explainPodFailureTool = defineTool({
  name: 'explain_pod_failure',
  title: 'Explain a pod failure',
  description:
    "Why a pod failed or restarts, as far as its GPUs go: the pod's phase, reason and each container's last termination (exit " +
    "code, signal, OOMKilled, restarts), a fresh health and XID diagnostic of its node covering the pod's lifetime (created as " +
    'you), and a verdict gpuHardware (likely, possible, unlikely, unknown) with the evidence. Kernel message text is returned ' +
    'under untrusted.',
  inputSchema: podToolArguments,
  outputSchema: output,
  annotations: CREATES_DIAGNOSTIC,
  readOnly: false,
  async handler(args, ctx) {
    const r = await podGpuReport(ctx, args, 'explain_pod_failure');
    const status = r.podObject.status;
    const containers = containerFacts(r.podObject);
    const nodeProblem =
      r.node === undefined
        ? `no result yet (GPUDiagnostic ${r.diagnostic.namespace}/${r.diagnostic.name} is ${r.diagnostic.phase})`
        : r.node.message === undefined
          ? r.node.result
          : `${r.node.result} — ${r.node.message}`;
    const verdict = gpuHardwareVerdict({
      node: r.pod.node,
      nodeDiagnosed: r.nodeDiagnosed,
      nodeProblem,
      gpus: r.gpus,
      xidEvents: r.xidEvents,
      containers,
    });
    const failure = {
      phase: r.pod.phase,
      ...(status?.reason !== undefined ? { reason: status.reason } : {}),
      ...(status?.message !== undefined ? { message: status.message.slice(0, MAX_MESSAGE) } : {}),
      containers,
    };
    const { pod, diagnostic: ref } = r;
    const on = r.gpus.length === 0 ? '' : `, using ${r.gpus.map(gpuLabel).join(', ')}`;
    const text = [
      `Pod ${pod.namespace}/${pod.name} is ${pod.phase}${failure.reason === undefined ? '' : ` (${failure.reason})`} on node ` +
        `${pod.node}${on}.`,
      `${VERDICT_SENTENCE[verdict.gpuHardware]} (gpuHardware: ${verdict.gpuHardware}): ${verdict.evidence.join('; ')}.`,
      ...r.notes.map((n) => `Note: ${n}.`),
      `See GPUDiagnostic ${ref.namespace}/${ref.name}.`,
      ...(r.untrusted.kernelMessages.length > 0 ? [UNTRUSTED_NOTE] : []),
      unfinishedLine(ref).trim(),
    ]
      .filter((s) => s !== '')
      .join(' ');
    return { structured: { ...podGpusOutput(r), failure, ...verdict }, text };
  },
});
