import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parseNvLinkStatus } from './nvlink-status.js';

const FIXTURE = path.resolve(process.cwd(), 'test/fixtures/nvidia-smi/h100-pcie-nvlink-status-555.42.02.txt');

describe('parseNvLinkStatus', () => {
  it('reads a recorded two-GPU H100 PCIe bridge output (12 of 18 links active)', () => {
    const gpus = parseNvLinkStatus(readFileSync(FIXTURE, 'utf8'));
    expect(gpus.map((g) => [g.index, g.name, g.uuid, g.links.length])).toEqual([
      [0, 'NVIDIA H100 PCIe', 'GPU-6968dfc2-d444-d92c-c36b-6abe53445cb9', 18],
      [1, 'NVIDIA H100 PCIe', 'GPU-9b1446e2-8a89-4cf6-b68c-a98d99e958d3', 18],
    ]);
    expect(gpus[0]?.links.filter((l) => l.active).map((l) => l.link)).toEqual([0, 1, 2, 3, 6, 7, 8, 9, 12, 13, 14, 15]);
    expect(gpus[0]?.links[0]).toEqual({ link: 0, active: true, speedGBps: 26.562 });
    expect(gpus[0]?.links[4]).toEqual({ link: 4, active: false });
  });

  it('reads a GPU line without a UUID, a 0 GB/s link as down, and ignores other lines', () => {
    const gpus = parseNvLinkStatus(
      'stray text\nGPU 3: NVIDIA H100 80GB HBM3\n\t Link 0: 0 GB/s\n\t Link 1: <inactive>\n\t Link 2: something new\n',
    );
    expect(gpus).toEqual([
      {
        index: 3,
        name: 'NVIDIA H100 80GB HBM3',
        links: [
          { link: 0, active: false, speedGBps: 0 },
          { link: 1, active: false },
        ],
      },
    ]);
  });

  it('answers no GPUs for an empty or error output', () => {
    expect(parseNvLinkStatus('')).toEqual([]);
    expect(parseNvLinkStatus('NVML: Unable to retrieve NVLink information as all links are inActive\n')).toEqual([]);
  });
});
