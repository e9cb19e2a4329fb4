/** Agent discovery and fan-out: targets, the agent client, the circuit breaker, the pool and the orchestrator. */
export {
  compileSelector,
  labelKeyProblem,
  labelValueProblem,
  matchesSelector,
  InvalidSelectorError,
  type CompiledSelector,
  type LabelSelector,
  type LabelSelectorRequirement,
} from './label-selector.js';
export {
  agentPodProblem,
  nodeNameProblem,
  resolveTargets,
  InvalidTargetInputError,
  type AgentEndpoint,
  type NodeTarget,
  type ResolveTargetsInput,
} from './targets.js';
export {
  classifyHttpStatus,
  classifyNetworkError,
  createConnectionPool,
  fetchSnapshot,
  parseSnapshotBody,
  sanitizeText,
  snapshotUrl,
  DEFAULT_MAX_BODY_BYTES,
  type ConnectionPoolOptions,
  type FetchOutcome,
  type FetchSnapshotRequest,
} from './agent-client.js';
export {
  breakerKey,
  CircuitBreaker,
  DEFAULT_COOL_DOWN_MS,
  DEFAULT_FAILURE_THRESHOLD,
  type CircuitBreakerOptions,
  type CircuitCounts,
  type CircuitPermit,
  type CircuitState,
} from './circuit-breaker.js';
export { runBounded, type BoundedRunStats, type BoundedWorker, type ResultCallback } from './pool.js';
export {
  backoffDelayMs,
  fanOut,
  nodeRequestId,
  DEFAULT_RETRIES,
  DEFAULT_RETRY_BASE_DELAY_MS,
  DEFAULT_RETRY_MAX_DELAY_MS,
  type FanOutOptions,
  type NodeOutcome,
  type NodeResult,
} from './fanout.js';
