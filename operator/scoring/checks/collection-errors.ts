/** NVML calls that failed (other than NOT_SUPPORTED): an unobserved field must not pass as healthy. */
import type { GpuSnapshot } from '../../../agent/nvml/types.js';
import { finding, type Finding } from '../finding.js';
import { FIXED_SEVERITIES } from '../policy.js';
import { NONE } from './types.js';

/** Fields named in the message before the list is cut short. */
const MAX_FIELDS_NAMED = 12;

/** Error fields that mean nothing at all could be read from the GPU (its status is then unknown). */
export const UNOBSERVED_GPU_FIELDS: readonly string[] = ['handle', 'gpu'];

/** True when the collector could not observe the GPU as a whole (no handle, or reads skipped). */
export function isUnobserved(gpu: GpuSnapshot): boolean {
  return !gpu.lost && gpu.errors.some((e) => UNOBSERVED_GPU_FIELDS.includes(e.field));
}

/** CollectionError (warning) naming the fields whose NVML calls failed; a lost GPU is reported by checkLost instead. */
export function checkCollectionErrors(gpu: GpuSnapshot): readonly Finding[] {
  if (gpu.lost || gpu.errors.length === 0) return NONE;
  const fields = [...new Set(gpu.errors.map((e) => e.field))];
  const named = fields.slice(0, MAX_FIELDS_NAMED).join(', ');
  const more = fields.length > MAX_FIELDS_NAMED ? ` and ${fields.length - MAX_FIELDS_NAMED} more` : '';
  const codes = [...new Set(gpu.errors.map((e) => e.code))].join(', ');
  return [
    finding(
      'health',
      FIXED_SEVERITIES.collectionError,
      'CollectionError',
      `NVML could not read ${fields.length} field(s): ${named}${more} (NVML return codes ${codes}); their health is unknown`,
    ),
  ];
}
