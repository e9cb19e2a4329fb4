/**
 * The agent's answer to `GET /v1/snapshot`: a versioned JSON document. Its JSON Schema is
 * agent/api/snapshot.schema.json; the operator validates every answer against it.
 */
import type { GpuSnapshot, NvmlAvailable, NvmlFieldError, NvmlUnavailable } from '../nvml/types.js';
import type { XidSeverity } from '../xid/catalog.js';

/** apiVersion of the snapshot document; bump on incompatible change. */
export const SNAPSHOT_API_VERSION = 'agent.gpudiag.io/v1';
/** kind of the snapshot document. */
export const SNAPSHOT_KIND = 'NodeSnapshot';

/** What a GPUDiagnostic can ask for (the CRD's spec.checks enum). */
export type DiagnosticCheck = 'inventory' | 'health' | 'xid' | 'ecc' | 'thermal' | 'power' | 'nvlink' | 'pcie' | 'processes';

/** Every DiagnosticCheck, in a stable order. */
export const DIAGNOSTIC_CHECKS: readonly DiagnosticCheck[] = ['inventory', 'health', 'xid', 'ecc', 'thermal', 'power', 'nvlink', 'pcie', 'processes'];

/** One deduplicated XID event (per GPU, XID and pid) as the agent reports it. */
export interface XidEventReport {
  xid: number;
  /** Catalog name, severity and action (the operator re-applies its policy on top). */
  name: string;
  severity: XidSeverity;
  action: string;
  /** Kernel-form PCI bus id (`0000:3b:00`) when known. */
  pciBusId?: string;
  /** GPU UUID when the agent could map the bus id. */
  gpuUuid?: string;
  /** MIG GPU instance from `GPU-I:` when logged. */
  gpuInstance?: number;
  pid: number | null;
  process: string | null;
  count: number;
  firstSeen: string;
  lastSeen: string;
  /** The kernel message (untrusted text; control characters removed, length bounded). */
  message: string;
  sources: ('kmsg' | 'nvml')[];
}

/** Where the agent's XID events come from and how healthy that source is. */
export interface XidSourceStatus {
  kmsg: { running: boolean; path: string; records: number; lost: number; error?: string };
  nvmlEvents: { running: boolean; error?: string };
}

/** The agent's own state, included so the operator can tell "no GPUs" from "agent broken". */
export interface AgentStatus {
  version: string;
  startedAt: string;
  /** `nvml` when NVML initialised; `no-gpu` in the explicit no-GPU mode. */
  mode: 'nvml' | 'no-gpu';
  modeReason?: string;
  xidSources: XidSourceStatus;
}

/** The document returned by `GET /v1/snapshot`. */
export interface NodeSnapshotDocument {
  apiVersion: typeof SNAPSHOT_API_VERSION;
  kind: typeof SNAPSHOT_KIND;
  node: string;
  collectedAt: string;
  /** The checks this snapshot answers. */
  checks: DiagnosticCheck[];
  nvml: NvmlAvailable | NvmlUnavailable;
  gpus: GpuSnapshot[];
  /** System-level NVML failures. */
  errors: NvmlFieldError[];
  xid: {
    /** Events last seen at or after this time are included. */
    since: string;
    events: XidEventReport[];
    /** Events left out because of the response bound. */
    truncated: number;
  };
  agent: AgentStatus;
}
