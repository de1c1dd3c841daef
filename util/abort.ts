/**
 * Cancellation with AbortSignal, as Node's own APIs do it: an operation that is aborted rejects
 * with an error whose name is 'AbortError' (the signal's reason, when it is one, else a new one
 * that carries the reason as its cause).
 */

/** The error an aborted operation rejects with. */
export function abortError(signal: AbortSignal | undefined, what = 'the operation'): Error {
  const reason: unknown = signal?.reason;
  if (reason instanceof Error && reason.name === 'AbortError') return reason;
  const e = new Error(`${what} was aborted`, reason === undefined ? undefined : { cause: reason });
  e.name = 'AbortError';
  return e;
}

/** Whether an error is an abort (a DOMException or an Error named 'AbortError'). */
export function isAbortError(e: unknown): boolean {
  return typeof e === 'object' && e !== null && 'name' in e && (e as { readonly name: unknown }).name === 'AbortError';
}
