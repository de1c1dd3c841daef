/**
 * The in-browser search's controller: the same loop as `nos search` (controller/search.ts) with
 * the run's results in memory, its strategy (the RL controller on tfjs's cpu back end: a small
 * LSTM, random search or regularized evolution), and evaluations spread over evaluation workers
 * it starts itself. Progress goes to the page as each result arrives.
 */
import * as tf from '@tensorflow/tfjs';
import {
  type EvalRequest,
  type EvalResult,
  type Evaluator,
  Evolution,
  findTask,
  MemoryStore,
  RandomSearch,
  RlController,
  type RunConfig,
  runSearch,
  type Strategy,
} from '../../browser.js';
import {
  errorText,
  type FromEval,
  type FromSearch,
  type PlaySettings,
  type ToEval,
  type ToSearch,
} from './messages.js';

const post = (m: FromSearch) => (self as unknown as Worker).postMessage(m);

/** Evaluation workers behind the loop's Evaluator interface: one request per idle worker, the rest queued. */
class WorkerPool implements Evaluator {
  private readonly idle: Worker[] = [];
  private readonly waiting: {
    request: EvalRequest;
    resolve: (r: { result: EvalResult }) => void;
    reject: (e: Error) => void;
  }[] = [];
  private readonly busy = new Map<
    Worker,
    { id: number; resolve: (r: { result: EvalResult }) => void; reject: (e: Error) => void }
  >();
  private next = 0;

  private constructor(private readonly workers: readonly Worker[]) {}

  /** Start `n` workers and wait until each has its tfjs back end (the first one's choice is reported). */
  static async start(
    n: number,
    init: Extract<ToEval, { type: 'init' }>,
  ): Promise<{ pool: WorkerPool; backend: string; notes: readonly string[] }> {
    const workers = Array.from(
      { length: n },
      () => new Worker(new URL('./eval-worker.ts', import.meta.url), { type: 'module', name: 'nos-eval' }),
    );
    const pool = new WorkerPool(workers);
    const ready = await Promise.all(
      workers.map(
        (w) =>
          new Promise<{ backend: string; notes: readonly string[] }>((resolve, reject) => {
            w.onmessage = (e: MessageEvent<FromEval>) => {
              const m = e.data;
              if (m.type === 'ready') resolve(m);
              else if (m.type === 'error') reject(new Error(m.message));
            };
            w.onerror = (e) => reject(new Error(`an evaluation worker failed to start: ${e.message}`));
            w.postMessage(init);
          }),
      ),
    );
    for (const w of workers) {
      w.onmessage = (e: MessageEvent<FromEval>) => pool.settle(w, e.data);
      w.onerror = (e) => pool.fail(w, new Error(`an evaluation worker failed: ${e.message}`));
    }
    pool.idle.push(...workers);
    const first = ready[0] as { backend: string; notes: readonly string[] };
    return { pool, backend: first.backend, notes: first.notes };
  }

  evaluate(request: EvalRequest): Promise<{ result: EvalResult }> {
    return new Promise((resolve, reject) => {
      this.waiting.push({ request, resolve, reject });
      this.dispatch();
    });
  }

  private dispatch(): void {
    while (this.idle.length > 0 && this.waiting.length > 0) {
      const w = this.idle.pop() as Worker;
      const job = this.waiting.shift() as (typeof this.waiting)[number];
      const id = this.next++;
      this.busy.set(w, { id, resolve: job.resolve, reject: job.reject });
      w.postMessage({ type: 'evaluate', id, request: job.request } satisfies ToEval);
    }
  }

  private settle(w: Worker, m: FromEval): void {
    const job = this.busy.get(w);
    if (job === undefined || m.type === 'ready' || m.id !== job.id) return;
    this.busy.delete(w);
    this.idle.push(w);
    if (m.type === 'result') job.resolve({ result: m.result });
    else job.reject(new Error(m.message));
    this.dispatch();
  }

  private fail(w: Worker, e: Error): void {
    this.busy.get(w)?.reject(e);
    this.busy.delete(w);
  }

  close(): void {
    for (const w of this.workers) w.terminate();
  }
}

function strategyOf(s: PlaySettings): Strategy {
  const options = { seed: s.seed, groups: s.groups };
  switch (s.strategy) {
    case 'rl':
      return new RlController(options);
    case 'random':
      return new RandomSearch(options);
    case 'evolution':
      return new Evolution(options);
  }
}

let stop = false;

async function start(m: Extract<ToSearch, { type: 'start' }>): Promise<void> {
  const s = m.settings;
  if (findTask(s.task) === undefined) throw new Error(`unknown task '${s.task}'`);
  // The controller's LSTM is small: tfjs's cpu back end, which needs nothing to load.
  await tf.setBackend('cpu');
  await tf.ready();
  const config: RunConfig & { readonly budgetUnit: 'trained' } = {
    run: 'play',
    task: s.task,
    strategy: s.strategy,
    budget: s.budget,
    budgetUnit: 'trained',
    seed: s.seed,
    workers: s.workers,
    batchSize: s.batchSize,
    steps: s.steps,
    groups: s.groups,
    warmStart: false,
    funnel: null,
    createdAt: new Date().toISOString(),
    nosVersion: 'browser',
  };
  const { pool, backend, notes } = await WorkerPool.start(s.workers, {
    type: 'init',
    dataset: m.dataset,
    wasmBase: m.wasmBase,
    backend: s.backend,
  });
  const strategy = strategyOf(s);
  try {
    post({ type: 'ready', backend, notes, workers: s.workers });
    const summary = await runSearch(new MemoryStore(config), strategy, pool, {
      onCandidate: (candidate, progress) => post({ type: 'candidate', candidate, progress }),
      onUpdate: (batch, stats) => post({ type: 'update', batch, stats }),
      shouldStop: () => stop,
    });
    post({ type: 'done', summary });
  } finally {
    pool.close();
    if (strategy instanceof RlController) strategy.dispose();
  }
}

self.onmessage = (e: MessageEvent<ToSearch>) => {
  const m = e.data;
  if (m.type === 'stop') stop = true;
  else start(m).catch((err: unknown) => post({ type: 'error', message: errorText(err) }));
};
