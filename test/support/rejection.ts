/** The error `promise` rejects with, checked to be a `type` (so a test can assert on its fields). */
export async function rejectionOf<E extends Error>(promise: Promise<unknown>, type: abstract new (...args: never[]) => E): Promise<E> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(err instanceof type)) throw new Error(`expected a ${type.name}, got ${String(err)}`);
  return err;
}
