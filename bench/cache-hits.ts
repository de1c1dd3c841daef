/**
 * How much of an RL search goes to re-sampling rules it already knows, with and without the
 * controller's repeat penalty, at equal budgets (rules trained) on the same task and seed.
 *
 *   node dist/bench/cache-hits.js [--budget 100] [--seed 0] [--task mlp-mnist] [--out bench/results]
 *
 * Writes cache-hits.{json,txt}.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { planRun } from '../controller/run.js';
import { REPEAT_PENALTY, RlController } from '../controller/rl.js';
import { runSearch } from '../controller/search.js';
import { initTf } from '../dsl/compile/tf-backend.js';
import { EvaluatorPool } from '../evaluator/pool.js';
import { findTask } from '../evaluator/tasks.js';
import { leaderboard } from '../controller/funnel-plan.js';
import { SqliteStore } from '../search-results/store.js';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? (process.argv[i + 1] ?? fallback) : fallback;
}

export interface CacheHitFigures {
  readonly penalty: number;
  readonly budget: number;
  readonly sampled: number;
  readonly trained: number;
  readonly cached: number;
  readonly rejected: number;
  readonly cacheHitFraction: number;
  readonly capped: boolean;
  readonly best: number;
  readonly minutes: number;
}

async function main(): Promise<void> {
  const budget = Number(arg('budget', '100'));
  const seed = Number(arg('seed', '0'));
  const taskId = arg('task', 'mlp-mnist');
  const out = arg('out', join('bench', 'results'));
  const task = findTask(taskId);
  if (task === undefined) throw new Error(`no task ${taskId}`);
  await initTf();
  const root = mkdtempSync(join(tmpdir(), 'nos-cache-hits-'));
  const pool = new EvaluatorPool({ workers: 2, ...(task.dataset ? { datasets: [task.dataset] } : {}) });
  const rows: CacheHitFigures[] = [];
  try {
    for (const penalty of [0, REPEAT_PENALTY]) {
      const config = planRun({ run: `penalty-${penalty}`, task: taskId, strategy: 'rl', budget, seed, funnel: false });
      const store = SqliteStore.create(config, root);
      const strategy = new RlController({ seed, groups: config.groups, repeatPenalty: penalty });
      const t0 = performance.now();
      const s = await runSearch(store, strategy, pool);
      const row: CacheHitFigures = {
        penalty,
        budget,
        sampled: s.sampled,
        trained: s.evaluated,
        cached: s.cached,
        rejected: s.rejected,
        cacheHitFraction: s.cached / s.sampled,
        capped: s.capped,
        best: leaderboard(store.candidates(), 1)[0]?.reward ?? 0,
        minutes: (performance.now() - t0) / 60_000,
      };
      rows.push(row);
      process.stderr.write(`${JSON.stringify(row)}\n`);
      strategy.dispose();
      store.close();
    }
  } finally {
    await pool.close();
    rmSync(root, { recursive: true, force: true });
  }
  mkdirSync(out, { recursive: true });
  writeFileSync(join(out, 'cache-hits.json'), `${JSON.stringify({ task: taskId, seed, rows }, null, 1)}\n`);
  const text = [
    `RL controller on ${taskId}, seed ${seed}, budget ${budget} rules trained (sample cap 20x), side by side in one run`,
    `${'repeat penalty'.padEnd(16)}${'sampled'.padStart(8)}${'trained'.padStart(9)}${'cached'.padStart(8)}${'rejected'.padStart(10)}${'cache hits'.padStart(12)}${'best'.padStart(8)}${'minutes'.padStart(9)}`,
    ...rows.map(
      (r) =>
        `${String(r.penalty).padEnd(16)}${String(r.sampled).padStart(8)}${String(r.trained).padStart(9)}${String(r.cached).padStart(8)}${String(r.rejected).padStart(10)}${`${(100 * r.cacheHitFraction).toFixed(1)}%`.padStart(12)}${r.best.toFixed(4).padStart(8)}${r.minutes.toFixed(1).padStart(9)}${r.capped ? '  (hit the sample cap)' : ''}`,
    ),
  ].join('\n');
  writeFileSync(join(out, 'cache-hits.txt'), `${text}\n`);
  process.stdout.write(`${text}\n`);
}

await main();
