/** Test harness: builds the fake library, loads a scenario and points the library at it. */
import { buildFakeNvml, type FakeNvmlVariant } from './build.js';
import { FakeNvmlLibrary } from './fake-library.js';
import { FakeNvmlController, type FakeNvmlScenario } from './scenario.js';

/** A ready fake NVML environment for one test file. */
export interface FakeNvmlEnvironment {
  /** Path to pass as the binding's `libraryPath`. */
  libraryPath: string;
  controller: FakeNvmlController;
  library: FakeNvmlLibrary;
  /** Removes the temporary state file. */
  dispose(): Promise<void>;
}

/** Builds the fake library (cached), writes `scenario` and makes the library read it on init. */
export async function startFakeNvml(scenario: string | FakeNvmlScenario, variant: FakeNvmlVariant = 'current'): Promise<FakeNvmlEnvironment> {
  const libraryPath = await buildFakeNvml({ variant });
  const controller = new FakeNvmlController();
  await controller.load(scenario);
  const library = FakeNvmlLibrary.open(libraryPath);
  library.setStatePath(controller.stateFile);
  return { libraryPath, controller, library, dispose: () => controller.dispose() };
}
