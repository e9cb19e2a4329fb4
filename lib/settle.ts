/** Waiting for work with a bound: shutdown must end within its grace period whatever hangs. */

/** Resolves true when `work` resolves within `ms`, false when the time runs out first; rejects with `work`'s error. */
export async function settlesWithin(work: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(false), Math.max(0, ms));
  });
  try {
    return await Promise.race([work.then(() => true), expired]);
  } finally {
    clearTimeout(timer);
  }
}
