/**
 * Undoing a partial start: each started part registers how to stop it, and a failed start runs
 * them in reverse, so a process whose start failed holds no server, timer or child and exits.
 */
import { errorFields, type Logger } from './logger.js';

/** Stop functions of the parts started so far. */
export class Teardown {
  private readonly steps: { name: string; stop: () => unknown }[] = [];

  /** Registers how to stop a part that just started. */
  add(name: string, stop: () => unknown): void {
    this.steps.push({ name, stop });
  }

  /** Stops every registered part, last first; a failing step is logged and the rest still run. */
  async run(logger: Logger): Promise<void> {
    for (const step of this.steps.splice(0).reverse()) {
      try {
        await step.stop();
      } catch (err) {
        logger.warn('stopping a partly started component failed', { component: step.name, ...errorFields(err) });
      }
    }
  }
}

/** Runs `start` with a Teardown; if it throws, undoes what it started and rethrows. */
export async function startOrUndo<T>(logger: Logger, start: (teardown: Teardown) => Promise<T>): Promise<T> {
  const teardown = new Teardown();
  try {
    return await start(teardown);
  } catch (err) {
    await teardown.run(logger);
    throw err;
  }
}
