/** Every GPU check, in the order their findings are listed. */
import { checkClockEvents } from './clock-events.js';
import { checkCollectionErrors } from './collection-errors.js';
import { checkEcc } from './ecc.js';
import { checkLost } from './lost.js';
import { checkMemory } from './memory.js';
import { checkNvLink } from './nvlink.js';
import { checkPcie } from './pcie.js';
import { checkPower } from './power.js';
import { checkRetiredPages } from './retired-pages.js';
import { checkRowRemap } from './row-remap.js';
import { checkThermal } from './thermal.js';
import type { GpuCheck } from './types.js';

export { checkClockEvents, checkCollectionErrors, checkEcc, checkLost, checkMemory, checkNvLink, checkPcie, checkPower, checkRetiredPages, checkRowRemap, checkThermal };
export { isUnobserved } from './collection-errors.js';
export type { GpuCheck, NodeContext } from './types.js';

/** The chain of GPU checks scoreNode runs (XIDs are evaluated separately, in xid.ts). */
export const GPU_CHECKS: readonly GpuCheck[] = Object.freeze([
  checkLost,
  checkEcc,
  checkRowRemap,
  checkRetiredPages,
  checkThermal,
  checkClockEvents,
  checkPower,
  checkMemory,
  checkNvLink,
  checkPcie,
  checkCollectionErrors,
]);
