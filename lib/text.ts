/** Quoting text that came from outside (requests, flags, kernel logs) into messages. */

/** Longest untrusted value quoted in a message by default. */
export const MAX_QUOTED_CHARS = 80;

/**
 * The value as a JSON string literal, cut to `max` characters: quotes, newlines, ANSI escapes
 * and other control characters show as escapes, so the value cannot forge message structure.
 */
export function quote(value: string, max = MAX_QUOTED_CHARS): string {
  const cut = value.length > max ? `${value.slice(0, max)}...` : value;
  // JSON leaves C1 controls, DEL and line/paragraph separators raw; escape them too.
  return JSON.stringify(cut).replace(
    /[\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}

/** `text` cut to at most `max` characters (an ellipsis marks the cut), for bounded fields. */
export function clip(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}
