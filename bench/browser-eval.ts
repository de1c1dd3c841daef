/**
 * The in-browser search's evaluations against Node's, side by side in one run: the rules a
 * search on the /play page trained (headless Chromium, one evaluation worker, children on tfjs
 * wasm), trained again in Node (evaluateRule, tfjs wasm) on the same MNIST subset under the same
 * protocol and seed: seconds per evaluation, and whether the rewards agree.
 *
 *   node dist/bench/browser-eval.js [--task mlp-mnist] [--budget 4] [--seed 2] [--out bench/results]
 *
 * Needs the built page (npm run build) and /usr/bin/chromium. Writes browser-eval.txt.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { mnistSubset } from '../dashboard/mnist.js';
import { startDashboard } from '../dashboard/server.js';
import { initTf } from '../dsl/compile/tf-backend.js';
import { parseDatasetFile, viewDataset } from '../evaluator/images.js';
import { findTask } from '../evaluator/tasks.js';
import { evaluateRule } from '../evaluator/train.js';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? (process.argv[i + 1] ?? fallback) : fallback;
}

async function main(): Promise<void> {
  const taskId = arg('task', 'mlp-mnist');
  const budget = Number(arg('budget', '4'));
  const seed = Number(arg('seed', '2'));
  const out = arg('out', 'bench/results');
  const task = findTask(taskId);
  if (task === undefined || task.dataset === 'fashion') throw new Error(`--task ${taskId}: an analytic or MNIST task`);
  const empty = mkdtempSync(join(tmpdir(), 'nos-browser-eval-'));
  const dashboard = await startDashboard({ dir: empty, port: 0 });
  const browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking'],
  });
  let rows: { rule: string; reward: string; seconds: number }[];
  let status: string;
  try {
    const page = await browser.newPage();
    await page.goto(
      `${dashboard.url}play/?task=${taskId}&strategy=random&budget=${budget}&seed=${seed}&workers=1&autostart=1`,
    );
    await page.waitForSelector('body[data-state=done], body[data-state=error]', { timeout: 3_600_000 });
    status = (await page.textContent('#status')) ?? '';
    if ((await page.getAttribute('body', 'data-state')) !== 'done') throw new Error(`the page failed: ${status}`);
    rows = await page.$$eval('#leaderboard tbody tr', (trs) =>
      trs.map((tr) => ({
        rule: tr.children[3]?.getAttribute('title') ?? '',
        reward: tr.children[1]?.textContent ?? '',
        seconds: Number(tr.children[5]?.textContent),
      })),
    );
  } finally {
    await browser.close();
    await dashboard.close();
    rmSync(empty, { recursive: true, force: true });
  }
  const backend = await initTf('wasm');
  const data = task.dataset === null ? undefined : viewDataset(parseDatasetFile(mnistSubset(), 'mnist'));
  const lines = [
    `${taskId}, ${budget} rules of a random search (seed ${seed}) on the /play page, then in Node; MNIST subset 6,000/1,000/1,000`,
    `browser: headless Chromium, 1 evaluation worker, children on tfjs ${/children on tfjs (\w+)/.exec(status)?.[1] ?? '?'}; Node: tfjs ${backend.name}, this thread`,
    '',
    `${'rule'.padEnd(60)} ${'browser s'.padStart(10)} ${'node s'.padStart(8)} ${'ratio'.padStart(6)}  reward browser / node`,
  ];
  let tb = 0;
  let tn = 0;
  for (const r of rows) {
    const n = evaluateRule(r.rule, task, data, { seed });
    tb += r.seconds;
    tn += n.seconds;
    lines.push(
      `${(r.rule.length > 58 ? `${r.rule.slice(0, 57)}…` : r.rule).padEnd(60)} ${r.seconds.toFixed(2).padStart(10)} ${n.seconds.toFixed(2).padStart(8)} ${(r.seconds / n.seconds).toFixed(2).padStart(6)}  ${r.reward} / ${n.reward.toFixed(4)}`,
    );
  }
  lines.push(
    '',
    `total: browser ${tb.toFixed(1)} s, node ${tn.toFixed(1)} s: the browser takes ${(tb / tn).toFixed(2)}x Node's time`,
  );
  const text = `${lines.join('\n')}\n`;
  process.stdout.write(text);
  mkdirSync(out, { recursive: true });
  writeFileSync(join(out, 'browser-eval.txt'), text);
}

main().catch((e: unknown) => {
  process.stderr.write(`${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exitCode = 1;
});
