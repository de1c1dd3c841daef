/**
 * Long computations in slices: a computation written as a generator that yields at points where
 * it may pause runs either to the end at once (`drain`) or a few milliseconds at a time, letting
 * other events through between slices (`drive`). Both give the same result: only when the time
 * is spent differs.
 */

/** Let other events run (Node: after I/O and timers; browsers have no setImmediate). */
export const yieldToEvents: () => Promise<void> =
  typeof setImmediate === 'function'
    ? () => new Promise((r) => setImmediate(r))
    : () => new Promise((r) => setTimeout(r, 0));

/** Run a sliced computation to its end, now. */
export function drain<T>(steps: Generator<void, T, void>): T {
  for (;;) {
    const r = steps.next();
    if (r.done) return r.value;
  }
}

/** Run a sliced computation to its end, letting other events run every `sliceMs` ms. */
export async function drive<T>(steps: Generator<void, T, void>, sliceMs: number): Promise<T> {
  let start = performance.now();
  for (;;) {
    const r = steps.next();
    if (r.done) return r.value;
    if (performance.now() - start > sliceMs) {
      await yieldToEvents();
      start = performance.now();
    }
  }
}
