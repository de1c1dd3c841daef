/**
 * Turns at a fixed number of workers: up to `workers` holders at once, the rest waiting in the
 * order they asked. An abort drops a waiting one (it rejects with an AbortError). The local
 * pool and the stand-in evaluators wait here rather than in a library's queue, so that a time
 * limit counts an evaluation's own time, not its wait. No Node built-ins.
 */
import { abortError } from './abort.js';

export class Turns {
  private holders = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(readonly workers: number) {}

  /** Turns held now. */
  get held(): number {
    return this.holders;
  }

  /** Wait for a turn, in order (at once while one is free); rejects with an AbortError when `signal` aborts first. */
  async take(signal?: AbortSignal, what = 'the evaluation'): Promise<void> {
    if (signal?.aborted) throw abortError(signal, what);
    if (this.holders < this.workers) {
      this.holders++;
      return;
    }
    await new Promise<void>((resolve, reject) => {
      const turn = () => {
        signal?.removeEventListener('abort', dropped);
        resolve();
      };
      const dropped = () => {
        const at = this.waiting.indexOf(turn);
        if (at >= 0) this.waiting.splice(at, 1);
        reject(abortError(signal, what));
      };
      this.waiting.push(turn);
      signal?.addEventListener('abort', dropped, { once: true });
    });
  }

  /** Hand the turn to the next in line (it keeps the count), or free it. */
  release(): void {
    const next = this.waiting.shift();
    if (next) next();
    else this.holders--;
  }
}
