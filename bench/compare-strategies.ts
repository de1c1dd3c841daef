/**
 * RL vs random search vs regularized evolution at equal budgets (rules trained), over several
 * seeds, each run followed by the funnel: the best rules climb to more seeds, 4x the steps and
 * a transfer task, with Adam on the same seeds at every rung. Reported per run: whether it found
 * a rule significantly better than Adam on the proxy task (rung 2, paired t-test over seeds),
 * whether that held on the transfer task, the sign-agreement family in its top 10, and the
 * cache-hit fraction. Long: run it by hand, then commit bench/results/strategies.{json,md} and
 * search-results/found/<task>.json.
 *
 *   node dist/bench/compare-strategies.js [--budget 100] [--seeds 1,2,3] [--task mlp-mnist] [--finalists 1] [--transfer TASK|none]
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createRun, searchRun } from '../controller/run.js';
import { openStore, type RunStore } from '../controller/config.js';
import { rankedLeaderboard, verdicts } from '../controller/funnel-plan.js';
import { RunMissingError } from '../search-results/store.js';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? (process.argv[i + 1] ?? fallback) : fallback;
}

/** sign(g) * sign(m): the agreement term of PowerSign and AddSign (or sign(g) and sign(m) added). */
export function signAgreement(rule: string): boolean {
  return rule.includes('sign(g)') && /sign\(ema\(g, 0\.9\)\)/.test(rule);
}

async function main(): Promise<void> {
  const budget = Number(arg('budget', '100'));
  const seeds = arg('seeds', '1,2,3').split(',').map(Number);
  const taskId = arg('task', 'mlp-mnist');
  const finalists = Number(arg('finalists', '1'));
  const transfer = arg('transfer', 'convnet-fashion');
  const rows: Record<string, unknown>[] = [];
  const found: Record<string, unknown>[] = [];
  for (const seed of seeds) {
    for (const strategy of ['rl', 'random', 'evolution']) {
      const run = `compare-${strategy}-${taskId}-s${seed}-b${budget}`;
      const t0 = performance.now();
      let store: RunStore;
      try {
        store = openStore(run);
      } catch (e) {
        if (!(e instanceof RunMissingError)) throw e;
        store = createRun({ run, task: taskId, strategy, budget, seed, workers: 2, funnel: { finalists, transfer } });
      }
      const summary = await searchRun(store, { workers: 2 });
      const cs = store.candidates();
      const evals = store.evaluations();
      const board = rankedLeaderboard(store.config, cs, evals, 10);
      const v = verdicts(store.config, cs, evals);
      const betterProxy = v.filter((x) => x.proxy?.verdict === 'better');
      const best = board[0];
      const row = {
        strategy,
        seed,
        budget,
        sampled: cs.length,
        trained: summary.evaluated,
        cacheHits: summary.cached / Math.max(1, cs.length),
        bestRule: best?.rule ?? null,
        bestRung: best?.rung ?? null,
        bestMean: best?.reward ?? null,
        bestCi95: best?.ci95 ?? null,
        betterThanAdamOnProxy: betterProxy.length,
        proxyVerdicts: v.map((x) => x.proxy?.verdict ?? null),
        transferVerdicts: v.filter((x) => x.transfer !== null).map((x) => x.transfer?.verdict ?? null),
        heldOnTransfer: betterProxy.filter((x) => x.transfer?.verdict === 'better').length,
        signAgreementInTop10: board.filter((e) => signAgreement(e.rule)).length,
        minutes: (performance.now() - t0) / 60_000,
      };
      rows.push(row);
      console.error(JSON.stringify(row));
      for (const e of board.slice(0, 3)) {
        const verdict = v.find((x) => x.hash === e.candidate.hash);
        found.push({
          rule: e.rule,
          hash: e.candidate.hash,
          rung: e.rung,
          task: e.task,
          reward: e.reward,
          seeds: e.seeds,
          ci95: e.ci95,
          vsAdam: e.vsBaseline
            ? { diff: e.vsBaseline.mean, ci95: e.vsBaseline.ci95, p: e.vsBaseline.p, verdict: e.vsBaseline.verdict }
            : null,
          proxyVerdict: verdict?.proxy?.verdict ?? null,
          transferVerdict: verdict?.transfer?.verdict ?? null,
          provenance: {
            run,
            rank: e.rank,
            candidate: e.candidate.index,
            strategy,
            task: taskId,
            seed,
            budget,
            budgetUnit: 'trained',
            nos: store.config.nosVersion,
          },
        });
      }
      store.close();
    }
  }
  mkdirSync('bench/results', { recursive: true });
  writeFileSync('bench/results/strategies.json', `${JSON.stringify(rows, null, 1)}\n`);
  const ci = (c: unknown) =>
    Array.isArray(c) ? `[${(c[0] as number).toFixed(4)}, ${(c[1] as number).toFixed(4)}]` : '-';
  const md = [
    '| strategy | seed | sampled | trained | cache hits | best rule: rung, mean [95% CI] | better than Adam on the proxy (rung 2) | held on transfer | sign-agreement in top 10 | minutes |',
    '|---|---|---|---|---|---|---|---|---|---|',
    ...rows.map(
      (r) =>
        `| ${r.strategy} | ${r.seed} | ${r.sampled} | ${r.trained} | ${(100 * (r.cacheHits as number)).toFixed(0)}% | rung ${r.bestRung}, ${(r.bestMean as number | null)?.toFixed(4) ?? '-'} ${ci(r.bestCi95)} | ${r.betterThanAdamOnProxy} of ${(r.proxyVerdicts as unknown[]).length} (${(r.proxyVerdicts as string[]).join(', ')}) | ${r.heldOnTransfer} (transfer: ${(r.transferVerdicts as string[]).join(', ') || '-'}) | ${r.signAgreementInTop10} | ${(r.minutes as number).toFixed(1)} |`,
    ),
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
