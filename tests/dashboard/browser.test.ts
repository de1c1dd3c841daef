/**
 * The dashboard and the in-browser search in a real browser (headless Chromium, driven by
 * playwright-core): `nos dashboard` and `nos search` run side by side as a user runs them, the
 * page of a finished run renders, a running search's new results appear on its open page
 * without a reload, and the search page runs a whole search in the browser and shows its
 * leaderboard (the same one `runSearch` gives in Node for the same settings).
 *
 * NOS_DOCS_SCREENSHOTS=1 writes the screenshots to docs/ (the README shows them).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { type Browser, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runSearch } from '../../controller/search.js';
import { RandomSearch } from '../../controller/strategy.js';
import { leaderboard } from '../../controller/funnel-plan.js';
import { MemoryStore } from '../../search-results/memory.js';
import { runsDir } from '../../search-results/store.js';
import { builtPlay } from '../helpers/play.js';
import { repoRoot } from '../helpers/reference.js';
import { inThread, quadraticConfig, quadraticRun } from '../helpers/runs.js';

const CHROMIUM = '/usr/bin/chromium';
const ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
const docs = process.env.NOS_DOCS_SCREENSHOTS === '1';

let root: string;
let dir: string;
let browser: Browser;
let dashboard: ChildProcess;
let url: string;
const children: ChildProcess[] = [];

function nosChild(args: string[]): ChildProcess {
  const child = spawn(process.execPath, [join(repoRoot, 'bin', 'nos.js'), ...args], {
    cwd: root,
    env: { ...process.env, NOS_RUNS: dir },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  return child;
}

async function shot(page: Page, name: string): Promise<void> {
  const path = docs ? join(repoRoot, 'docs', name) : join(root, name);
  await page.screenshot({ path, fullPage: true });
  expect(statSync(path).size).toBeGreaterThan(20_000);
}

beforeAll(async () => {
  expect(existsSync(CHROMIUM), 'Debian chromium is needed (apt-get install chromium); .ci/run installs it').toBe(true);
  root = mkdtempSync(join(tmpdir(), 'nos-dash-browser-'));
  dir = runsDir(root);
  await quadraticRun(root, 'finished', { budget: 24, funnel: true, strategy: 'rl' });
  await builtPlay();
  dashboard = nosChild(['dashboard', '--dir', dir, '--port', '0']);
  url = await new Promise<string>((resolve, reject) => {
    let out = '';
    let err = '';
    dashboard.stdout?.on('data', (c: Buffer) => {
      out += c.toString();
      const line = out.split('\n')[0] as string;
      if (out.includes('\n')) resolve(line.trim());
    });
    dashboard.stderr?.on('data', (c: Buffer) => {
      err += c.toString();
    });
    dashboard.on('exit', (code) => reject(new Error(`nos dashboard exited (${code}): ${err}`)));
  });
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS });
}, 180_000);

afterAll(async () => {
  await browser?.close();
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  rmSync(root, { recursive: true, force: true });
});

describe('nos dashboard in Chromium', () => {
  it('binds 127.0.0.1 by default; the list and a finished run render (runs, charts, leaderboard)', async () => {
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
    const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    page.on('console', (m) => {
      if (m.type() === 'error') errors.push(m.text());
    });
    await page.goto(url);
    await expect(page.locator('tr[data-run="finished"] .state').textContent()).resolves.toBe('done');
    await page.goto(`${url}run/finished`);
    expect(await page.locator('#leaderboard tbody tr').count()).toBeGreaterThan(3);
    expect(await page.locator('#verdicts tbody tr').count()).toBeGreaterThan(0);
    // Reward, the controller's entropy, learning curves.
    expect(await page.locator('svg').count()).toBe(3);
    await expect(page.locator('#live').textContent()).resolves.toBe('live');
    await shot(page, 'dashboard-run.png');
    expect(errors).toEqual([]);
    await page.close();
  });

  it("a running search's new results appear on its open page without a reload, within 2 s", async () => {
    const search = nosChild(
      // Budget 5000: the pipelined loop trains ~50 quadratic rules a second on one worker, so a
      // budget of 200 (as before it) ended within the seconds this test watches, before SIGINT.
      ['search', '--task', 'quadratic', '--budget', '5000', '--strategy', 'random', '--seed', '5'].concat([
        '--run',
        'live',
        '--workers',
        '1',
        '--funnel',
        'off',
      ]),
    );
    let searchErr = '';
    search.stderr?.on('data', (c: Buffer) => {
      searchErr += c.toString();
    });
    const db = join(dir, 'live', 'run.db');
    const t0 = Date.now();
    while (!existsSync(db)) {
      if (Date.now() - t0 > 60_000) throw new Error(`nos search made no run.db: ${searchErr}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
    await page.goto(`${url}run/live`);
    // Record when each sample first shows on the page (the page's clock is this machine's).
    await page.evaluate(`(() => {
      const seen = (window.nosSeen = {});
      window.nosMarker = true;
      const note = () => {
        for (const tr of document.querySelectorAll('#recent tr[data-index]')) seen[tr.dataset.index] ??= Date.now();
      };
      note();
      new MutationObserver(note).observe(document.body, { childList: true, subtree: true });
    })()`);
    const before = Object.keys((await page.evaluate('window.nosSeen')) as object).length;
    // Meanwhile, when each sample is first in the run.db (a read-only connection, polled).
    const reader = new Database(db, { readonly: true, fileMustExist: true });
    const stored = new Map<number, number>();
    let initial: Set<number> | undefined;
    const until = Date.now() + 3000;
    while (Date.now() < until) {
      for (const { idx } of reader.prepare('SELECT idx FROM candidates').all() as { idx: number }[])
        if (!stored.has(idx)) stored.set(idx, Date.now());
      initial ??= new Set(stored.keys());
      await new Promise((r) => setTimeout(r, 20));
    }
    await new Promise((r) => setTimeout(r, 1500));
    reader.close();
    const seen = (await page.evaluate('window.nosSeen')) as Record<string, number>;
    const marker = await page.evaluate('window.nosMarker');
    expect(marker, 'the page was not reloaded').toBe(true);
    // Samples first stored while the reader watched, and shown: how long after. "Latest results"
    // shows the newest twelve at each update, so a sample overtaken by twelve newer ones between
    // two updates never shows; a sample the page showed before the (polling, possibly delayed)
    // reader saw it counts as 0 ms.
    const latencies = [...stored.entries()]
      .filter(([i]) => !initial?.has(i) && seen[i] !== undefined)
      .map(([i, at]) => Math.max(0, (seen[i] as number) - at));
    expect(Object.keys(seen).length - before, 'new rows appeared without a reload').toBeGreaterThan(3);
    expect(latencies.length).toBeGreaterThan(3);
    expect(Math.max(...latencies)).toBeLessThan(2000);
    const sorted = [...latencies].sort((a, b) => a - b);
    process.stderr.write(
      `dashboard live latency over ${latencies.length} new results: median ${sorted[Math.floor(sorted.length / 2)]} ms, max ${sorted.at(-1)} ms\n`,
    );
    await shot(page, 'dashboard-live.png');
    expect(search.exitCode, `the search ended before it was stopped: ${searchErr.slice(-400)}`).toBeNull();
    const exited = new Promise((r) => search.once('exit', r));
    search.kill('SIGINT');
    await exited;
    await page.close();
  }, 120_000);
});

describe('the in-browser search page in Chromium', () => {
  it('runs a 20-rule search in the browser (workers, tfjs wasm) and shows the leaderboard Node gives', async () => {
    const page = await browser.newPage({ viewport: { width: 1100, height: 900 } });
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(`${url}play/?task=quadratic&strategy=random&budget=20&seed=7&workers=2&autostart=1`);
    await page.waitForSelector('body[data-state=done], body[data-state=error]', { timeout: 120_000 });
    const status = await page.textContent('#status');
    expect(await page.getAttribute('body', 'data-state'), status ?? '').toBe('done');
    expect(status).toContain('20 rules trained');
    expect(status).toMatch(/children on tfjs (wasm|webgpu)/);
    const rows = await page.$$eval('#leaderboard tbody tr', (trs) =>
      trs.map((tr) => ({
        index: Number(tr.getAttribute('data-index')),
        rule: tr.children[3]?.getAttribute('title') ?? '',
        reward: tr.children[1]?.textContent ?? '',
      })),
    );
    // The same search in Node: the same strategy, seed and protocol give the same leaderboard.
    const store = new MemoryStore({ ...quadraticConfig('play', 20, false), seed: 7, batchSize: 10 });
    await runSearch(store, new RandomSearch({ seed: 7, groups: 2 }), inThread);
    const node = leaderboard(store.candidates(), 15).map((c) => ({
      index: c.index,
      rule: c.rule,
      reward: c.reward.toFixed(4),
    }));
    expect(rows).toEqual(node);
    expect(await page.textContent('#export')).toContain('export class FoundOptimizer extends tf.Optimizer');
    await shot(page, 'play.png');
    expect(errors).toEqual([]);
    await page.close();
  }, 150_000);

  it('runs the RL controller in its worker (tfjs cpu), checkpointing each update', async () => {
    const page = await browser.newPage();
    await page.goto(`${url}play/?task=rosenbrock&budget=10&batch=5&autostart=1`);
    await page.waitForSelector('body[data-state=done], body[data-state=error]', { timeout: 120_000 });
    expect(await page.getAttribute('body', 'data-state'), (await page.textContent('#status')) ?? '').toBe('done');
    expect(await page.textContent('#status')).toContain('10 rules trained');
    expect(await page.locator('#leaderboard tbody tr').count()).toBeGreaterThan(0);
    await page.close();
  }, 150_000);

  it('trains MNIST children on tfjs in its workers, on the subset nos dashboard serves', async () => {
    const page = await browser.newPage();
    await page.goto(`${url}play/?task=softmax-mnist&strategy=random&budget=2&steps=30&workers=1&autostart=1`);
    await page.waitForSelector('body[data-state=done], body[data-state=error]', { timeout: 120_000 });
    const status = (await page.textContent('#status')) ?? '';
    expect(await page.getAttribute('body', 'data-state'), status).toBe('done');
    expect(status).toMatch(/2 rules trained.*children on tfjs wasm/);
    // An accuracy on 1,000 validation images: a multiple of 1/1000, and better than chance.
    const best = Number(await page.textContent('#leaderboard tbody tr td:nth-child(2)'));
    expect(best).toBeGreaterThan(0.2);
    await page.close();
  }, 150_000);
});
