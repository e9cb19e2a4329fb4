/**
 * Decodes XID 154 (GPU recovery action changed): `GPU recovery action changed from 0x4 (Drain and
 * Reset) to 0x3 (Drain P2P)`. Only the *to* half matters, and only its number: drivers label the
 * same numbers differently ("0x1 (GPU Reset Required)" / "0x1 (PF FLR)", "0x2 (Node Reboot
 * Required)" / "0x2 (OS Reboot)"). The numbers are NVML's nvmlDeviceGpuRecoveryAction_t.
 */

/** The recovery action an XID 154 moved to. */
export interface Xid154Decode {
  readonly from: number | null;
  readonly to: number;
  /** The bucket to act on. */
  readonly immediateAction: string;
  /** Our name for the action (the driver's label words vary). */
  readonly label: string;
}

/** nvmlDeviceGpuRecoveryAction_t → bucket and label. */
const RECOVERY_ACTIONS: ReadonlyMap<number, { bucket: string; label: string }> = new Map([
  [0x0, { bucket: 'IGNORE', label: 'none (an earlier recovery action is no longer needed)' }],
  [0x1, { bucket: 'RESET_GPU', label: 'GPU reset required' }],
  [0x2, { bucket: 'RESTART_BM', label: 'node reboot required' }],
  [0x3, { bucket: 'DRAIN_P2P', label: 'drain peer-to-peer work' }],
  [0x4, { bucket: 'DRAIN_AND_RESET', label: 'drain and reset' }],
  [0x5, { bucket: 'RECOVER_IMEX', label: 'recover the IMEX domain' }],
]);

const TO_RE = /\bto\s+(0x[0-9a-fA-F]{1,8}|\d{1,3})\b/i;
const FROM_RE = /\bfrom\s+(0x[0-9a-fA-F]{1,8}|\d{1,3})\b/i;

function number(text: string): number {
  return text.toLowerCase().startsWith('0x') ? Number.parseInt(text, 16) : Number(text);
}

/** Decodes the transition; null when the message names no "to" action. An unknown number asks for support. */
export function decodeXid154(message: string): Xid154Decode | null {
  const to = TO_RE.exec(message);
  if (to === null) return null;
  const from = FROM_RE.exec(message.slice(0, to.index));
  const value = number(to[1] ?? '');
  const known = RECOVERY_ACTIONS.get(value);
  return {
    from: from === null ? null : number(from[1] ?? ''),
    to: value,
    immediateAction: known?.bucket ?? 'CONTACT_SUPPORT',
    label: known?.label ?? `unknown recovery action 0x${value.toString(16)}`,
  };
}
