/** Test harness: builds the fake library of the scenario's driver era, loads the scenario and points the library at it. */
import { buildFakeNvml } from './build.js';
import type { FakeNvmlEra } from './eras.js';
import { FakeNvmlLibrary } from './fake-library.js';
import { FakeNvmlController, fakeNvmlEraOf, loadScenario, type FakeNvmlScenario } from './scenario.js';

/** A ready fake NVML environment for one test file. */
export interface FakeNvmlEnvironment {
  /** Path to pass as the binding's `libraryPath`. */
  libraryPath: string;
  /** The driver era the library was built as; scenarios of other eras fail its nvmlInit_v2. */
  era: FakeNvmlEra;
  controller: FakeNvmlController;
  library: FakeNvmlLibrary;
  /** Removes the temporary state file. */
  dispose(): Promise<void>;
}

/** Builds the fake library of the scenario's era (cached), writes `scenario` and makes the library read it on init. */
export async function startFakeNvml(scenario: string | FakeNvmlScenario): Promise<FakeNvmlEnvironment> {
  const era = fakeNvmlEraOf(typeof scenario === 'string' ? await loadScenario(scenario) : scenario);
  const libraryPath = await buildFakeNvml({ era });
  const controller = new FakeNvmlController();
  await controller.load(scenario);
  const library = FakeNvmlLibrary.open(libraryPath);
  library.setStatePath(controller.stateFile);
  return { libraryPath, era, controller, library, dispose: () => controller.dispose() };
}

/** One fake environment per driver era, shared by a test file's scenarios (each era is its own library). */
export class FakeNvmlEraPool {
  private readonly envs = new Map<FakeNvmlEra, FakeNvmlEnvironment>();

  /** The environment of the scenario's era, with the scenario loaded. */
  async envFor(scenario: string | FakeNvmlScenario): Promise<FakeNvmlEnvironment> {
    const resolved = typeof scenario === 'string' ? await loadScenario(scenario) : scenario;
    const era = fakeNvmlEraOf(resolved);
    const existing = this.envs.get(era);
    if (existing !== undefined) {
      await existing.controller.load(resolved);
      return existing;
    }
    const started = await startFakeNvml(resolved);
    this.envs.set(era, started);
    return started;
  }

  /** Removes every environment's state file. */
  async dispose(): Promise<void> {
    for (const env of this.envs.values()) await env.dispose();
    this.envs.clear();
  }
}
