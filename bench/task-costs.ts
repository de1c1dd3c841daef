/**
 * What one evaluation of each task costs: Adam under the task's full protocol (the rate grid,
 * then the full run), one seed, in this thread (one core), wall-clock seconds. `nos tasks` shows
 * the committed figures (evaluator/task-costs.ts); nothing is timed at run time. Run it under
 * the shared lock: `flock /work/bench.lock node dist/bench/task-costs.js`; the load average
 * before and after is written beside the figures, since other work on the machine inflates them.
 *
 *   node dist/bench/task-costs.js [--out DIR] [--only id,id]
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { initTf } from '../dsl/compile/tf-backend.js';
import { loadDataset } from '../evaluator/data.js';
import { TASKS } from '../evaluator/tasks.js';
import { evaluateRule } from '../evaluator/train.js';

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

if (process.argv[1]?.endsWith('task-costs.js')) {
  await initTf();
  const out = arg('out') ?? join('bench', 'results');
  const only = arg('only')?.split(',');
  const rows: { task: string; seconds: number; steps: number; status: string; reward: number; load: number[] }[] = [];
  for (const t of TASKS) {
    if (only && !only.includes(t.id)) continue;
    const data = t.dataset ? loadDataset(t.dataset) : undefined;
    const load = loadavg().slice(0, 1);
    const t0 = performance.now();
    const r = evaluateRule('adam', t, data, { seed: 0 });
    const seconds = (performance.now() - t0) / 1000;
    const steps = t.lrGrid.length * t.gridSteps + (t.lrTop ?? 1) * t.steps;
    rows.push({
      task: t.id,
      seconds,
      steps,
      status: r.status,
      reward: r.reward,
      load: [...load, loadavg()[0] as number],
    });
    process.stderr.write(
      `${t.id}: ${seconds.toFixed(1)} s (${steps} steps, ${r.status}, reward ${r.reward.toFixed(4)}, load ${load[0]?.toFixed(1)} -> ${loadavg()[0]?.toFixed(1)})\n`,
    );
  }
  mkdirSync(out, { recursive: true });
  writeFileSync(join(out, 'task-costs.json'), `${JSON.stringify(rows, null, 1)}\n`);
  const lines = [
    'seconds per evaluation: adam, the full protocol (grid + full run), seed 0, one thread (load average: 1-minute, before -> after)',
    ...rows.map(
      (r) =>
        `${r.task.padEnd(22)}${r.seconds.toFixed(1).padStart(8)} s ${String(r.steps).padStart(6)} steps  reward ${r.reward.toFixed(4)}  load ${r.load.map((x) => x.toFixed(1)).join(' -> ')}`,
    ),
  ];
  writeFileSync(join(out, 'task-costs.txt'), `${lines.join('\n')}\n`);
  process.stdout.write(`${lines.join('\n')}\n`);
}
