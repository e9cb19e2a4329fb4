import { BUILT_IN_POLICY_SPEC } from '../../../api/defaults.js';
import type { GpuNvLink, GpuSnapshot } from '../../../agent/nvml/types.js';
import { BUILT_IN_POLICY, FIXED_SEVERITIES } from '../policy.js';
import { h100, healthyNvLinks } from '../test-fixtures.js';
import { nodeOf, summary } from './check-test-helpers.js';
import { checkNvLink, linkErrorTotal } from './nvlink.js';

const t = BUILT_IN_POLICY_SPEC.thresholds.nvlink;
const down = `${t.linkDownSeverity}:NvLinkDown`;
const errors = `${FIXED_SEVERITIES.nvlinkErrors}:NvLinkErrors`;

function links(change: (l: GpuNvLink) => GpuNvLink): GpuNvLink[] {
  return healthyNvLinks().map(change);
}
const allInactive = links((l) => ({ ...l, active: false }));

describe('checkNvLink', () => {
  it.each<[string, GpuSnapshot, GpuSnapshot[], string[]]>([
    ['all 18 links active', h100(0), [h100(1)], []],
    ['one link down', h100(0, { nvlinks: links((l) => (l.link === 7 ? { ...l, active: false } : l)) }), [h100(1)], [down]],
    ['all links down while peers have active links', h100(0, { nvlinks: allInactive }), [h100(1)], [down]],
    ['all links down on every GPU (no NVLink fabric in use)', h100(0, { nvlinks: allInactive }), [h100(1, { nvlinks: allInactive })], []],
    ['all links down on a single-GPU node', h100(0, { nvlinks: allInactive }), [], []],
    ['all links down with MIG enabled', h100(0, { nvlinks: allInactive, migMode: { enabled: true, pendingEnabled: true } }), [h100(1)], []],
    ['no NVLink (PCIe card)', h100(0, { nvlinks: [] }), [h100(1)], []],
    [
      'a link at the error threshold',
      h100(0, {
        nvlinks: links((l) =>
          l.link === 3 ? { ...l, errors: { replay: t.errorCountWarning - 2, recovery: 1, crcFlit: 1, crcData: 0 } } : l,
        ),
      }),
      [],
      [errors],
    ],
    ['errors below the threshold', h100(0, { nvlinks: links((l) => ({ ...l, errors: { replay: t.errorCountWarning - 1 } })) }), [], []],
  ])('%s', (_, gpu, peers, expected) => {
    expect(summary(checkNvLink(gpu, BUILT_IN_POLICY, nodeOf(gpu, ...peers)))).toEqual(expected);
  });

  it('NVLink down is critical by default and names the links', () => {
    const gpu = h100(0, { nvlinks: links((l) => (l.link === 7 || l.link === 9 ? { ...l, active: false } : l)) });
    const [f] = checkNvLink(gpu, BUILT_IN_POLICY, nodeOf(gpu));
    expect(f).toMatchObject({ check: 'nvlink', severity: 'critical', code: 'NvLinkDown' });
    expect(f?.message).toContain('2 of 18');
    expect(f?.message).toContain('7, 9');
  });

  it('counts replay, recovery and CRC errors', () => {
    expect(linkErrorTotal({ link: 0, active: true, errors: { replay: 1, recovery: 2, crcFlit: 3, crcData: 4, eccData: 100 } })).toBe(10);
  });
});
