import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runSearch } from '../../controller/search.js';
import { RandomSearch } from '../../controller/strategy.js';
import type { EvalRequest } from '../../evaluator/protocol.js';
import { findTask } from '../../evaluator/tasks.js';
import { evaluateRule } from '../../evaluator/train.js';
import { renderReport } from '../../controller/report.js';
import { SqliteStore } from '../../search-results/store.js';

const CHROMIUM = '/usr/bin/chromium';
const FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

describe('nos report', () => {
  it('renders in a real browser (headless Chromium): charts, the top rules, their curves', async () => {
    expect(existsSync(CHROMIUM), 'Debian chromium is needed (apt-get install chromium); .ci/run installs it').toBe(
      true,
    );
    const dir = mkdtempSync(join(tmpdir(), 'nos-report-'));
    const store = SqliteStore.create(
      {
        run: 'r',
        task: 'quadratic',
        strategy: 'random',
        budget: 40,
        seed: 1,
        workers: 1,
        batchSize: 10,
        steps: null,
        groups: 2,
        warmStart: false,
        createdAt: 'test',
        nosVersion: 'test',
      },
      dir,
    );
    const task = findTask('quadratic')!;
    await runSearch(store, new RandomSearch({ seed: 1, groups: 2 }), {
      evaluate: async (req: EvalRequest) => ({ result: evaluateRule(req.rule, task, undefined, { seed: req.seed }) }),
    });
    const adam = evaluateRule('adam', task, undefined, { seed: 1 });
    const html = renderReport({
      config: store.config,
      candidates: store.candidates(),
      checkpoints: store.checkpoints(),
      adam: { reward: adam.reward, curve: [...adam.curve], curveEvery: adam.curveEvery },
    });
    const ok = store.candidates().filter((c) => c.status === 'ok').length;
    store.close();
    const file = join(dir, 'report.html');
    writeFileSync(file, html);
    const profile = mkdtempSync(join(tmpdir(), 'nos-chromium-'));
    const dom = execFileSync(CHROMIUM, [...FLAGS, `--user-data-dir=${profile}`, '--dump-dom', `file://${file}`], {
      encoding: 'utf8',
      timeout: 90_000,
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    expect(dom).toContain('nos search run');
    expect(dom.match(/<svg/g)?.length).toBeGreaterThanOrEqual(2);
    expect(dom).toContain('Adam, same protocol');
    const rows = dom.match(/<tr><td>\d+<\/td>/g)?.length ?? 0;
    expect(rows).toBe(Math.min(10, ok));
    const png = join(dir, 'report.png');
    execFileSync(
      CHROMIUM,
      [...FLAGS, `--user-data-dir=${profile}`, '--window-size=1000,1800', `--screenshot=${png}`, `file://${file}`],
      { timeout: 90_000, stdio: 'ignore' },
    );
    expect(statSync(png).size).toBeGreaterThan(20_000);
  }, 200_000);

  it('escapes rule text and run names into HTML', () => {
    const html = renderReport({
      config: {
        run: 'x',
        task: 't',
        strategy: 's',
        budget: 1,
        seed: 0,
        workers: 1,
        batchSize: 1,
        steps: null,
        groups: 2,
        warmStart: false,
        createdAt: '',
        nosVersion: '',
      },
      candidates: [
        {
          index: 0,
          batch: 0,
          rule: 'g < w & "x"',
          hash: 'h',
          fingerprint: null,
          status: 'ok',
          reward: 0.5,
          bestLr: 0.1,
          valAcc: 0.5,
          testAcc: null,
          finalLoss: 1,
          detail: '{}',
          seconds: 1,
          strategy: 's',
          parent: null,
        },
      ],
      checkpoints: [],
    });
    expect(html).toContain('g &lt; w &amp; &quot;x&quot;');
    expect(html).not.toContain('g < w');
  });
});
