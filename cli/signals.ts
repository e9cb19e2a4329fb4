/** Waiting for SIGTERM/SIGINT without leaving listeners behind. */

/** A pending wait for the first SIGTERM or SIGINT. */
export interface SignalWait {
  /** Resolves with the signal's name. */
  readonly received: Promise<NodeJS.Signals>;
  /** Removes the listeners (e.g. after a failed start), so nothing keeps a reference. */
  cancel(): void;
}

/** Starts waiting for SIGTERM or SIGINT. */
export function untilSignal(): SignalWait {
  let onSignal: (signal: NodeJS.Signals) => void = () => undefined;
  const received = new Promise<NodeJS.Signals>((resolve) => {
    onSignal = (signal) => {
      cancel();
      resolve(signal);
    };
  });
  const cancel = (): void => {
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  return { received, cancel };
}
