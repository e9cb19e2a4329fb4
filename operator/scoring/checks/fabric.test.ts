import { BUILT_IN_POLICY_SPEC } from '../../../api/defaults.js';
import type { GpuFabric, GpuSnapshot } from '../../../agent/nvml/types.js';
import { BUILT_IN_POLICY, resolvePolicy } from '../policy.js';
import { h100 } from '../test-fixtures.js';
import { summary } from './check-test-helpers.js';
import { checkFabric } from './fabric.js';

const t = BUILT_IN_POLICY_SPEC.thresholds;
const completed: GpuFabric = {
  state: 'completed',
  status: 0,
  cliqueId: 1,
  clusterUuid: '6b2f1c9e0d4a4f3b8e7a5c1d2e3f4a5b',
  healthMask: 2,
  healthSummary: 'healthy',
  degradedBandwidth: false,
};

describe('checkFabric', () => {
  it.each<[string, GpuFabric | undefined, string[]]>([
    ['no fabric (PCIe board)', undefined, []],
    ['fabric not supported', { ...completed, state: 'notSupported' }, []],
    ['registered and healthy', completed, []],
    ['not started (fabric manager down)', { ...completed, state: 'notStarted' }, [`${t.fabric.notCompletedSeverity}:FabricNotCompleted`]],
    ['still in progress', { ...completed, state: 'inProgress' }, [`${t.fabric.notCompletedSeverity}:FabricNotCompleted`]],
    [
      'completed with an error',
      { ...completed, status: 999, healthSummary: 'unhealthy' },
      [`${t.fabric.failedSeverity}:FabricRegistrationFailed`],
    ],
    ['unhealthy summary', { ...completed, healthSummary: 'unhealthy' }, [`${t.fabric.failedSeverity}:FabricUnhealthy`]],
    ['degraded bandwidth', { ...completed, degradedBandwidth: true }, [`${t.fabric.degradedSeverity}:FabricDegraded`]],
    ['limited capacity', { ...completed, healthSummary: 'limitedCapacity' }, [`${t.fabric.degradedSeverity}:FabricDegraded`]],
  ])('%s', (_, fabric, expected) => {
    const gpu: GpuSnapshot = fabric === undefined ? h100(0) : h100(0, { fabric });
    expect(summary(checkFabric(gpu, BUILT_IN_POLICY))).toEqual(expected);
  });

  it('is critical by default, and a policy can lower it', () => {
    expect(t.fabric.notCompletedSeverity).toBe('critical');
    const policy = resolvePolicy({ thresholds: { fabric: { notCompletedSeverity: 'warning' } } });
    expect(summary(checkFabric(h100(0, { fabric: { ...completed, state: 'notStarted' } }), policy))).toEqual([
      'warning:FabricNotCompleted',
    ]);
  });
});
