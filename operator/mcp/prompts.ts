/**
 * Prompts: ready-made requests a person picks in their MCP client. Each validates its arguments
 * and returns the text of one user message that steers the model to the right tools.
 */
import { z } from 'zod';
import { lookupXid } from '../../agent/xid/catalog.js';
import { namespaceName, nodeName } from './arguments.js';
import type { FacadeSettings } from './tool.js';
import { UNTRUSTED_NOTE } from './views.js';

/** A prompt definition. */
export interface McpPrompt {
  name: string;
  title: string;
  description: string;
  /** Prompt arguments are strings (MCP); each schema validates one. */
  argsSchema: Record<string, z.ZodString | z.ZodOptional<z.ZodString>>;
  /** The user message text, from arguments validated against argsSchema. */
  build(args: Record<string, unknown>, settings: FacadeSettings): string;
}

const triageArgs = z.object({ node: nodeName('node') });
const xidArgs = z.object({ xid: z.string().regex(/^\d{1,3}$/, { error: 'xid must be an XID code (a number from 1 to 999)' }) });
const fleetArgs = z.object({ namespace: namespaceName().optional() });

/** GPU triage for one node. */
export const gpuTriagePrompt: McpPrompt = {
  name: 'gpu_triage',
  title: 'GPU triage for a node',
  description: 'Diagnose one node: its GPUs, findings, recent XID errors and the GPU workloads on it, with a recommendation.',
  argsSchema: triageArgs.shape,
  build(args) {
    const { node } = triageArgs.parse(args);
    return [
      `Triage the GPUs of Kubernetes node ${node}.`,
      `1. Call describe_gpu_node with node "${node}" (it runs a fresh GPUDiagnostic and lists the pods using nvidia.com/gpu there).`,
      `2. If XID errors appear, call analyze_xid_errors with nodes ["${node}"] and since "24h" for the full picture.`,
      '3. Summarise: overall status and score, each unhealthy GPU (index, UUID, findings), the XIDs with their recommended ' +
        'actions, and which workloads are affected (the pods listed on each unhealthy GPU).',
      '   If the user asks why one pod failed, call explain_pod_failure with its namespace and name: it says whether GPU ' +
        'hardware is the likely cause, with the evidence.',
      '4. Recommend one next step (monitor, drain and reset the GPU, reboot, or RMA) and say why. Name the GPUDiagnostic you ' +
        'used so it can be audited.',
      UNTRUSTED_NOTE,
    ].join('\n');
  },
};

/** Explain one XID code from the catalog. */
export const explainXidPrompt: McpPrompt = {
  name: 'explain_xid',
  title: 'Explain an XID code',
  description: 'Explain what an NVIDIA XID error code means and what to do about it, using the gpudiag catalog.',
  argsSchema: xidArgs.shape,
  build(args) {
    const { xid } = xidArgs.parse(args);
    const entry = lookupXid(Number(xid));
    return [
      `Explain NVIDIA XID ${entry.xid} to an SRE who runs GPU nodes on Kubernetes.`,
      `Catalog entry (gpudiag://xid-catalog, NVIDIA's XID catalog): mnemonic ${entry.mnemonic}; category ${entry.category}; ` +
        `products ${entry.products.join(', ') || 'none listed'};`,
      `NVIDIA's immediate action ${entry.immediateAction ?? `none (gpudiag assumes ${entry.bucket})`}; investigatory action ` +
        `${entry.investigatoryAction ?? 'none'}; default severity ${entry.severity};`,
      `${entry.xid154 === null ? '' : `an XID 154 follows it from ${entry.xid154} and names the recovery action; `}description: ` +
        `${entry.description}; recommended action: ${entry.action}.`,
      'Some codes depend on the message (74, 144-150, 154) or on neighbouring XIDs (13, 31, 45, 48): say so, and read the ' +
        'decoded field of the events.',
      'Cover: what usually causes it (application bug, driver, hardware), whether the GPU needs a reset or replacement, how to ' +
        'tell a one-off from a trend,',
      'and how a GPUHealthPolicy can override its severity (spec.xid.overrides) or escalate repeats (spec.xid.escalations).',
      'If the user names a node, call analyze_xid_errors for it to see whether this XID occurred recently.',
    ].join('\n');
  },
};

/** A fleet-wide health report. */
export const fleetHealthReportPrompt: McpPrompt = {
  name: 'fleet_health_report',
  title: 'Fleet health report',
  description: 'Report the health of every GPU node: totals, the worst nodes, XID trends and what the health policies say.',
  argsSchema: fleetArgs.shape,
  build(args, settings) {
    const { namespace } = fleetArgs.parse(args);
    const ns = namespace ?? settings.namespace;
    return [
      'Write a GPU fleet health report.',
      `1. Call gpu_health with namespace "${ns}" (no node selection: every node with an agent). Note the GPUDiagnostic's name.`,
      `2. Call analyze_xid_errors with namespace "${ns}" and since "24h" and minimumSeverity "warning".`,
      '3. Call list_health_policies to see what the periodic checks and their actions report.',
      '4. Report: node and GPU totals by status, the lowest score, the ten worst nodes with their main finding, XID codes by count,',
      '   and recommended actions, worst first. Keep it short; link the diagnostic (gpudiag://diagnostics/<namespace>/<name>) for details.',
      UNTRUSTED_NOTE,
    ].join('\n');
  },
};

/** Every prompt the facade serves. */
export const prompts: readonly McpPrompt[] = [gpuTriagePrompt, explainXidPrompt, fleetHealthReportPrompt];
