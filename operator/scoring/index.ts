/** Public API of the scoring package: policy resolution, GPU checks, XID evaluation, node scores. */
export {
  BUILT_IN_POLICY,
  FIXED_SEVERITIES,
  GoDurationError,
  parseGoDuration,
  PolicyError,
  resolvePolicy,
  type ResolvedActions,
  type ResolvedPolicy,
  type ResolvedScoring,
  type ResolvedThresholds,
  type ResolvedXidEscalation,
  type ResolvedXidPolicy,
} from './policy.js';
export { MAX_FINDING_MESSAGE_LENGTH, sortWorstFirst, type Finding, type HealthStatus, type Severity } from './finding.js';
export { podsOfGpu, type AffectedPod, type WorkloadRef } from './gpu-pods.js';
export { parseAdvertisedGpus, type AdvertisedCount, type GpuAdvertisement, type IgnoredAdvertisement } from './advertised-gpus.js';
export { checkMissingGpus, seenGpus, type SeenGpus } from './missing-gpus.js';
export { GPU_CHECKS, type GpuCheck, type NodeContext } from './checks/index.js';
export { evaluateXidEvents, NODE_LEVEL_KEY, XID_FINDING_CODES, type EvaluatedXidEvent, type XidEvaluation } from './xid.js';
export {
  MAX_SCORE,
  scoreFindings,
  scoreNode,
  STATUS_RANK,
  statusFor,
  worseStatus,
  type GpuScore,
  type NodeScore,
  type ScoreNodeOptions,
} from './score.js';
