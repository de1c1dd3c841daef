/** Evaluations per minute with 1 and with 2 workers, and peak memory per worker. */
import { EvaluatorPool } from '../evaluator/pool.js';
import type { EvalRequest } from '../evaluator/protocol.js';

export interface PoolFigures {
  evalsPerMin1: number;
  evalsPerMin2: number;
  peakMbPerWorker: number;
  speedup: number;
  evaluations: number;
}

const RULES = [
  'adam',
  'sgd',
  'momentum',
  'powersign',
  'addsign',
  'rmsprop',
  'lion',
  'signum',
  'nesterov',
  'adagrad',
  'amsgrad',
  'sgdw',
];

async function throughput(
  workers: number,
  requests: readonly EvalRequest[],
  log: (s: string) => void,
): Promise<{ perMin: number; peakMb: number }> {
  const pool = new EvaluatorPool({ workers, datasets: ['mnist'] });
  if (pool.workers < workers)
    log(`pool: only ${pool.workers} core(s) here: the ${workers}-worker figure is measured with ${pool.workers}`);
  try {
    // Warm the workers (tfjs init, dataset views) outside the timed part.
    await Promise.all(
      Array.from({ length: workers }, () => pool.evaluate({ rule: 'sgd', task: 'quadratic', seed: 0 })),
    );
    const t0 = performance.now();
    const replies = await Promise.all(requests.map((r) => pool.evaluate(r)));
    const minutes = (performance.now() - t0) / 60_000;
    return { perMin: requests.length / minutes, peakMb: Math.max(...replies.map((r) => r.memoryMb ?? 0)) };
  } finally {
    await pool.close();
  }
}

export async function benchPool(log: (s: string) => void = () => {}, count = 36): Promise<PoolFigures> {
  const requests: EvalRequest[] = Array.from({ length: count }, (_, i) => ({
    rule: RULES[i % RULES.length] as string,
    task: 'mlp-mnist',
    seed: 0,
  }));
  const one = await throughput(1, requests, log);
  log(`pool: 1 worker ${one.perMin.toFixed(1)} evals/min`);
  const two = await throughput(2, requests, log);
  log(`pool: 2 workers ${two.perMin.toFixed(1)} evals/min`);
  return {
    evalsPerMin1: one.perMin,
    evalsPerMin2: two.perMin,
    peakMbPerWorker: Math.max(one.peakMb, two.peakMb),
    speedup: two.perMin / one.perMin,
    evaluations: count,
  };
}
