/**
 * Makes the real node behave like a GPU node for demos and tests (issue 11, point 3): the fake
 * NVML library of a scenario's driver era and its state file in one host directory, and an empty
 * kernel-log file in /dev/kmsg record format, both handed to the chart's `agent.demo.*` values.
 * Everything else is the production chart.
 */
import { copyFile, mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { buildFakeNvml } from '../../agent/fake-nvml/build.js';
import { FakeNvmlController, fakeNvmlEraOf, loadScenario } from '../../agent/fake-nvml/scenario.js';

/** The real node's GPUs unless told otherwise: 8 healthy H100s on an R550 driver. */
export const REAL_NODE_SCENARIO = 'h100-sxm-8x-healthy';

/** What the chart's demo values point at, and the controller that changes the fake GPUs. */
export interface DemoGpu {
  /** Host directory with libnvidia-ml.so.1 and state.txt (`agent.demo.fakeNvml.hostDir`). */
  fakeNvmlDir: string;
  /** Host file the agent reads as its kernel log (`agent.demo.kmsgHostPath`); append records to it. */
  kmsgPath: string;
  /** Loads scenarios and injects faults; the agent's library sees each change on its next call. */
  controller: FakeNvmlController;
  /** The chart values that install the agent on them. */
  values: Readonly<Record<string, string>>;
}

/** Prepares `scenario` under `dir` (a directory of the node's, removed with it). */
export async function prepareDemoGpu(dir: string, scenario: string): Promise<DemoGpu> {
  const fakeNvmlDir = path.join(dir, 'fake-nvml');
  await mkdir(fakeNvmlDir, { recursive: true });
  const resolved = await loadScenario(scenario);
  await copyFile(await buildFakeNvml({ era: fakeNvmlEraOf(resolved) }), path.join(fakeNvmlDir, 'libnvidia-ml.so.1'));
  const controller = new FakeNvmlController({ stateFile: path.join(fakeNvmlDir, 'state.txt') });
  await controller.load(resolved);
  const kmsgPath = path.join(dir, 'kmsg');
  await writeFile(kmsgPath, '');
  return {
    fakeNvmlDir,
    kmsgPath,
    controller,
    values: { 'agent.demo.fakeNvml.hostDir': fakeNvmlDir, 'agent.demo.kmsgHostPath': kmsgPath },
  };
}
