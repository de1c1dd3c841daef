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

/**
 * One signal for many operations without hanging every listener on it (Node warns past ten on
 * one signal): each operation gets a child signal of its own, aborted with the parent, and
 * released when the operation has settled. No Node built-ins (the loop runs in browsers too).
 */
export class AbortFanOut {
  private readonly children = new Set<AbortController>();

  constructor(private readonly parent: AbortSignal) {
    parent.addEventListener(
      'abort',
      () => {
        for (const c of this.children) c.abort(parent.reason);
        this.children.clear();
      },
      { once: true },
    );
  }

  /** A signal for one operation, aborted with the parent; `release` once the operation has settled. */
  child(): { readonly signal: AbortSignal; release(): void } {
    if (this.parent.aborted) return { signal: AbortSignal.abort(this.parent.reason), release: () => {} };
    const c = new AbortController();
    this.children.add(c);
    return { signal: c.signal, release: () => this.children.delete(c) };
  }
}
