import { describe, expect, it } from '@jest/globals';
import { listScenarios, loadScenario, scenarioBlocks, validateScenario } from '../../agent/fake-nvml/scenario.js';
import { parseAdvertisedGpus } from '../../operator/scoring/advertised-gpus.js';
import { DEFAULT_SCENARIO_CYCLE, defaultFleet, deviceAdvertisement } from './simulated-fleet.js';

describe('defaultFleet', () => {
  it('cycles through shipped scenarios that never block, the usual mix first', async () => {
    const shipped = await listScenarios();
    for (const name of DEFAULT_SCENARIO_CYCLE) {
      expect(shipped).toContain(name);
      expect([name, scenarioBlocks(await loadScenario(name))]).toEqual([name, false]);
    }
    // `dev up` starts 4 nodes by default: healthy, lost GPU, healthy, DBE.
    expect(defaultFleet(4).map((n) => n.scenario)).toEqual([
      'h100-sxm-8x-healthy',
      'gpu-lost-xid79',
      'h100-sxm-8x-healthy',
      'a100-dbe-remap-pending',
    ]);
    expect(defaultFleet(DEFAULT_SCENARIO_CYCLE.length + 1).map((n) => n.scenario)).toEqual([
      ...DEFAULT_SCENARIO_CYCLE,
      DEFAULT_SCENARIO_CYCLE[0],
    ]);
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

describe('deviceAdvertisement', () => {
  it("advertises each scenario's GPUs as the device plugin and GFD would, unless the scenario says otherwise", async () => {
    const advertised = async (name: string): Promise<number[]> => {
      const { labels, resources } = deviceAdvertisement(await loadScenario(name));
      return parseAdvertisedGpus({ metadata: { labels }, status: { capacity: resources, allocatable: resources } }).counts.map(
        (c) => c.gpus,
      );
    };
    expect(await advertised('h100-sxm-8x-healthy')).toEqual([8, 8, 8]);
    expect(await advertised('t4-legacy')).toEqual([2, 2, 2]);
    expect(await advertised('mig-enabled')).toEqual([4, 4, 4]);
    expect(await advertised('no-gpus')).toEqual([]);
    // The vanished GPUs are still advertised: the Node remembers what NVML no longer counts.
    expect([(await loadScenario('gpu-vanished')).gpus.length, ...(await advertised('gpu-vanished'))]).toEqual([7, 8, 8, 8]);
    expect([(await loadScenario('all-gpus-vanished')).gpus.length, ...(await advertised('all-gpus-vanished'))]).toEqual([0, 8, 8, 8]);
    expect(deviceAdvertisement({ name: 'x', gpus: [{}], advertisedGpus: 0 })).toEqual({ labels: {}, resources: {} });
  });

  it('rejects an advertisedGpus that is not a count', () => {
    expect(() => validateScenario({ name: 'x', gpus: [], advertisedGpus: -1 }, 'x')).toThrow(
      'x.advertisedGpus must be a non-negative integer',
    );
    expect(() => validateScenario({ name: 'x', gpus: [], advertisedGpus: '8' }, 'x')).toThrow(
      'x.advertisedGpus must be a non-negative integer',
    );
  });
});
