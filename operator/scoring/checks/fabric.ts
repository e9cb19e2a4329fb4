/**
 * NVSwitch fabric registration (HGX). A GPU whose registration has not completed, or completed
 * with an error, cannot reach its peers over NVSwitch; GPUs without fabric support are not judged.
 */
import type { GpuSnapshot } from '../../../agent/nvml/types.js';
import { finding, type Finding } from '../finding.js';
import type { ResolvedPolicy } from '../policy.js';
import { NONE } from './types.js';

const NVML_SUCCESS = 0;

/** FabricNotCompleted, FabricRegistrationFailed, FabricUnhealthy (critical by default) and FabricDegraded (warning). */
export function checkFabric(gpu: GpuSnapshot, policy: ResolvedPolicy): readonly Finding[] {
  const fabric = gpu.fabric;
  if (fabric === undefined || fabric.state === 'notSupported') return NONE;
  const t = policy.thresholds.fabric;
  if (fabric.state !== 'completed') {
    return [
      finding(
        'nvlink',
        t.notCompletedSeverity,
        'FabricNotCompleted',
        `NVSwitch fabric registration is ${fabric.state}, not completed: the GPU cannot use NVLink through the switches (check ` +
          `nvidia-fabricmanager)`,
      ),
    ];
  }
  if (fabric.status !== NVML_SUCCESS) {
    return [
      finding(
        'nvlink',
        t.failedSeverity,
        'FabricRegistrationFailed',
        `NVSwitch fabric registration completed with NVML error ${fabric.status}: the GPU is not usable over the fabric`,
      ),
    ];
  }
  const found: Finding[] = [];
  if (fabric.healthSummary === 'unhealthy') {
    found.push(
      finding(
        'nvlink',
        t.failedSeverity,
        'FabricUnhealthy',
        'The fabric manager reports this GPU unhealthy (fabric health summary UNHEALTHY)',
      ),
    );
  }
  if (fabric.degradedBandwidth === true || fabric.healthSummary === 'limitedCapacity') {
    found.push(
      finding(
        'nvlink',
        t.degradedSeverity,
        'FabricDegraded',
        `The NVSwitch fabric runs this GPU at reduced capacity ` +
          `(${fabric.degradedBandwidth === true ? 'degraded bandwidth' : 'limited capacity'})`,
      ),
    );
  }
  return found;
}
