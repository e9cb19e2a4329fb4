import { describe, expect, it } from '@jest/globals';
import { listScenarios, loadScenario, scenarioBlocks } from '../../agent/fake-nvml/scenario.js';
import { DEFAULT_SCENARIO_CYCLE, defaultFleet } from './simulated-fleet.js';

describe('defaultFleet', () => {
  it('cycles through shipped scenarios that never block, the usual mix first', async () => {
    const shipped = await listScenarios();
    for (const name of DEFAULT_SCENARIO_CYCLE) {
      expect(shipped).toContain(name);
      expect([name, scenarioBlocks(await loadScenario(name))]).toEqual([name, false]);
    }
    // `dev up` starts 4 nodes by default: healthy, lost GPU, healthy, DBE.
    expect(defaultFleet(4).map((n) => n.scenario)).toEqual(['h100-sxm-8x-healthy', 'gpu-lost-xid79', 'h100-sxm-8x-healthy', 'a100-dbe-remap-pending']);
    expect(defaultFleet(DEFAULT_SCENARIO_CYCLE.length + 1).map((n) => n.scenario)).toEqual([...DEFAULT_SCENARIO_CYCLE, DEFAULT_SCENARIO_CYCLE[0]]);
  });

  it('cycles through the scenarios it is given (dev up --scenario)', () => {
    expect(defaultFleet(3, ['nvlink5-storm', 'nvswitch-sxid'])).toEqual([
      { name: 'gpu-node-1', scenario: 'nvlink5-storm' },
      { name: 'gpu-node-2', scenario: 'nvswitch-sxid' },
      { name: 'gpu-node-3', scenario: 'nvlink5-storm' },
    ]);
    expect(defaultFleet(1, [])).toEqual([{ name: 'gpu-node-1', scenario: DEFAULT_SCENARIO_CYCLE[0] }]);
  });
});
