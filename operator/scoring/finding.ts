/** The finding model shared by every check: what a check reports, and how findings are ordered. */
import type { DiagnosticCheck } from '../../agent/api/snapshot-document.js';
import { compareSeverity, type XidSeverity } from '../../agent/xid/catalog.js';

/** How bad a finding is (the CRD's finding severity enum). */
export type Severity = XidSeverity;

/** Health of a GPU or node (the CRD's status enum). */
export type HealthStatus = 'healthy' | 'degraded' | 'critical' | 'unknown';

/** One thing a check found; the shape of the CRD's `findings[]` items. */
export interface Finding {
  /** The CRD check this finding belongs to. */
  readonly check: DiagnosticCheck;
  readonly severity: Severity;
  /** Stable CamelCase code, e.g. VolatileDoubleBitEcc. */
  readonly code: string;
  /** Human text with the numbers, at most MAX_FINDING_MESSAGE_LENGTH characters. */
  readonly message: string;
}

/** The CRD's maxLength for a finding message. */
export const MAX_FINDING_MESSAGE_LENGTH = 512;

const ELLIPSIS = '…';

/** Cuts text to at most `max` characters, marking the cut with an ellipsis. */
export function boundText(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - ELLIPSIS.length)}${ELLIPSIS}`;
}

/** Builds a finding with its message bounded to the CRD limit. */
export function finding(check: DiagnosticCheck, severity: Severity, code: string, message: string): Finding {
  return Object.freeze({ check, severity, code, message: boundText(message, MAX_FINDING_MESSAGE_LENGTH) });
}

/** Worst-first comparator for findings (stable sort keeps check order within one severity). */
export function worstFirst(a: Finding, b: Finding): number {
  return compareSeverity(b.severity, a.severity);
}

/** The findings sorted worst first, as a new frozen array. */
export function sortWorstFirst(findings: readonly Finding[]): readonly Finding[] {
  return Object.freeze([...findings].sort(worstFirst));
}
