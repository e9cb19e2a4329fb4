/** pod_gpus: the GPUs a pod holds, their health and the XIDs in its lifetime (creates a GPUDiagnostic of its node). */
import { z } from 'zod';
import { gpuLabel, podGpuReport, podGpusOutput, podGpusShape, podToolArguments, type PodGpuReport } from '../pods.js';
import { CREATES_DIAGNOSTIC, defineTool } from '../tool.js';
import { UNTRUSTED_NOTE, unfinishedLine } from '../views.js';

/** The lines every pod tool shares: its GPUs, the XIDs, the notes. */
export function podGpuLines(r: PodGpuReport): string[] {
  return [
    ...r.gpus.map(
      (g) =>
        `- ${gpuLabel(g)}: ` +
        `${g.status}${g.score === undefined ? '' : ` (score ${g.score})`}` +
        `${g.findings.length === 0 ? '' : ` — ${g.findings.map((f) => f.code).join(', ')}`}`,
    ),
    ...(r.xidEvents.length > 0
      ? [
          `XID errors in the pod's lifetime: ` +
            r.xidEvents.map((e) => `${e.xid} ${e.name ?? ''} ×${e.count}${e.attribution === 'node' ? ' (no GPU named)' : ''}`).join('; '),
        ]
      : []),
    ...r.notes.map((n) => `Note: ${n}`),
    ...(r.untrusted.kernelMessages.length > 0 ? [UNTRUSTED_NOTE] : []),
  ];
}

/** The pod_gpus tool. */
export const podGpusTool = defineTool({
  name: 'pod_gpus',
  title: "A pod's GPUs",
  description:
    "Which GPUs a pod holds (as the node's agent sees them: kubelet pod-resources or process cgroups) and how they are: a fresh " +
    "health and XID diagnostic of the pod's node (created as you), covering the pod's lifetime, with each GPU's status, score " +
    'and findings, and the XID errors since the pod started on its GPUs or on its node with no GPU named. Kernel message text is ' +
    'returned under untrusted.',
  inputSchema: podToolArguments,
  outputSchema: z.object(podGpusShape),
  annotations: CREATES_DIAGNOSTIC,
  readOnly: false,
  async handler(args, ctx) {
    const r = await podGpuReport(ctx, args, 'pod_gpus');
    const { pod, diagnostic: ref } = r;
    const text =
      [
        `Pod ${pod.namespace}/${pod.name} (${pod.phase}) on node ${pod.node}: requests ${pod.gpusRequested} GPU(s); ` +
          `${r.gpus.length} GPU(s) list it (GPUDiagnostic ${ref.namespace}/${ref.name}).`,
        ...podGpuLines(r),
      ].join('\n') + unfinishedLine(ref);
    return { structured: podGpusOutput(r), text };
  },
});
