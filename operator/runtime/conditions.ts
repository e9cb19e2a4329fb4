/**
 * The conditions helper every controller writes status through: pure functions that stamp
 * observedGeneration, keep lastTransitionTime unless the status changes, keep list order, and
 * enforce kstatus (Reconciling and Stalled never both True; Ready summarises).
 */

/** A condition's status. */
export type ConditionStatus = 'True' | 'False' | 'Unknown';

/** A status condition (metav1.Condition). */
export interface Condition {
  type: string;
  status: ConditionStatus;
  observedGeneration?: number;
  lastTransitionTime: string;
  reason: string;
  message: string;
}

/** The caller's part of a condition; the helper adds generation and transition time. */
export interface ConditionInput {
  type: string;
  status: ConditionStatus;
  reason: string;
  message: string;
}

/** A reason and message for the kstatus helpers. */
export interface ReasonMessage {
  reason: string;
  message: string;
}

/** kstatus condition types. */
export const READY = 'Ready';
/** Work toward the desired state is in progress. */
export const RECONCILING = 'Reconciling';
/** The controller cannot make progress without a change by a human. */
export const STALLED = 'Stalled';

/** Kubernetes' pattern for condition reasons. */
export const REASON_PATTERN = /^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$/;
/** Condition types this operator uses are PascalCase words. */
export const TYPE_PATTERN = /^[A-Z][A-Za-z0-9]*$/;
/** Longest message kept; longer ones are truncated with an ellipsis. */
export const MAX_MESSAGE_LENGTH = 1024;
/** Longest reason accepted (the API's limit). */
export const MAX_REASON_LENGTH = 1024;

/** A condition argument the helper refuses (a programming error, not a runtime state). */
export class InvalidConditionError extends Error {
  override readonly name = 'InvalidConditionError';
}

/** Formats a time as metav1.Time does (RFC 3339, whole seconds, UTC). */
export function formatTime(now: Date): string {
  return now.toISOString().replace(/\.\d+Z$/, 'Z');
}

/** Bounds a message to MAX_MESSAGE_LENGTH characters without splitting a surrogate pair. */
export function boundMessage(message: string): string {
  if (message.length <= MAX_MESSAGE_LENGTH) return message;
  let cut = MAX_MESSAGE_LENGTH - 1;
  const code = message.charCodeAt(cut - 1);
  if (code >= 0xd800 && code <= 0xdbff) cut--;
  return `${message.slice(0, cut)}…`;
}

function validate(input: ConditionInput, generation: number): void {
  if (!TYPE_PATTERN.test(input.type)) throw new InvalidConditionError(`invalid condition type ${JSON.stringify(input.type)}`);
  if (input.status !== 'True' && input.status !== 'False' && input.status !== 'Unknown') {
    throw new InvalidConditionError(`invalid status ${JSON.stringify(input.status)} for condition ${input.type}`);
  }
  if (input.reason.length > MAX_REASON_LENGTH || !REASON_PATTERN.test(input.reason)) {
    throw new InvalidConditionError(`invalid reason ${JSON.stringify(input.reason)} for condition ${input.type}`);
  }
  if (!Number.isInteger(generation) || generation < 0) throw new InvalidConditionError(`invalid generation ${generation}`);
}

/** The condition of `type`, if present. */
export function findCondition(conditions: readonly Condition[] | undefined, type: string): Condition | undefined {
  return conditions?.find((c) => c.type === type);
}

/** Whether the condition of `type` is present with status True. */
export function isConditionTrue(conditions: readonly Condition[] | undefined, type: string): boolean {
  return findCondition(conditions, type)?.status === 'True';
}

/**
 * Returns a new list with `input` set: observedGeneration stamped, lastTransitionTime kept
 * unless the status changes (or the condition is new), position kept (new ones appended),
 * message bounded. Throws InvalidConditionError for a bad type, status or reason.
 */
export function setCondition(
  conditions: readonly Condition[] | undefined,
  input: ConditionInput,
  generation: number,
  now: Date,
): Condition[] {
  validate(input, generation);
  const list = conditions ?? [];
  const existing = list.find((c) => c.type === input.type);
  const next: Condition = {
    type: input.type,
    status: input.status,
    observedGeneration: generation,
    lastTransitionTime: existing !== undefined && existing.status === input.status ? existing.lastTransitionTime : formatTime(now),
    reason: input.reason,
    message: boundMessage(input.message),
  };
  return existing === undefined ? [...list, next] : list.map((c) => (c.type === input.type ? next : { ...c }));
}

/** Returns a new list without the condition of `type`. */
export function removeCondition(conditions: readonly Condition[] | undefined, type: string): Condition[] {
  return (conditions ?? []).filter((c) => c.type !== type).map((c) => ({ ...c }));
}

/**
 * Work in progress: Reconciling=True, Stalled removed, Ready=Unknown (or False, e.g. while
 * retrying after a transient error) with the same reason (kstatus: InProgress).
 */
export function markReconciling(
  conditions: readonly Condition[] | undefined,
  why: ReasonMessage,
  generation: number,
  now: Date,
  ready: 'Unknown' | 'False' = 'Unknown',
): Condition[] {
  let next = removeCondition(conditions, STALLED);
  next = setCondition(next, { type: RECONCILING, status: 'True', ...why }, generation, now);
  return setCondition(next, { type: READY, status: ready, ...why }, generation, now);
}

/**
 * Cannot progress without a human: Stalled=True, Reconciling removed, Ready=False with the
 * same reason (kstatus: Failed).
 */
export function markStalled(conditions: readonly Condition[] | undefined, why: ReasonMessage, generation: number, now: Date): Condition[] {
  let next = removeCondition(conditions, RECONCILING);
  next = setCondition(next, { type: STALLED, status: 'True', ...why }, generation, now);
  return setCondition(next, { type: READY, status: 'False', ...why }, generation, now);
}

/**
 * The controller finished its work for this generation: Reconciling and Stalled removed,
 * Ready=True (kstatus: Current). What the work found goes in a separate condition (Healthy).
 */
export function markReady(conditions: readonly Condition[] | undefined, why: ReasonMessage, generation: number, now: Date): Condition[] {
  const next = removeCondition(removeCondition(conditions, RECONCILING), STALLED);
  return setCondition(next, { type: READY, status: 'True', ...why }, generation, now);
}
