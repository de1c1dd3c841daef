/** `nos report --run NAME [--out F]`: a self-contained HTML page for a run. */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { initTf } from '../dsl/compile/tf-backend.js';
import { loadDataset } from '../evaluator/data.js';
import { findTask } from '../evaluator/tasks.js';
import { evaluateRule } from '../evaluator/train.js';
import { renderReport } from '../search-results/report.js';
import { runPath } from '../search-results/store.js';
import { flag, has, parseArgs, UsageError } from './args.js';
import type { Io } from './io.js';
import { openRun } from './search.js';

export async function reportCommand(argv: readonly string[], io: Io): Promise<number> {
  const args = parseArgs(argv, { run: { type: 'string' }, out: { type: 'string' }, 'no-adam': { type: 'bool' } });
  const store = openRun(flag(args, 'run'));
  try {
    const config = store.config;
    let adam: { reward: number; curve: number[]; curveEvery: number } | undefined;
    const task = findTask(config.task);
    if (!has(args, 'no-adam') && task) {
      await initTf();
      const r = evaluateRule('adam', task, task.dataset ? loadDataset(task.dataset) : undefined, { seed: config.seed, ...(config.steps ? { steps: config.steps } : {}) });
      adam = { reward: r.reward, curve: [...r.curve], curveEvery: r.curveEvery };
    }
    const html = renderReport({ config, candidates: store.candidates(), checkpoints: store.checkpoints(), ...(adam ? { adam } : {}) });
    const out = flag(args, 'out') ?? join(runPath(config.run), 'report.html');
    try {
      writeFileSync(out, html);
    } catch (e) {
      throw new UsageError(`${out}: cannot write (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
    }
    io.out(out);
    return 0;
  } finally {
    store.close();
  }
}
