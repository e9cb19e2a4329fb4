/**
 * The agent's answer to `GET /v1/snapshot`: a versioned JSON document. Its JSON Schema is
 * agent/api/snapshot.schema.json; the operator validates every answer against it.
 */
import type {
  GpuSnapshot,
  GpuUuid,
  KernelPciBusId,
  NvmlAvailable,
  NvmlFieldError,
  NvmlMemoryEventKind,
  NvmlUnavailable,
} from '../nvml/types.js';
import type { XidPersistence, XidSeverity } from '../xid/actions.js';

/** apiVersion of the snapshot document; bump on incompatible change. */
export const SNAPSHOT_API_VERSION = 'agent.gpudiag.io/v1';
/** kind of the snapshot document. */
export const SNAPSHOT_KIND = 'NodeSnapshot';

/** What a GPUDiagnostic can ask for (the CRD's spec.checks enum). */
export type DiagnosticCheck = 'inventory' | 'health' | 'xid' | 'ecc' | 'thermal' | 'power' | 'nvlink' | 'pcie' | 'processes';

/** Every DiagnosticCheck, in a stable order. */
export const DIAGNOSTIC_CHECKS: readonly DiagnosticCheck[] = [
  'inventory',
  'health',
  'xid',
  'ecc',
  'thermal',
  'power',
  'nvlink',
  'pcie',
  'processes',
];

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
  /**
   * NVIDIA's action bucket for this event after decoding (RESET_GPU, RESTART_BM, IGNORE...).
   * Absent from agents older than the catalog-bucket release.
   * @maxLength 64
   */
  immediateAction?: string;
  /**
   * NVIDIA's investigatory action (what finds the root cause).
   * @maxLength 128
   */
  investigatoryAction?: string;
  /** How long the fault lasts: until a reboot, until the GPU is reset, or only inside the look-back. */
  persistsUntil?: XidPersistence;
  /**
   * How the message was decoded (NVLink5 table row, XID 74 register bits, XID 154 transition).
   * @maxLength 256
   */
  decoded?: string;
  /** Kernel-form PCI bus id (`0000:3b:00`) when known; absent for node-level events (address redacted). */
  pciBusId?: KernelPciBusId;
  /** GPU UUID when the agent could map the bus id. */
  gpuUuid?: GpuUuid;
  /** MIG GPU instance from `GPU-I:` when logged. */
  gpuInstance?: number;
  /** MIG compute instance from `GPU-CI:` when logged. */
  computeInstance?: number;
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
  /**
   * The message of the worst occurrence, when it differs from the last one (severity never drops).
   * @maxLength 512
   */
  worstMessage?: string;
  /** @maxItems 2 */
  sources: ('kmsg' | 'nvml')[];
}

/** One deduplicated NVSwitch error (`SXid`), per switch, code and link. */
export interface SwitchEventReport {
  /**
   * @minimum 1
   * @maximum 999999
   */
  sxid: number;
  /** The switch's kernel-form PCI address, when readable. */
  switchPciBusId?: KernelPciBusId;
  /** The driver marked it Fatal. */
  fatal: boolean;
  /**
   * @minimum 0
   * @maximum 999
   */
  link?: number;
  count: number;
  firstSeen: Timestamp;
  lastSeen: Timestamp;
  /**
   * The kernel message (untrusted text; control characters removed, length bounded).
   * @maxLength 512
   */
  message: string;
}

/** A GPU that fell off the bus without an XID code (older wordings, the probe message); stays until a reboot. */
export interface BusLossReport {
  pciBusId: KernelPciBusId;
  gpuUuid?: GpuUuid;
  count: number;
  firstSeen: Timestamp;
  lastSeen: Timestamp;
}

/** NVML memory events of one kind on one GPU (R560+ drivers: ECC storm, DRAM retirement, poison). */
export interface MemoryEventReport {
  kind: NvmlMemoryEventKind;
  pciBusId?: KernelPciBusId;
  gpuUuid?: GpuUuid;
  count: number;
  firstSeen: Timestamp;
  lastSeen: Timestamp;
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
    /**
     * The watcher's last failed wait or set rebuild; it carried on.
     * @maxLength 1024
     */
    warning?: string;
    /**
     * GPUs (UUID, else PCI bus id, else "index N") that answered GPU_IS_LOST and left the event
     * set: no more NVML events come from them.
     * @maxItems 64
     */
    lostGpus?: LostGpuName[];
  };
  /** The persisted XID history, when it could not be read or written. */
  history?: {
    /** @maxLength 1024 */
    error: string;
  };
}

/**
 * A GPU the NVML event watcher lost: its UUID (96 chars at most, NVML_DEVICE_UUID_V2_BUFFER_SIZE),
 * else its PCI bus id, else `index N`.
 * @maxLength 96
 */
export type LostGpuName = string;

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

/**
 * A Kubernetes namespace or container name (DNS-1123 label).
 * @maxLength 63
 * @pattern ^[a-z0-9]([-a-z0-9]*[a-z0-9])?$
 */
export type KubeLabelName = string;

/**
 * A pod name (DNS-1123 subdomain).
 * @maxLength 253
 * @pattern ^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$
 */
export type PodName = string;

/**
 * A pod UID: a UUID, or 32 hex digits (static pods).
 * @maxLength 36
 * @pattern ^([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|[0-9a-f]{32})$
 */
export type PodUid = string;

/**
 * A container id as the runtime names it (containerd, CRI-O, Docker).
 * @pattern ^[0-9a-f]{64}$
 */
export type ContainerId = string;

/**
 * A device id as a device plugin advertised it (`GPU-…`, `GPU-…::2`, `MIG-…`).
 * @maxLength 128
 * @pattern ^[\x21-\x7e]+$
 */
export type DeviceId = string;

/**
 * @maxLength 253
 * @pattern ^[\x21-\x7e]+$
 */
export type ResourceName = string;

/** A container that the kubelet's pod-resources API says holds the GPU: a device plugin allocated it. */
export interface PodResourcesPodReport {
  source: 'pod-resources';
  namespace: KubeLabelName;
  name: PodName;
  container: KubeLabelName;
  /** The device id the kubelet lists, when it is not the GPU's UUID: a shared replica (`GPU-…::2`) or a MIG device. */
  deviceId?: DeviceId;
}

/**
 * A container found through the cgroup of a process on the GPU (no device plugin allocation:
 * time-slicing without the plugin, privileged pods). The cgroup names the pod by UID only.
 */
export interface ProcessCgroupPodReport {
  source: 'process-cgroup';
  uid: PodUid;
  containerId: ContainerId;
  /**
   * The container's processes on this GPU (the first 16).
   * @maxItems 16
   */
  pids: number[];
}

/** A container that holds a GPU, and how the agent found it. */
export type GpuPodReport = PodResourcesPodReport | ProcessCgroupPodReport;

/** One GPU of a snapshot: NVML's observations, and the pods that hold it. */
export interface SnapshotGpu extends GpuSnapshot {
  /**
   * The containers holding this GPU (MAX_PODS_PER_GPU in agent/pod-resources/gpu-pods.ts).
   * Absent when the agent did not look (no pod-resources answer and no processes listed).
   * @maxItems 32
   */
  pods?: GpuPodReport[];
  /** Containers left out of `pods`. */
  podsOmitted?: number;
}

/** A GPU device the kubelet allocated that matches no GPU of the snapshot. */
export interface UnmatchedDeviceReport {
  namespace: KubeLabelName;
  name: PodName;
  container: KubeLabelName;
  resourceName: ResourceName;
  deviceId: DeviceId;
}

/**
 * Why the pods of the GPUs are unknown (agent/pod-resources/client.ts says what each means).
 */
export type PodResourcesUnknownReason =
  'disabled' | 'socket-missing' | 'permission-denied' | 'unreachable' | 'timeout' | 'too-large' | 'grpc-error' | 'malformed-answer';

/** The kubelet's pod-resources answer behind the `pods` of the GPUs. */
export type PodResourcesStatus =
  | {
      status: 'ok';
      /**
       * NVIDIA devices allocated to containers that match no GPU here (a MIG device made after
       * the collection, a GPU NVML no longer sees, another id scheme).
       * @maxItems 32
       */
      unmatchedDevices?: UnmatchedDeviceReport[];
      unmatchedOmitted?: number;
    }
  | {
      status: 'unknown';
      reason: PodResourcesUnknownReason;
      /** @maxLength 512 */
      message: string;
    };

/** The GPU processes the agent mapped to containers through their cgroups. */
export interface ProcessCgroupsStatus {
  /** Processes looked up (GPUs that no device plugin allocated). */
  looked: number;
  /** Processes found in a pod's container. */
  inPods: number;
  /** Processes whose `<proc-root>/<pid>/cgroup` could not be read (ended, or not the host's /proc). */
  unreadable: number;
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
  gpus: SnapshotGpu[];
  /** Absent when the snapshot lists no GPUs, and from agents older than the pods release. */
  podResources?: PodResourcesStatus;
  /** Present when processes of GPUs that no device plugin allocated were mapped to containers. */
  processCgroups?: ProcessCgroupsStatus;
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
    /**
     * NVSwitch errors in the look-back (MAX_REPORTED_SWITCH_EVENTS).
     * @maxItems 64
     */
    switchEvents?: SwitchEventReport[];
    /**
     * GPUs that fell off the bus without an XID, this boot (MAX_REPORTED_BUS_LOSSES).
     * @maxItems 64
     */
    busLoss?: BusLossReport[];
    /**
     * NVML memory events (xid/memory-events.ts: the look-back, and failures until the GPU is reset).
     * @maxItems 64
     */
    memoryEvents?: MemoryEventReport[];
  };
  agent: AgentStatus;
}
