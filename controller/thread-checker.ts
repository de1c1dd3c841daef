/**
 * The rule checker in a worker thread of its own (Node): the search loop's texts are parsed,
 * canonicalised and screened there, ahead of the loop's need. Plain data crosses: text in;
 * hash, canonical text and the screen's verdict out (controller/check-worker.ts).
 */
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { CheckedText, CheckReply, RuleChecker } from './checker.js';

/** The compiled worker: dist/controller/check-worker.js, also when this module runs from source. */
export function checkWorkerFile(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  return here.split(/[\\/]/).includes('dist')
    ? join(here, 'check-worker.js')
    : join(here, '..', 'dist', 'controller', 'check-worker.js');
}

/**
 * Checks in a worker thread (parse, canonical form, hash and screen for every text, ahead of
 * the loop's need). A thread that fails is an error of the search (a bug, not a bad rule: bad
 * rules come back as `ok: false`).
 */
export class ThreadChecker implements RuleChecker {
  private readonly worker: Worker;
  private next = 0;
  private readonly waiting = new Map<number, { resolve: (r: CheckReply[]) => void; reject: (e: Error) => void }>();
  private failed: Error | undefined;

  constructor(file = checkWorkerFile()) {
    this.worker = new Worker(file);
    this.worker.on('message', (m: { id: number; replies: CheckReply[] }) => {
      const w = this.waiting.get(m.id);
      this.waiting.delete(m.id);
      // Idle, the thread keeps the process alive no longer (a shared checker outlives its search).
      if (this.waiting.size === 0) this.worker.unref();
      w?.resolve(m.replies);
    });
    const fail = (e: Error) => {
      this.failed ??= e;
      for (const w of this.waiting.values()) w.reject(e);
      this.waiting.clear();
    };
    this.worker.on('error', fail);
    this.worker.on('exit', (code) => fail(new Error(`the rule-checking thread exited (code ${code})`)));
    this.worker.unref();
  }

  /**
   * Resolves once the thread has started and answered (its modules loaded). `reset`: it also
   * forgets the screens it kept (a new search starts: see sharedChecker).
   */
  async ready(reset = false): Promise<void> {
    await this.send([], reset);
  }

  async check(texts: readonly string[]): Promise<CheckedText[]> {
    return this.send(texts, false);
  }

  private async send(texts: readonly string[], reset: boolean): Promise<CheckedText[]> {
    if (this.failed) throw this.failed;
    const id = this.next++;
    const replies = await new Promise<CheckReply[]>((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      this.worker.ref();
      this.worker.postMessage(reset ? { id, texts, reset } : { id, texts });
    });
    return replies.map((r) => (r.ok ? { ...r, screen: () => r.screen } : r));
  }

  /** The thread failed or was closed: it checks nothing more. */
  get broken(): boolean {
    return this.failed !== undefined;
  }

  async close(): Promise<void> {
    this.failed ??= new Error('the rule checker is closed');
    await this.worker.terminate();
  }
}

let shared: ThreadChecker | undefined;

/**
 * The process's checking thread, shared by the searches it runs one after another or side by
 * side (started by the first; a new one if it failed). It stays, unreferenced (the process may
 * exit), with its compiled code warm: a second search in the same process (an API user's, a
 * benchmark's after its warm-up) does not start a cold thread. Each search resets its screens
 * (`ready(true)`), so that none is served from another's (the loop bench's runs repeat the same
 * rules: served from the last run, the queue's figure was the cache's, not the loop's).
 */
export function sharedChecker(file = checkWorkerFile()): ThreadChecker {
  if (shared === undefined || shared.broken) shared = new ThreadChecker(file);
  return shared;
}
