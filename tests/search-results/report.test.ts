import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runSearch } from '../../controller/search.js';
import { RandomSearch } from '../../controller/strategy.js';
import type { EvalRequest } from '../../evaluator/protocol.js';
import { findTask } from '../../evaluator/tasks.js';
import { evaluateRule } from '../../evaluator/train.js';
import { renderReport } from '../../controller/report.js';
import { type Candidate, SqliteStore } from '../../search-results/store.js';
import { nos } from '../helpers/cli.js';

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

  it('a poisoned run.db (script, event handlers and tag breakers in every text column, on every table) runs no script in Chromium', async () => {
    const runs = mkdtempSync(join(tmpdir(), 'nos-poisoned-'));
    const hit = "document.title='PWNED'";
    const payloads = [
      `<script>${hit}</script>`,
      `<img src=x onerror="${hit}">`,
      `"><svg onload="${hit}">`,
      `'><iframe srcdoc="<script>parent.${hit}</script>">`,
      `</title></code></td></table><script>${hit}</script>`,
      `<style>*{display:none}</style><!--`,
    ];
    const poison = payloads.join(' ');
    // Names (hashes, statuses, strategies, tasks) are at most 256 characters in a run.db.
    const name = `${payloads[0]}${payloads[1]}`;
    const store = SqliteStore.create(
      {
        run: 'poisoned',
        task: 'quadratic',
        strategy: payloads[0] as string, // stored names are at most 100 characters
        budget: 3,
        seed: 1,
        workers: 1,
        batchSize: 3,
        steps: null,
        groups: 2,
        warmStart: false,
        funnel: {
          promote: 1,
          minPromoted: 1,
          longTop: 1,
          finalists: 1,
          seeds: [2, 2, 2],
          longFactor: 2,
          transfer: null,
          baseline: 'adam', // a stored baseline must be a built-in rule
        },
        createdAt: payloads[1] as string,
        nosVersion: payloads[2] as string,
      },
      join(runs, 'root'),
    );
    const base: Candidate = {
      index: 0,
      batch: 0,
      rule: poison,
      hash: name,
      fingerprint: name,
      status: 'ok',
      reward: 0.5,
      bestLr: 0.1,
      valAcc: 0.5,
      testAcc: 0.4,
      finalLoss: 1,
      detail: JSON.stringify({ reason: poison, curve: [1, 0.5, 0.25], curveEvery: 1, grid: [{ lr: poison }] }),
      seconds: 1,
      strategy: name,
      parent: null,
    };
    for (let i = 0; i < 3; i++) store.add({ ...base, index: i, reward: 0.5 + i / 10, rule: `${poison} #${i}` });
    store.saveCheckpoint({
      batch: 0,
      samples: 3,
      state: JSON.stringify({ note: poison }),
      stats: JSON.stringify({ entropy: 1, note: poison }),
    });
    for (const rung of [0, 1, 2])
      for (const seed of [1, 2])
        for (const [hash, rule] of [
          [name, `${poison} #2`],
          [`${name}b`, poison],
        ] as const)
          store.addEvaluation({
            hash,
            rung,
            seed,
            rule,
            task: name,
            status: 'ok',
            reward: 0.5 + seed / 100,
            bestLr: 0.1,
            valAcc: 0.5,
            testAcc: 0.5,
            seconds: 1,
          });
    store.close();
    const prev = process.env.NOS_RUNS;
    process.env.NOS_RUNS = join(runs, 'root', 'search-results', 'runs');
    let r: Awaited<ReturnType<typeof nos>>;
    try {
      r = await nos('report', '--run', 'poisoned', '--no-adam');
    } finally {
      if (prev === undefined) delete process.env.NOS_RUNS;
      else process.env.NOS_RUNS = prev;
    }
    expect(r.code, r.stderr).toBe(0);
    const file = join(runs, 'root', 'search-results', 'runs', 'poisoned', 'report.html');
    const page = readFileSync(file, 'utf8');
    expect(page).not.toMatch(/<(script|img|svg onload|iframe|style>\*)/i);
    expect(page).toContain('&lt;script&gt;');
    const profile = mkdtempSync(join(tmpdir(), 'nos-chromium-'));
    const dom = execFileSync(
      CHROMIUM,
      [...FLAGS, `--user-data-dir=${profile}`, '--virtual-time-budget=2000', '--dump-dom', `file://${file}`],
      { encoding: 'utf8', timeout: 90_000, stdio: ['ignore', 'pipe', 'ignore'] },
    );
    // The detector works: the same payload unescaped does run in this Chromium.
    const control = join(runs, 'control.html');
    writeFileSync(control, `<!doctype html><html><head><title>nos</title></head><body>${payloads[1]}</body></html>`);
    const controlDom = execFileSync(
      CHROMIUM,
      [...FLAGS, `--user-data-dir=${profile}`, '--virtual-time-budget=2000', '--dump-dom', `file://${control}`],
      { encoding: 'utf8', timeout: 90_000, stdio: ['ignore', 'pipe', 'ignore'] },
    );
    expect(controlDom).toContain('<title>PWNED</title>');
    expect(dom).toMatch(/<title>nos run poisoned<\/title>/);
    expect(dom).not.toContain('<title>PWNED');
    expect(dom).not.toMatch(/<(script|img|iframe)\b/i);
    expect(dom).toContain('funnel'); // the funnel's tables were rendered, as text
  }, 120_000);

  it('values of the wrong type from a damaged run.db still reach the page escaped', () => {
    const evil = '<script>alert(1)</script>';
    const c = {
      index: 0,
      batch: 0,
      rule: 'sign(g)',
      hash: 'h',
      fingerprint: null,
      status: 'ok',
      reward: 0.5,
      bestLr: evil,
      valAcc: 0.5,
      testAcc: evil,
      finalLoss: 1,
      detail: JSON.stringify({ curve: [evil, 1, 2], curveEvery: evil }),
      seconds: 1,
      strategy: 's',
      parent: null,
    } as unknown as Candidate;
    const html = renderReport({
      config: {
        run: 'x',
        task: evil,
        strategy: evil,
        budget: evil as unknown as number,
        seed: evil as unknown as number,
        workers: 1,
        batchSize: 1,
        steps: null,
        groups: 2,
        warmStart: false,
        createdAt: '',
        nosVersion: '',
      },
      candidates: [c],
      checkpoints: [{ batch: 0, samples: 1, state: '', stats: 'not json' }],
    });
    expect(html).not.toContain('<script');
    expect(html.match(/&lt;script&gt;/g)?.length).toBeGreaterThanOrEqual(4);
  });

  it('a 150,000-point curve renders (no stack overflow) as a thinned line', () => {
    const curve = Array.from({ length: 150_000 }, (_, i) => 1 / (i + 1));
    const html = renderReport({
      config: {
        run: 'x',
        task: 'quadratic',
        strategy: 'random',
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
      candidates: [],
      checkpoints: [],
      adam: { reward: 0.5, curve, curveEvery: 1 },
    });
    const line = /<polyline points="([^"]*)"/.exec(html.slice(html.indexOf('id="curves"')))?.[1] ?? '';
    expect(line.split(' ').length).toBeGreaterThan(500);
    expect(line.split(' ').length).toBeLessThanOrEqual(2001);
  });
});
