/**
 * The JSON text a GPU list crossed threads as. An NVML thread serialises its snapshot to send it
 * (one string copy); an answer that carries the same list writes that text again instead of
 * serialising the parsed list a second time (~0.25 ms per uncached 8-GPU snapshot). Lists are
 * never changed once parsed: whoever changes one makes a new array, which has no text here.
 */
import type { GpuSnapshot } from './types.js';

const texts = new WeakMap<object, string>();

/** Parses a GPU list and remembers the text it came from. */
export function parseGpuList(json: string): GpuSnapshot[] {
  const gpus = JSON.parse(json) as GpuSnapshot[];
  texts.set(gpus, json);
  return gpus;
}

/** The text `gpus` was parsed from, when it is such a list. */
export function gpuListText(gpus: readonly unknown[]): string | undefined {
  return texts.get(gpus);
}
