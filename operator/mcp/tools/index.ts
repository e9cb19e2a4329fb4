/** Every tool of the MCP facade, registered from this one array (one file per tool). */
import type { McpTool } from '../tool.js';
import { analyzeXidErrorsTool } from './analyze-xid-errors.js';
import { describeGpuNodeTool } from './describe-gpu-node.js';
import { explainPodFailureTool } from './explain-pod-failure.js';
import { getDiagnosticTool } from './get-diagnostic.js';
import { getHealthPolicyTool } from './get-health-policy.js';
import { gpuHealthTool } from './gpu-health.js';
import { gpuInventoryTool } from './gpu-inventory.js';
import { listDiagnosticsTool } from './list-diagnostics.js';
import { listGpuNodesTool } from './list-gpu-nodes.js';
import { listHealthPoliciesTool } from './list-health-policies.js';
import { podGpusTool } from './pod-gpus.js';
import { runDiagnosticTool } from './run-diagnostic.js';

/** The tools, in the order clients list them. */
export const tools: readonly McpTool[] = [
  listGpuNodesTool,
  gpuInventoryTool,
  gpuHealthTool,
  analyzeXidErrorsTool,
  describeGpuNodeTool,
  podGpusTool,
  explainPodFailureTool,
  runDiagnosticTool,
  getDiagnosticTool,
  listDiagnosticsTool,
  listHealthPoliciesTool,
  getHealthPolicyTool,
];
