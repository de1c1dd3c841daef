/**
 * Long computations in slices: a computation written as a generator that yields at points where
 * it may pause runs either to the end at once (`drain`) or a few milliseconds at a time, letting
 * other events through between slices (`drive`). Both give the same result: only when the time
 * is spent differs.
 */

/**
 * Let other events run. Node: setImmediate (after I/O and timers). Browsers have none, and clamp
 * nested setTimeout(0) to 4 ms: a message to a MessageChannel of our own comes back at once.
 */
export const yieldToEvents: () => Promise<void> =
  typeof setImmediate === 'function'
    ? () => new Promise((r) => setImmediate(r))
    : typeof MessageChannel === 'function'
      ? messageYield()
      : () => new Promise((r) => setTimeout(r, 0));

/** A yield through a MessageChannel of its own (what browsers get; exported for its test). */
export function messageYield(): () => Promise<void> {
  const channel = new MessageChannel();
  const waiting: (() => void)[] = [];
  // Browsers' and Node's ports both take onmessage (the typings here are Node's, which lack it).
  (channel.port1 as unknown as { onmessage: (() => void) | null }).onmessage = () => waiting.shift()?.();
  return () =>
    new Promise<void>((r) => {
      waiting.push(r);
      channel.port2.postMessage(null);
    });
}

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
