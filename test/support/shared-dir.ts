/** Where `../shared` (the reference material beside the checkout) is: GPUDIAG_SHARED_DIR, else `../shared` from the repository root. */
import path from 'node:path';

export const SHARED_DIR = process.env['GPUDIAG_SHARED_DIR'] ?? path.resolve(process.cwd(), '../shared');
