/** Work on items of an async source, several at a time (push's writers, rollback's undo batches). */

/**
 * Up to `width` batches in flight: the next batch is read while earlier ones are written. The first
 * failure, of an item or of the source, stops taking new batches; those in flight finish (their
 * journal records stay whole) and the failure is thrown.
 */
export async function runPool<T>(source: AsyncGenerator<T>, width: number, work: (item: T) => Promise<void>): Promise<void> {
  let failure: unknown;
  let failed = false;
  let pulling: Promise<IteratorResult<T>> = Promise.resolve({done: false, value: undefined as T});
  const next = (): Promise<IteratorResult<T>> => {
    // One pull at a time: an async generator is not re-entrant.
    pulling = pulling.then(() => (failed ? {done: true as const, value: undefined} : source.next()));
    return pulling;
  };
  const worker = async () => {
    for (;;) {
      try {
        // A source that fails (a read, or a plan made as it goes) stops the pool like a failed item:
        // the other workers finish what they hold before the failure is thrown.
        const item = await next();
        if (item.done || failed) return;
        await work(item.value);
      } catch (error) {
        if (!failed) {
          failed = true;
          failure = error;
        }
        return;
      }
    }
  };
  try {
    await Promise.all(Array.from({length: width}, worker));
  } catch (error) {
    failed = true;
    failure ??= error;
  }
  if (failed) {
    await source.return(undefined).catch(() => undefined);
    throw failure;
  }
}
