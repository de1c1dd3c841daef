import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { splitRules } from '../../cli/eval.js';
import { pairedTest } from '../../evaluator/paired.js';
import { nos } from '../helpers/cli.js';
import { scratchDir } from '../helpers/scratch.js';

describe('nos tasks', () => {
  it('lists the child tasks with id, dataset, model, parameter count and steps', async () => {
    const r = await nos('tasks', '--json');
    expect(r.code).toBe(0);
    const tasks = JSON.parse(r.stdout) as {
      id: string;
      dataset: string | null;
      model: string;
      params: number;
      steps: number;
      default: boolean;
    }[];
    expect(tasks.map((t) => t.id)).toEqual([
      'mlp-mnist',
      'convnet-fashion',
      'ae-mnist',
      'char-brown',
      'convnet-fashion-2ep',
      'softmax-mnist',
      'quadratic',
      'rosenbrock',
      'reddi-amsgrad',
    ]);
    // Each says its kind, metric and target, its measured cost and its suite.
    const all = JSON.parse(r.stdout) as {
      id: string;
      kind: string;
      metric: string;
      metricGoal: string;
      target: number;
      secondsPerEvaluation: number | null;
      suite: string | null;
    }[];
    expect(all.find((t) => t.id === 'ae-mnist')).toMatchObject({
      kind: 'autoencoder',
      suite: 'search',
      metricGoal: 'min',
    });
    expect(all.find((t) => t.id === 'char-brown')).toMatchObject({ kind: 'language-model', suite: 'held-out' });
    expect(all.find((t) => t.id === 'char-brown')?.metric).toMatch(/bits per character/);
    for (const t of all) {
      expect(typeof t.target, t.id).toBe('number');
      expect(t.secondsPerEvaluation, t.id).toBeGreaterThan(0);
    }
    expect(tasks.find((t) => t.default)?.id).toBe('mlp-mnist');
    expect(tasks.find((t) => t.id === 'convnet-fashion')).toMatchObject({
      dataset: 'fashion',
      model: 'convnet',
      params: 25258,
    });
    expect((await nos('tasks')).stdout).toContain('mlp-mnist');
  });
});

describe('nos eval', () => {
  it('compares rules over seeds and prints one JSON document in the contract shape', async () => {
    const out = scratchDir('eval-cli');
    const r = await nos(
      'eval',
      '--rules',
      'adam,sgd,(1 + sign(g) * sign(ema(g, 0.9))) * g',
      '--task',
      'quadratic',
      '--seeds',
      '2',
      '--workers',
      '2',
      '--json',
      '--out',
      out,
    );
    expect(r.code, r.stderr).toBe(0);
    const doc = JSON.parse(r.stdout) as {
      task: string;
      results: {
        rule: string;
        bestLr: number;
        valAcc: { mean: number; std: number };
        testAcc: unknown;
        finalLoss: { mean: number };
        status: string;
        seconds: number;
      }[];
    };
    expect(doc.task).toBe('quadratic');
    expect(doc.results.map((x) => x.rule)).toEqual(['adam', 'sgd', '(1 + sign(g) * sign(ema(g, 0.9))) * g']);
    for (const x of doc.results) {
      expect(x.status).toBe('ok');
      expect(x.valAcc.mean).toBeGreaterThan(0);
      expect(x.valAcc.std).toBeGreaterThanOrEqual(0);
      expect(x.seconds).toBeGreaterThan(0);
      expect(typeof x.bestLr).toBe('number');
    }
    expect(doc.results[0]!.valAcc.mean).toBeGreaterThan(doc.results[1]!.valAcc.mean);
    expect(existsSync(join(out, 'results.json'))).toBe(true);
    const svg = readFileSync(join(out, 'curves.svg'), 'utf8');
    expect(svg).toMatch(/^<svg/);
    expect(svg.match(/<polyline/g)?.length).toBe(3);
    expect(r.stderr).toMatch(/\[6\/6\]/);
  });

  it('rejects bad rules, tasks and flags before doing any work', async () => {
    const cases: [string[], RegExp][] = [
      [['eval', '--task', 'quadratic'], /--rules is required/],
      [['eval', '--rules', 'adam,g * sigm(m)', '--task', 'quadratic'], /did you mean 'sign'/],
      [['eval', '--rules', 'adam', '--task', 'mlp-mnis'], /unknown task 'mlp-mnis'; did you mean 'mlp-mnist'/],
      [['eval', '--rules', 'adam', '--task', 'quadratic', '--seeds', '0'], /--seeds must be an integer >= 1/],
      [['eval', '--rules', 'adam', '--task', 'quadratic', '--lrs', '0.1,x'], /--lrs expects positive numbers/],
    ];
    for (const [argv, msg] of cases) {
      const r = await nos(...argv);
      expect(r.code, argv.join(' ')).toBe(1);
      expect(r.stderr).toMatch(msg);
    }
  });

  it('--out is checked before any training: an existing file, a path under a file, a system folder', async () => {
    const dir = scratchDir('eval-out');
    const file = join(dir, 'results');
    writeFileSync(file, 'mine');
    const cases: [string, RegExp][] = [
      [file, /--out .*results is an existing file: --out names a folder to write the results into/],
      [join(file, 'sub'), /--out .*results\/sub: cannot be created, because .*results is a file/],
      ['/proc/nos-eval-out', /--out '\/proc\/nos-eval-out' is under \/proc, a system folder: pick another place/],
      ['/proc/self/nos', /under \/proc, a system folder/],
      ['/sys/nos', /under \/sys, a system folder/],
    ];
    for (const [out, msg] of cases) {
      const r = await nos('eval', '--rules', 'adam', '--task', 'quadratic', '--workers', '1', '--out', out);
      expect(r.code, out).toBe(1);
      expect(r.stderr, out).toMatch(msg);
      expect(r.stderr, out).not.toMatch(/\[1\/1\]/);
      expect(r.stdout).toBe('');
    }
    expect(readFileSync(file, 'utf8')).toBe('mine');
  });

  it('refuses an --out whose results.json is a folder before training (a write error that happens anyway loses nothing: tests/cli/hardening-cli.test.ts)', async () => {
    const out = scratchDir('eval-out-broken');
    mkdirSync(join(out, 'results.json')); // a folder where the file should go
    const r = await nos('eval', '--rules', 'adam,sgd', '--task', 'quadratic', '--workers', '1', '--json', '--out', out);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(
      /nos eval: error: --out .*eval-out-broken-[0-9a-f]{8}: .*results\.json is a folder, so results\.json cannot be written there/,
    );
  });

  it('--workers above the number of cores is capped, with a message', async () => {
    const r = await nos('eval', '--rules', 'sgd', '--task', 'quadratic', '--workers', '999', '--json');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/--workers 999: using \d+, the number of cores here/);
  });

  it('splits --rules on top-level commas only', () => {
    expect(splitRules('adam, ema(g, 0.9) * g,rule x(a = 1, b = 2) = a * g')).toEqual([
      'adam',
      'ema(g, 0.9) * g',
      'rule x(a = 1, b = 2) = a * g',
    ]);
    expect(splitRules('adam,@powersign-ld(T = 5, base = 2),sgd')).toEqual([
      'adam',
      '@powersign-ld(T = 5, base = 2)',
      'sgd',
    ]);
  });
});

describe('nos eval with layers around the rule', () => {
  it('--schedule, --weight-decay and --analyze report the gap, sharpness and the snapshot ensemble', async () => {
    const r = await nos(
      'eval',
      '--rules',
      'adam,sgd',
      '--task',
      'mlp-mnist',
      '--steps',
      '40',
      '--lrs',
      '0.01',
      '--schedule',
      'sgdr:first=0.25,mult=1',
      '--weight-decay',
      '0.0001',
      '--analyze',
      '--json',
      '--workers',
      '2',
    );
    expect(r.code, r.stderr).toBe(0);
    const doc = JSON.parse(r.stdout) as {
      schedule: string;
      weightDecay: number;
      results: {
        rule: string;
        analysis: {
          sharpness: { mean: number };
          gapAcc: { mean: number };
          ensembleValAcc: { mean: number };
          snapshots: number;
        };
      }[];
    };
    expect(doc.schedule).toBe('sgdr:first=0.25,mult=1');
    expect(doc.weightDecay).toBe(0.0001);
    for (const x of doc.results) {
      expect(x.analysis.sharpness.mean).toBeGreaterThan(0);
      expect(typeof x.analysis.gapAcc.mean).toBe('number');
      expect(x.analysis.ensembleValAcc.mean).toBeGreaterThan(x.rule === 'adam' ? 0.5 : 0);
      expect(x.analysis.snapshots).toBe(4);
    }
  });

  it('rejects a bad schedule and batch growth without a schedule', async () => {
    expect((await nos('eval', '--rules', 'adam', '--task', 'quadratic', '--schedule', 'cosin')).stderr).toMatch(
      /unknown schedule 'cosin'; did you mean 'cosine'/,
    );
    expect((await nos('eval', '--rules', 'adam', '--task', 'quadratic', '--batch-growth')).stderr).toMatch(
      /--batch-growth needs/,
    );
    expect((await nos('eval', '--rules', 'adam', '--task', 'quadratic', '--weight-decay', '-1')).code).toBe(1);
  });
});

describe('nos eval --baseline', () => {
  type PerSeed = { seed: number; valAcc: number | null; testAcc: number | null; bestLr: number | null };
  type Vs = {
    baseline: string;
    seeds: number;
    accuracy: string;
    diff: { mean: number; ci95: [number, number] | null };
    p: number | null;
    test: string;
    verdict: string;
  };
  type Doc = {
    baseline: string;
    compared: string;
    results: { rule: string; baseline?: true; perSeed: PerSeed[]; vsBaseline?: Vs }[];
  };

  it('adds the baseline, pairs by seed, and reports what pairedTest gives for the per-seed accuracies it prints', async () => {
    const r = await nos(
      'eval',
      '--rules',
      'sgd,(1 + sign(g) * sign(ema(g, 0.9))) * g',
      '--baseline',
      'adam',
      '--task',
      'quadratic',
      '--seeds',
      '3',
      '--steps',
      '60',
      '--workers',
      '2',
      '--json',
    );
    expect(r.code, r.stderr).toBe(0);
    const doc = JSON.parse(r.stdout) as Doc;
    expect(doc.results.map((x) => x.rule)).toEqual(['sgd', '(1 + sign(g) * sign(ema(g, 0.9))) * g', 'adam']);
    expect(doc.baseline).toBe('adam');
    const base = doc.results[2]!;
    expect(base.baseline).toBe(true);
    expect(base.vsBaseline).toBeUndefined();
    const key = doc.compared === 'test accuracy' ? 'testAcc' : 'valAcc';
    expect(['test accuracy', 'validation accuracy']).toContain(doc.compared);
    for (const x of doc.results) {
      expect(x.perSeed.map((s) => s.seed)).toEqual([0, 1, 2]);
      for (const s of x.perSeed) expect([1e-4, 1e-3, 1e-2, 1e-1, 1]).toContain(s.bestLr);
    }
    for (const x of doc.results.slice(0, 2)) {
      const vs = x.vsBaseline!;
      expect(Object.keys(vs).sort()).toEqual(['accuracy', 'baseline', 'diff', 'p', 'seeds', 'test', 'verdict']);
      const want = pairedTest(
        x.perSeed.map((s) => s[key] as number),
        base.perSeed.map((s) => s[key] as number),
      );
      expect(vs).toMatchObject({
        baseline: 'adam',
        seeds: 3,
        test: 'paired t-test (two-sided)',
        verdict: want.verdict,
        p: want.p,
      });
      expect(vs.diff.mean).toBeCloseTo(want.mean, 12);
      expect(vs.diff.ci95).toEqual(want.ci95);
      expect(['better', 'worse', 'tied']).toContain(vs.verdict);
    }
  });

  it('reuses a listed baseline, and with one seed has no interval or p, a tied verdict and a note', async () => {
    const r = await nos(
      'eval',
      '--rules',
      'adam,sgd',
      '--baseline',
      'adam',
      '--task',
      'quadratic',
      '--steps',
      '30',
      '--lrs',
      '0.1',
    );
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/vs adam \((test|validation) acc/);
    expect(r.stdout).toMatch(/\(baseline\)/);
    expect(r.stdout).toMatch(/\(1 seed\) tied/);
    expect(r.stdout).toMatch(/needs more seeds/);
    const j = await nos(
      'eval',
      '--rules',
      'adam,sgd',
      '--baseline',
      'adam',
      '--task',
      'quadratic',
      '--steps',
      '30',
      '--lrs',
      '0.1',
      '--json',
    );
    const doc = JSON.parse(j.stdout) as Doc;
    expect(doc.results.map((x) => x.rule)).toEqual(['adam', 'sgd']);
    expect(doc.results[1]!.vsBaseline).toMatchObject({ seeds: 1, diff: { ci95: null }, p: null, verdict: 'tied' });
    expect(j.stderr).toMatch(/needs more seeds/);
  });

  it('refuses an unknown baseline and bad --set values before training', async () => {
    const bad = await nos('eval', '--rules', 'sgd', '--baseline', 'nosuch', '--task', 'quadratic');
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/--baseline 'nosuch' is not a rule/);
    for (const [set, msg] of [
      ['beta1=0x1', /--set beta1=0x1/],
      ['beta1=2', /--set beta1=2/],
      ['nosuch=1', /--set nosuch: no rule in --rules/],
    ] as const) {
      const x = await nos('eval', '--rules', 'adam,sgd', '--task', 'quadratic', '--set', set);
      expect(x.code, set).toBe(1);
      expect(x.stderr).toMatch(msg);
    }
    const twice = await nos(
      'eval',
      '--rules',
      'adam',
      '--task',
      'quadratic',
      '--set',
      'beta1=0.8',
      '--set',
      'beta1=0.7',
    );
    expect(twice.code).toBe(1);
    expect(twice.stderr).toMatch(/more than once/);
  });
});
