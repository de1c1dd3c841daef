/**
 * Does the pipelined loop's staleness hurt the RL controller's search? The same RL search (the
 * default settings: batch 10, 300 rules trained) with staleness 0 (the synchronous loop) and
 * larger ones, on several seeds; per run, the mean reward of its last 100 trained rules, its
 * best reward and its share of cache hits; per staleness, their means, and the paired
 * difference from staleness 0 (same seeds) with a 95% CI. Results do not depend on timing.
 *
 *   node dist/bench/staleness-study.js [--task quadratic] [--seeds 8] [--staleness 0,4,8] [--budget 300] [--out bench/results]
 *
 * Writes staleness.{json,txt}.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRun, searchRun } from '../controller/run.js';
import { meanCi } from '../evaluator/paired.js';
import { EvaluatorPool } from '../evaluator/pool.js';
import { findTask } from '../evaluator/tasks.js';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? (process.argv[i + 1] ?? fallback) : fallback;
}

export interface StalenessRun {
  readonly staleness: number;
  readonly seed: number;
  readonly sampled: number;
  readonly trained: number;
  /** Mean reward of the last 100 trained rules (diverged and invalid ones count 0). */
  readonly last100: number;
  readonly best: number;
  readonly cacheHits: number;
  /** The run ended at the sample cap (20 x the budget) before its budget of trained rules. */
  readonly capped: boolean;
}

async function main(): Promise<void> {
  const taskId = arg('task', 'quadratic');
  const seeds = Number(arg('seeds', '8'));
  const budget = Number(arg('budget', '300'));
  const levels = arg('staleness', '0,4,8').split(',').map(Number);
  const out = arg('out', join('bench', 'results'));
  const task = findTask(taskId);
  if (task === undefined) throw new Error(`no task ${taskId}`);
  const root = mkdtempSync(join(tmpdir(), 'nos-staleness-'));
  const pool = new EvaluatorPool({ workers: 2, ...(task.dataset ? { datasets: [task.dataset] } : {}) });
  const runs: StalenessRun[] = [];
  try {
    for (let seed = 0; seed < seeds; seed++) {
      for (const staleness of levels) {
        const store = createRun(
          { run: `s${staleness}-${seed}`, task: taskId, strategy: 'rl', budget, seed, staleness, funnel: false },
          { root },
        );
        try {
          const s = await searchRun(store, { evaluator: pool });
          const cs = store.candidates();
          const trained = cs.filter((c) => c.status !== 'cached' && c.status !== 'rejected');
          const last = trained.slice(-100);
          const run: StalenessRun = {
            staleness,
            seed,
            sampled: s.sampled,
            trained: s.evaluated,
            last100: last.reduce((a, c) => a + c.reward, 0) / Math.max(1, last.length),
            best: Math.max(0, ...trained.filter((c) => c.status === 'ok').map((c) => c.reward)),
            cacheHits: s.cached / s.sampled,
            capped: s.capped,
          };
          runs.push(run);
          process.stderr.write(`${JSON.stringify(run)}\n`);
        } finally {
          store.close();
        }
      }
    }
  } finally {
    await pool.close();
    rmSync(root, { recursive: true, force: true });
  }
  const f = (x: number) => x.toFixed(4);
  const lines = [
    `RL on ${taskId}, ${budget} rules trained, batch 10, seeds 0-${seeds - 1}: mean over seeds (95% CI of the paired difference from staleness 0)`,
    `${'staleness'.padEnd(10)}${'last 100'.padEnd(34)}${'best'.padEnd(34)}${'cache hits'.padEnd(12)}runs at the sample cap`,
  ];
  const summary = levels.map((staleness) => {
    const mine = runs.filter((r) => r.staleness === staleness);
    const base = runs.filter((r) => r.staleness === levels[0]);
    const paired = (key: 'last100' | 'best' | 'cacheHits') =>
      meanCi(mine.map((r, i) => r[key] - (base[i]?.[key] ?? 0)));
    const mean = (key: 'last100' | 'best' | 'cacheHits') => mine.reduce((a, r) => a + r[key], 0) / mine.length;
    const d = { last100: paired('last100'), best: paired('best'), cacheHits: paired('cacheHits') };
    const ci = (c: { ci95: readonly [number, number] | null }) =>
      c.ci95 === null ? '' : ` [${f(c.ci95[0])}, ${f(c.ci95[1])}]`;
    lines.push(
      `${String(staleness).padEnd(10)}${`${f(mean('last100'))}${staleness === levels[0] ? '' : ci(d.last100)}`.padEnd(34)}${`${f(mean('best'))}${staleness === levels[0] ? '' : ci(d.best)}`.padEnd(34)}${`${(100 * mean('cacheHits')).toFixed(1)}%`.padEnd(12)}${mine.filter((r) => r.capped).length} of ${mine.length}`,
    );
    return { staleness, last100: mean('last100'), best: mean('best'), cacheHits: mean('cacheHits'), vsFirst: d };
  });
  mkdirSync(out, { recursive: true });
  writeFileSync(
    join(out, 'staleness.json'),
    `${JSON.stringify({ task: taskId, budget, seeds, summary, runs }, null, 1)}\n`,
  );
  writeFileSync(join(out, 'staleness.txt'), `${lines.join('\n')}\n`);
  process.stdout.write(`${lines.join('\n')}\n`);
}

await main();
