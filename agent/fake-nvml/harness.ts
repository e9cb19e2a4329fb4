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
