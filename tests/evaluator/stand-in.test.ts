/**
 * The loop benchmark's stand-in evaluations and the evaluators' abort: made-up results that are
 * deterministic and marked, a sleeping evaluator with W slots served first come first served,
 * evaluations that no worker has started dropped on abort (stand-in and the real pool), stand-in
 * jobs kept apart from real ones in the queue, and a coordinator that refuses a stand-in's result
 * for a real job (and a real result for a stand-in job).
 */
import { Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { nosVersion } from '../../controller/run.js';
import { EvaluatorPool } from '../../evaluator/pool.js';
import type { EvalRequest } from '../../evaluator/protocol.js';
import { checkJobData, encodeNonFinite, jobId, QueueEvaluator, queueName } from '../../evaluator/queue.js';
import { isStandIn, SleepingEvaluator, sleep, standInResult } from '../../evaluator/stand-in.js';
import { failedResult } from '../../evaluator/train.js';
import { redis, stopAll } from '../helpers/redis.js';

afterAll(async () => {
  await stopAll();
});

const req = (i: number, extra: Partial<EvalRequest> = {}): EvalRequest => ({
  rule: `sign(g) * ${i + 1}`,
  task: 'quadratic',
  seed: 0,
  ...extra,
});

describe('stand-in evaluations', () => {
  it('made-up results: deterministic, marked, shaped like the default task (a fifth diverge, the rest in [0.90, 0.97))', () => {
    const a = standInResult(req(0), 200);
    expect(standInResult(req(0), 200)).toEqual(a);
    expect(isStandIn(a)).toBe(true);
    expect(isStandIn(failedResult('g', 'quadratic', 0, 'ok', '', 0))).toBe(false);
    expect(a.seconds).toBe(0.2);
    expect(standInResult(req(0, { standInMs: 50 })).seconds).toBe(0.05);
    expect(standInResult(req(0, { seed: 1 }), 200).reward).not.toBe(a.reward);
    const rs = Array.from({ length: 2000 }, (_x, i) => standInResult(req(i), 1));
    const diverged = rs.filter((r) => r.status === 'diverged');
    expect(diverged.length / rs.length).toBeGreaterThan(0.17);
    expect(diverged.length / rs.length).toBeLessThan(0.23);
    expect(diverged.every((r) => r.reward === 0)).toBe(true);
    for (const r of rs.filter((x) => x.status === 'ok')) {
      expect(r.reward).toBeGreaterThanOrEqual(0.9);
      expect(r.reward).toBeLessThan(0.97);
    }
  });

  it('stand-in jobs never share a real job or queue, and their data is checked', () => {
    expect(jobId(req(0, { standInMs: 200 }))).not.toBe(jobId(req(0)));
    expect(queueName('0.1.0', true)).toBe('nos-evals-0.1.0-stand-in');
    expect(checkJobData(req(0, { standInMs: 200 }))).toEqual({ ok: true, req: req(0, { standInMs: 200 }) });
    expect(checkJobData({ ...req(0), standInMs: -1 })).toEqual({
      ok: false,
      message: 'malformed job: standInMs: Number must be greater than or equal to 0',
    });
  });

  it('W slots, first come first served; a counted busy time; an abort drops what waits, and what runs finishes', async () => {
    const ev = new SleepingEvaluator(3, 40);
    const order: number[] = [];
    const t0 = performance.now();
    await Promise.all(Array.from({ length: 9 }, (_x, i) => ev.evaluate(req(i)).then(() => void order.push(i))));
    const took = performance.now() - t0;
    expect(order).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8]);
    expect(ev.peak).toBe(3);
    expect(ev.busyMs).toBe(9 * 40);
    expect(took).toBeGreaterThanOrEqual(3 * 40 - 5);

    const controller = new AbortController();
    const slow = new SleepingEvaluator(2, 100);
    const outcomes = Array.from({ length: 6 }, (_x, i) =>
      slow.evaluate(req(i), { signal: controller.signal }).then(
        () => 'done',
        (e: Error) => e.name,
      ),
    );
    await sleep(20);
    controller.abort();
    expect(await Promise.all(outcomes)).toEqual([
      'done',
      'done',
      'AbortError',
      'AbortError',
      'AbortError',
      'AbortError',
    ]);
    await expect(slow.evaluate(req(9), { signal: controller.signal })).rejects.toMatchObject({ name: 'AbortError' });
  });

  it('the pool drops evaluations waiting for a worker when aborted; the running one finishes', async () => {
    const pool = new EvaluatorPool({ workers: 1 });
    try {
      const controller = new AbortController();
      const running = pool.evaluate(
        { rule: 'sgd', task: 'quadratic', seed: 0, steps: 20000 },
        { signal: controller.signal },
      );
      const waiting = [1, 2].map((seed) =>
        pool.evaluate({ rule: 'sgd', task: 'quadratic', seed, steps: 200 }, { signal: controller.signal }),
      );
      await sleep(50);
      controller.abort();
      for (const w of waiting) await expect(w).rejects.toMatchObject({ name: 'AbortError' });
      expect((await running).result.status).toBe('ok');
      // The pool goes on: the freed worker takes the next request.
      expect((await pool.evaluate({ rule: 'sgd', task: 'quadratic', seed: 3, steps: 100 })).result.status).toBe('ok');
    } finally {
      await pool.close();
    }
  }, 60_000);

  it('through the queue: a stand-in result for a real job, or a real result for a stand-in job, is refused as invalid', async () => {
    const r = await redis();
    const clients = [0, 1].map(() => new Redis(r.port, '127.0.0.1', { maxRetriesPerRequest: null }));
    // Misbehaving workers: the real queue's answers with stand-ins, the stand-in queue's trains "for real".
    const liar = new Worker(
      queueName(nosVersion()),
      async (job) => encodeNonFinite({ result: standInResult(job.data as EvalRequest, 1), memoryMb: null }),
      { connection: clients[0] as Redis },
    );
    const real = new Worker(
      queueName(nosVersion(), true),
      async (job) =>
        encodeNonFinite({
          result: { ...failedResult((job.data as EvalRequest).rule, 'quadratic', 0, 'ok', '', 0) },
          memoryMb: null,
        }),
      { connection: clients[1] as Redis },
    );
    const plain = await QueueEvaluator.open({ url: r.url, version: nosVersion() });
    const standIn = await QueueEvaluator.open({ url: r.url, version: nosVersion(), standIn: true });
    try {
      const a = await plain.evaluate(req(0));
      expect(a.result).toMatchObject({
        status: 'invalid',
        reason: 'a worker returned a stand-in result (nos worker --stand-in, for benchmarks) for a real evaluation',
      });
      const b = await standIn.evaluate(req(1, { standInMs: 5 }));
      expect(b.result).toMatchObject({
        status: 'invalid',
        reason: 'a worker trained this stand-in job for real (stand-in jobs are for nos worker --stand-in)',
      });
    } finally {
      await plain.close();
      await standIn.close();
      await liar.close();
      await real.close();
      for (const c of clients) c.disconnect();
    }
  }, 60_000);
});
