import { writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadDataset } from '../../evaluator/data.js';
import { defaultWorkerFile, EvaluatorPool, resolveWorkers } from '../../evaluator/pool.js';
import { findTask } from '../../evaluator/tasks.js';
import { evaluateRule } from '../../evaluator/train.js';
import { scratchDir } from '../helpers/scratch.js';

/** A worker that misbehaves on request and otherwise is the real one. */
function misbehavingWorker(): string {
  const file = join(scratchDir('pool-workers'), 'worker.mjs');
  writeFileSync(
    file,
    `import real from ${JSON.stringify(defaultWorkerFile())};
export default async function (req) {
  if (req.rule === 'THROW') throw new Error('boom from the worker');
  if (req.rule === 'HANG') { for (;;) {} }
  if (req.rule === 'EXIT') process.exit(3);
  if (req.rule === 'SLOW') { await new Promise((r) => setTimeout(r, 250)); return real({ ...req, rule: 'sgd' }); }
  return real(req);
}
`,
  );
  return file;
}

describe('evaluator pool', () => {
  const pools: EvaluatorPool[] = [];
  afterAll(async () => {
    await Promise.all(pools.map((p) => p.close()));
  });

  it('evaluates in parallel workers, with the same results as in-process', async () => {
    const pool = new EvaluatorPool({ workers: 2, datasets: ['mnist'] });
    pools.push(pool);
    const rules = ['adam', 'sgd', 'momentum', 'powersign'];
    const replies = await Promise.all(rules.map((rule) => pool.evaluate({ rule, task: 'quadratic', seed: 1 })));
    for (const [i, rule] of rules.entries()) {
      const local = evaluateRule(rule, findTask('quadratic')!, undefined, { seed: 1 });
      expect(replies[i]!.result.reward, rule).toBe(local.reward);
      expect(replies[i]!.result.curve, rule).toEqual(local.curve);
    }
    // The MNIST data reaches workers through shared memory.
    const mnist = await pool.evaluate({ rule: 'adam', task: 'mlp-mnist', seed: 0, steps: 20, lrGrid: [0.01] });
    expect(mnist.result.status).toBe('ok');
    expect(mnist.result.valAcc).toBe(
      evaluateRule('adam', findTask('mlp-mnist')!, loadDataset('mnist'), { steps: 20, lrGrid: [0.01] }).valAcc,
    );
    expect(mnist.memoryMb).toBeGreaterThan(1);
  });

  it('starts threads as work arrives, and never more than the cores', async () => {
    const cores = availableParallelism();
    const pool = new EvaluatorPool({ workers: 1000 });
    pools.push(pool);
    expect(pool.workers).toBe(cores);
    expect(pool.threadsStarted).toBe(0);
    expect((await pool.evaluate({ rule: 'sgd', task: 'quadratic', seed: 0 })).result.status).toBe('ok');
    expect(pool.threadsStarted).toBe(1);
    expect(resolveWorkers(1000)).toEqual({
      workers: cores,
      note: `--workers 1000: using ${cores}, the number of cores here (more threads than cores only adds memory, about 60 MB each)`,
    });
    expect(resolveWorkers(1)).toEqual({ workers: 1, note: undefined });
    expect(resolveWorkers(undefined)).toEqual({ workers: cores, note: undefined });
  });

  it('survives a worker that throws, hangs, or dies, and goes on evaluating', async () => {
    const pool = new EvaluatorPool({ workers: 1, workerFile: misbehavingWorker(), graceMs: 200 });
    pools.push(pool);
    const thrown = await pool.evaluate({ rule: 'THROW', task: 'quadratic', seed: 0 });
    expect(thrown.result.status).toBe('invalid');
    expect(thrown.result.reason).toMatch(/boom from the worker/);
    const hung = await pool.evaluate({ rule: 'HANG', task: 'quadratic', seed: 0, timeLimitMs: 300 });
    expect(hung.result.status).toBe('timeout');
    expect(hung.result.reward).toBe(0);
    const died = await pool.evaluate({ rule: 'EXIT', task: 'quadratic', seed: 0 });
    expect(died.result.status).toBe('invalid');
    expect(died.result.reason).toMatch(/worker failed/);
    const fine = await pool.evaluate({ rule: 'adam', task: 'quadratic', seed: 0 });
    expect(fine.result.status).toBe('ok');
    expect(pool.replaced).toBeGreaterThanOrEqual(1);
  });

  it('interrupt: a running evaluation is stopped at once (AbortError) and its worker replaced; signal lets it finish', async () => {
    const pool = new EvaluatorPool({ workers: 1, workerFile: misbehavingWorker() });
    pools.push(pool);
    await pool.evaluate({ rule: 'sgd', task: 'quadratic', seed: 0 }); // the worker's start-up
    const ac = new AbortController();
    const hung = pool.evaluate({ rule: 'HANG', task: 'quadratic', seed: 0 }, { interrupt: ac.signal });
    const queued = pool.evaluate({ rule: 'adam', task: 'quadratic', seed: 0 }, { interrupt: ac.signal });
    setTimeout(() => ac.abort(), 100);
    const t0 = performance.now();
    const outcomes = await Promise.allSettled([hung, queued]);
    expect(performance.now() - t0).toBeLessThan(2000); // the task's own limit is 60 s
    for (const o of outcomes) {
      expect(o.status).toBe('rejected');
      expect((o as PromiseRejectedResult).reason).toMatchObject({ name: 'AbortError' });
    }
    expect(pool.replaced).toBe(1);
    // `signal` alone drops only what waits: the running evaluation finishes and resolves.
    const stop = new AbortController();
    const running = pool.evaluate({ rule: 'SLOW', task: 'quadratic', seed: 0 }, { signal: stop.signal });
    const waiting = pool.evaluate({ rule: 'adam', task: 'quadratic', seed: 0 }, { signal: stop.signal });
    setTimeout(() => stop.abort(), 50);
    const [ran, dropped] = await Promise.allSettled([running, waiting]);
    expect(ran.status === 'fulfilled' && ran.value.result.status).toBe('ok');
    expect(dropped).toMatchObject({ status: 'rejected', reason: { name: 'AbortError' } });
    // Already aborted: nothing starts.
    await expect(
      pool.evaluate({ rule: 'adam', task: 'quadratic', seed: 0 }, { interrupt: AbortSignal.abort() }),
    ).rejects.toMatchObject({ name: 'AbortError' });
    expect((await pool.evaluate({ rule: 'adam', task: 'quadratic', seed: 0 })).result.status).toBe('ok');
  });

  it('counts the time limit from when an evaluation starts, not while it waits for a worker', async () => {
    const pool = new EvaluatorPool({ workers: 1, workerFile: misbehavingWorker(), graceMs: 100 });
    pools.push(pool);
    await pool.evaluate({ rule: 'sgd', task: 'quadratic', seed: 0 }); // the worker's start-up, outside the limit
    // Six evaluations of about 250 ms each behind one worker: 1.5 s in all, 0.5 s allowed each.
    const replies = await Promise.all(
      Array.from({ length: 6 }, (_, seed) =>
        pool.evaluate({ rule: 'SLOW', task: 'quadratic', seed, timeLimitMs: 400 }),
      ),
    );
    expect(replies.map((r) => r.result.status)).toEqual(Array(6).fill('ok'));
    expect(pool.replaced).toBe(0);
  });
});
