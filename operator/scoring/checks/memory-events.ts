/**
 * NVML memory events the agent reports (R560+ drivers): a DRAM retirement failure or a fatal
 * poison error leaves the GPU unsafe until it is reset; contained poison and ECC storms are early
 * signs. A successful DRAM retirement is the mechanism working and is never a finding.
 */
import type { MemoryEventReport } from '../../../agent/api/snapshot-document.js';
import type { NvmlMemoryEventKind } from '../../../agent/nvml/types.js';
import { finding, type Finding, type Severity } from '../finding.js';
import type { ResolvedPolicy } from '../policy.js';

type JudgedKind = Exclude<NvmlMemoryEventKind, 'dramRetirement'>;

const CODES: Readonly<Record<JudgedKind, { code: string; text: string }>> = {
  dramRetirementFailure: {
    code: 'DramRetirementFailure',
    text: 'a bad DRAM row could not be retired; reset the GPU, and replace it if it recurs',
  },
  fatalPoison: { code: 'FatalPoisonError', text: 'poisoned memory was consumed; the work on this GPU is lost, reset the GPU' },
  nonFatalPoison: { code: 'NonFatalPoisonError', text: 'poisoned memory was contained; watch for more' },
  singleBitEccStorm: { code: 'EccErrorStorm', text: 'a storm of single-bit ECC errors; memory is degrading' },
};

function severityOf(kind: JudgedKind, policy: ResolvedPolicy): Severity {
  const t = policy.thresholds.ecc;
  if (kind === 'dramRetirementFailure') return t.dramRetirementFailureSeverity;
  if (kind === 'fatalPoison') return t.fatalPoisonSeverity;
  if (kind === 'nonFatalPoison') return t.nonFatalPoisonSeverity;
  return t.eccStormSeverity;
}

/** The finding of one memory-event report, or null for a kind that is not a fault. */
export function memoryEventFinding(report: MemoryEventReport, policy: ResolvedPolicy): Finding | null {
  if (report.kind === 'dramRetirement') return null;
  const { code, text } = CODES[report.kind];
  return finding(
    'ecc',
    severityOf(report.kind, policy),
    code,
    `NVML reports ${report.count} ${code} event(s), last at ${report.lastSeen}: ${text}`,
  );
}
