/**
 * RL vs random search vs regularized evolution on the default proxy task, at equal budgets,
 * over several seeds. Long: run it by hand (`node dist/bench/compare-strategies.js`), then
 * commit bench/results/strategies.{json,md} and the best rules in search-results/found/.
 *
 *   node dist/bench/compare-strategies.js [--budget 300] [--seeds 1,2] [--task mlp-mnist]
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createRun, searchRun } from '../controller/run.js';
import { initTf } from '../dsl/compile/tf-backend.js';
import { loadDataset } from '../evaluator/data.js';
import { findTask } from '../evaluator/tasks.js';
import { evaluateRule } from '../evaluator/train.js';
import { type Candidate, leaderboard, RunMissingError, SqliteStore } from '../search-results/store.js';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? (process.argv[i + 1] ?? fallback) : fallback;
}

/** sign(g) * sign(m): the agreement term of PowerSign and AddSign. */
export function signAgreement(rule: string): boolean {
  return rule.includes('sign(g)') && /sign\(ema\(g, 0\.9\)\)/.test(rule);
}

async function main(): Promise<void> {
  const budget = Number(arg('budget', '300'));
  const seeds = arg('seeds', '1,2').split(',').map(Number);
  const taskId = arg('task', 'mlp-mnist');
  const task = findTask(taskId);
  if (task === undefined) throw new Error(`no task ${taskId}`);
  await initTf();
  const rows: Record<string, unknown>[] = [];
  const found: Record<string, unknown>[] = [];
  const data = task.dataset ? loadDataset(task.dataset) : undefined;
  for (const seed of seeds) {
    const adam = evaluateRule('adam', task, data, { seed }).reward;
    for (const strategy of ['rl', 'random', 'evolution']) {
      const run = `compare-${strategy}-${taskId}-s${seed}`;
      const t0 = performance.now();
      let store: SqliteStore;
      try {
        store = SqliteStore.open(run);
      } catch (e) {
        if (!(e instanceof RunMissingError)) throw e;
        store = createRun({ run, task: taskId, strategy, budget, seed, workers: 2 });
      }
      await searchRun(store, { workers: 2 });
      const cs: Candidate[] = store.candidates();
      const lastQuarter = cs.slice(Math.floor((cs.length * 3) / 4));
      const top = leaderboard(cs, 10);
      const row = {
        strategy,
        seed,
        budget,
        best: top[0]?.reward ?? 0,
        bestRule: top[0]?.rule ?? null,
        meanLastQuarter: lastQuarter.reduce((a, c) => a + c.reward, 0) / Math.max(1, lastQuarter.length),
        signAgreementInTop10: top.filter((c) => signAgreement(c.rule)).length,
        trained: cs.filter((c) => c.status !== 'cached' && c.status !== 'rejected').length,
        adam,
        minutes: (performance.now() - t0) / 60_000,
      };
      rows.push(row);
      console.error(JSON.stringify(row));
      for (const [rank, c] of top.slice(0, 3).entries()) {
        found.push({ rule: c.rule, hash: c.hash, reward: c.reward, bestLr: c.bestLr, valAcc: c.valAcc, testAcc: c.testAcc, adamReward: adam, provenance: { run, rank: rank + 1, candidate: c.index, strategy, task: taskId, seed, budget } });
      }
      store.close();
    }
  }
  mkdirSync('bench/results', { recursive: true });
  writeFileSync('bench/results/strategies.json', `${JSON.stringify(rows, null, 1)}\n`);
  const md = [
    '| strategy | seed | best reward | mean reward, last quarter | sign-agreement rules in top 10 | rules trained | Adam (same protocol) |',
    '|---|---|---|---|---|---|---|',
    ...rows.map((r) => `| ${r.strategy} | ${r.seed} | ${(r.best as number).toFixed(4)} | ${(r.meanLastQuarter as number).toFixed(4)} | ${r.signAgreementInTop10} | ${r.trained} | ${(r.adam as number).toFixed(4)} |`),
  ].join('\n');
  writeFileSync('bench/results/strategies.md', `${md}\n`);
  mkdirSync(join('search-results', 'found'), { recursive: true });
  writeFileSync(join('search-results', 'found', `${taskId}.json`), `${JSON.stringify(found, null, 1)}\n`);
  console.log(md);
}

main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});
