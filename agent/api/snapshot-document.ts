/**
 * The agent's answer to `GET /v1/snapshot`: a versioned JSON document. Its JSON Schema is
 * agent/api/snapshot.schema.json; the operator validates every answer against it.
 */
import type { GpuSnapshot, GpuUuid, KernelPciBusId, NvmlAvailable, NvmlFieldError, NvmlUnavailable } from '../nvml/types.js';
import type { XidSeverity } from '../xid/catalog.js';

/** apiVersion of the snapshot document; bump on incompatible change. */
export const SNAPSHOT_API_VERSION = 'agent.gpudiag.io/v1';
/** kind of the snapshot document. */
export const SNAPSHOT_KIND = 'NodeSnapshot';

/** What a GPUDiagnostic can ask for (the CRD's spec.checks enum). */
export type DiagnosticCheck = 'inventory' | 'health' | 'xid' | 'ecc' | 'thermal' | 'power' | 'nvlink' | 'pcie' | 'processes';

/** Every DiagnosticCheck, in a stable order. */
export const DIAGNOSTIC_CHECKS: readonly DiagnosticCheck[] = ['inventory', 'health', 'xid', 'ecc', 'thermal', 'power', 'nvlink', 'pcie', 'processes'];

/**
 * An RFC 3339 time as the agent writes it (`new Date().toISOString()`).
 * @maxLength 40
 * @pattern ^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$
 */
export type Timestamp = string;

/** One deduplicated XID event (per GPU, XID and pid) as the agent reports it. */
export interface XidEventReport {
  /**
   * A metric label in the operator: bounded so an agent cannot mint series.
   * @minimum 1
   * @maximum 999
   */
  xid: number;
  /**
   * Catalog name, severity and action (the operator re-applies its policy on top).
   * @maxLength 128
   */
  name: string;
  severity: XidSeverity;
  /** @maxLength 512 */
  action: string;
  /** Kernel-form PCI bus id (`0000:3b:00`) when known. */
  pciBusId?: KernelPciBusId;
  /** GPU UUID when the agent could map the bus id. */
  gpuUuid?: GpuUuid;
  /** MIG GPU instance from `GPU-I:` when logged. */
  gpuInstance?: number;
  pid: number | null;
  /** @maxLength 256 */
  process: string | null;
  count: number;
  firstSeen: Timestamp;
  lastSeen: Timestamp;
  /**
   * The kernel message (untrusted text; control characters removed, length bounded).
   * @maxLength 512
   */
  message: string;
  /** @maxItems 2 */
  sources: ('kmsg' | 'nvml')[];
}

/** Where the agent's XID events come from and how healthy that source is. */
export interface XidSourceStatus {
  kmsg: {
    running: boolean;
    /** @maxLength 4096 */
    path: string;
    records: number;
    lost: number;
    /** @maxLength 1024 */
    error?: string;
  };
  nvmlEvents: {
    running: boolean;
    /** @maxLength 1024 */
    error?: string;
  };
}

/** The agent's own state, included so the operator can tell "no GPUs" from "agent broken". */
export interface AgentStatus {
  /** @maxLength 64 */
  version: string;
  startedAt: Timestamp;
  /** `nvml` when NVML initialised; `no-gpu` in the explicit no-GPU mode. */
  mode: 'nvml' | 'no-gpu';
  /** @maxLength 1024 */
  modeReason?: string;
  xidSources: XidSourceStatus;
}

/** The document returned by `GET /v1/snapshot`. */
export interface NodeSnapshotDocument {
  apiVersion: typeof SNAPSHOT_API_VERSION;
  kind: typeof SNAPSHOT_KIND;
  /**
   * @maxLength 253
   * @pattern ^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$
   */
  node: string;
  collectedAt: Timestamp;
  /**
   * The checks this snapshot answers.
   * @maxItems 9
   */
  checks: DiagnosticCheck[];
  nvml: NvmlAvailable | NvmlUnavailable;
  /**
   * NVML numbers devices from 0; no node has more than 64.
   * @maxItems 64
   */
  gpus: GpuSnapshot[];
  /**
   * System-level NVML failures.
   * @maxItems 64
   */
  errors: NvmlFieldError[];
  xid: {
    /** Events last seen at or after this time are included. */
    since: Timestamp;
    /**
     * At most MAX_REPORTED_XID_EVENTS (xid-service.ts).
     * @maxItems 200
     */
    events: XidEventReport[];
    /** Events left out because of the response bound. */
    truncated: number;
  };
  agent: AgentStatus;
}
