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
import { checkBar1 } from './bar1.js';
import { checkFabric } from './fabric.js';
import { checkInforom } from './inforom.js';
import { checkMemoryTemperature } from './memory-temperature.js';
import { checkPcieErrors } from './pcie-errors.js';
import { checkViolationTime } from './violation-time.js';
import type { GpuCheck } from './types.js';

export {
  checkClockEvents,
  checkCollectionErrors,
  checkEcc,
  checkLost,
  checkMemory,
  checkNvLink,
  checkPcie,
  checkPower,
  checkRetiredPages,
  checkRowRemap,
  checkThermal,
};
export { checkBar1, checkFabric, checkInforom, checkMemoryTemperature, checkPcieErrors, checkViolationTime };
export { memoryEventFinding } from './memory-events.js';
export { isUnobserved } from './collection-errors.js';
export type { GpuCheck, NodeContext } from './types.js';

/** The chain of GPU checks scoreNode runs (XIDs are evaluated separately, in xid.ts). */
export const GPU_CHECKS: readonly GpuCheck[] = Object.freeze([
  checkLost,
  checkEcc,
  checkRowRemap,
  checkRetiredPages,
  checkInforom,
  checkThermal,
  checkMemoryTemperature,
  checkViolationTime,
  checkClockEvents,
  checkPower,
  checkMemory,
  checkBar1,
  checkNvLink,
  checkFabric,
  checkPcie,
  checkPcieErrors,
  checkCollectionErrors,
]);
