import { describe, expect, it } from 'vitest';
import { library } from '../../dsl/index.js';
import { traceInterp } from '../../dsl/interp.js';
import { nos, nosBin, tempFile } from '../helpers/cli.js';
import { maxAbsDiff, signCaseRule, signReference, torchGolden } from '../helpers/reference.js';

describe('nos check', () => {
  it('prints the canonical form of a valid rule and exits 0', async () => {
    const r = await nos('check', 'exp(sign(g)*sign(m))*g');
    expect(r).toEqual({ code: 0, stdout: 'exp(sign(ema(g, 0.9)) * sign(g)) * g', stderr: '' });
  });

  it('prints located errors with the line and a caret, and exits 1', async () => {
    const r = await nos('check', 'sign(g) * sigm(m)');
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe("<arg>:1:11: error: unknown function 'sigm'; did you mean 'sign'?\nsign(g) * sigm(m)\n          ^~~~");
  });

  it('checks files with several rules, naming the file in each error', async () => {
    const good = tempFile('good.nos', 'rule a(k = 2) = k * sign(g)\n\n# uses a\nrule b = a * m\n');
    const r = await nos('check', '--file', good);
    expect(r.code).toBe(0);
    expect(r.stdout.split('\n')).toEqual(['rule a(k = 2) = k * sign(g)', 'rule b = 2 * sign(g) * ema(g, 0.9)']);
    const badFile = tempFile('bad.nos', 'rule a = sign(g)\nrule b = exp(g +\nrule c = w\n');
    const b = await nos('check', '--file', badFile);
    expect(b.code).toBe(1);
    expect(b.stderr).toMatch(new RegExp(`^${badFile.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:3:1: error: `));
    expect(b.stderr.split('\n')[1]).toBe('rule c = w');
  });

  it('--json gives one document with the rules or the diagnostics', async () => {
    const r = await nos('check', '--json', 'adam * 2');
    expect(r.code).toBe(0);
    const doc = JSON.parse(r.stdout) as { ok: boolean; rules: { text: string; hash: string }[] };
    expect(doc.ok).toBe(true);
    expect(doc.rules[0]?.hash).toMatch(/^[0-9a-f]{16}$/);
    const bad = await nos('check', '--json', 'g +');
    expect(bad.code).toBe(1);
    expect(JSON.parse(bad.stdout)).toMatchObject({ ok: false, diagnostics: [{ code: 'syntax', line: 1, col: 4 }] });
  });

  it('user errors exit 1 with a message, not a stack trace', async () => {
    for (const argv of [['check'], ['check', '--file', '/nonexistent.nos'], ['check', '--fiel', 'x'], ['chek', 'g'], ['rules', 'extra']]) {
      const r = await nos(...argv);
      expect(r.code, argv.join(' ')).toBe(1);
      expect(r.stderr, argv.join(' ')).toMatch(/error: /);
      expect(r.stderr).not.toMatch(/\n\s+at /);
    }
    expect((await nos('chek')).stderr).toMatch(/did you mean 'check'/);
    expect((await nos('check', '--fiel', 'x')).stderr).toMatch(/did you mean --file/);
  });
});

describe('nos rules', () => {
  it('lists the whole library as JSON with exact names and defaults', async () => {
    const r = await nos('rules', '--json');
    expect(r.code).toBe(0);
    const rules = JSON.parse(r.stdout) as { name: string; params: Record<string, number>; text: string }[];
    expect(rules.map((x) => x.name)).toEqual([
      'sgd', 'momentum', 'nesterov', 'adam', 'amsgrad', 'adamw', 'sgdw', 'rmsprop', 'adagrad', 'lion', 'signum',
      'powersign', 'addsign', 'powersign-ld', 'powersign-cd', 'powersign-rd', 'addsign-ld', 'addsign-cd', 'addsign-rd',
    ]);
    const byName = new Map(rules.map((x) => [x.name, x]));
    expect(byName.get('adam')?.params).toEqual({ beta1: 0.9, beta2: 0.999, eps: 1e-8 });
    expect(byName.get('adamw')?.params).toEqual({ beta1: 0.9, beta2: 0.999, eps: 1e-8, wd: 0.01 });
    expect(byName.get('lion')?.params).toEqual({ beta1: 0.9, beta2: 0.99, wd: 0 });
    expect(byName.get('powersign')?.params).toEqual({ base: Math.E, beta: 0.9 });
    expect(byName.get('powersign-cd')?.params).toEqual({ base: Math.E, beta: 0.9, periods: 0.5, T: 1000 });
    expect(byName.get('addsign-rd')?.params).toEqual({ alpha: 1, beta: 0.9, periods: 1, T: 1000 });
    expect(byName.get('rmsprop')?.params).toEqual({ decay: 0.99, eps: 1e-8 });
    expect(byName.get('adagrad')?.params).toEqual({ eps: 1e-10 });
    // Each text is rule text that checks to itself.
    for (const x of rules) {
      const c = await nos('check', x.text);
      expect(c.stdout, x.name).toBe(x.text);
    }
  });

  it('prints a readable table without --json', async () => {
    const r = await nos('rules');
    expect(r.stdout).toContain('adam  (beta1=0.9, beta2=0.999, eps=1e-8)');
    expect(r.stdout).toContain('d = ');
  });
});

describe('nos trace', () => {
  const ref = signReference();
  const input = tempFile('in.json', JSON.stringify({ w0: ref.w0, grads: ref.grads }));

  for (const c of ref.cases) {
    it(`reproduces the ${c.name} reference trajectory through the CLI`, async () => {
      const { rule, params, lr } = signCaseRule(c);
      const sets = Object.entries(params).flatMap(([k, v]) => ['--set', `${k}=${v}`]);
      const r = await nos('trace', '--rule', rule, '--lr', String(lr), '--input', input, ...sets, '--json');
      expect(r.code, r.stderr).toBe(0);
      const { weights } = JSON.parse(r.stdout) as { weights: number[][] };
      expect(maxAbsDiff(weights, c.weights_after_each_step)).toBeLessThan(1e-6);
    });
  }

  it('runs every built-in rule and matches the interpreter', async () => {
    const torch = torchGolden();
    const file = tempFile('torch.json', JSON.stringify({ w0: torch.w0, grads: torch.grads }));
    for (const name of library().keys()) {
      const r = await nos('trace', '--rule', name, '--lr', '0.01', '--input', file, '--json');
      expect(r.code, `${name}: ${r.stderr}`).toBe(0);
      const { weights } = JSON.parse(r.stdout) as { weights: number[][] };
      expect(weights).toHaveLength(torch.grads.length);
      expect(weights).toEqual(traceInterp(library().get(name)!, torch, 0.01));
    }
  });

  it('accepts rule text, and rule files', async () => {
    const text = await nos('trace', '--rule', 'sign(g) * 2', '--lr', '0.5', '--input', input, '--json');
    expect((JSON.parse(text.stdout) as { weights: number[][] }).weights[0]).toEqual([0, 0.5, 0.25]);
    const f = tempFile('mine.nos', 'rule mine(k = 3) = k * g\n');
    const viaFile = await nos('trace', '--rule', f, '--lr', '1', '--input', input, '--set', 'k=1', '--json');
    expect((JSON.parse(viaFile.stdout) as { weights: number[][] }).weights[0]).toEqual([0.5, Math.fround(-0.5 - Math.fround(-0.3)), 0.25]);
  });

  it('seeds noise: same seed, same weights', async () => {
    const run = async (seed: string) => (await nos('trace', '--rule', 'g + noise', '--lr', '1', '--input', input, '--seed', seed, '--json')).stdout;
    expect(await run('5')).toBe(await run('5'));
    expect(await run('5')).not.toBe(await run('6'));
  });

  it('reports bad input clearly', async () => {
    const wrongLength = tempFile('bad.json', JSON.stringify({ w0: [1, 2], grads: [[1, 2], [3]] }));
    const notJson = tempFile('bad2.json', '{"w0": [1,');
    const cases: [string[], RegExp][] = [
      [['trace', '--lr', '0.1', '--input', input], /--rule is required/],
      [['trace', '--rule', 'adam', '--input', input], /--lr is required/],
      [['trace', '--rule', 'adam', '--lr', 'abc', '--input', input], /--lr must be a finite number/],
      [['trace', '--rule', 'adam', '--lr', '0.1'], /--input/],
      [['trace', '--rule', 'adam', '--lr', '0.1', '--input', wrongLength], /grads\[1\] has 1 numbers but w0 has 2/],
      [['trace', '--rule', 'adam', '--lr', '0.1', '--input', notJson], /not valid JSON/],
      [['trace', '--rule', 'adam', '--lr', '0.1', '--input', input, '--set', 'beta=0.5'], /unknown hyperparameter 'beta'/],
      [['trace', '--rule', 'adam', '--lr', '0.1', '--input', input, '--set', 'beta1'], /name=value/],
      [['trace', '--rule', 'adam', '--lr', '0.1', '--input', input, '--backend', 'cuda'], /not available/],
      [['trace', '--rule', 'adma', '--lr', '0.1', '--input', input], /did you mean 'adam'/],
    ];
    for (const [argv, msg] of cases) {
      const r = await nos(...argv);
      expect(r.code, argv.join(' ')).toBe(1);
      expect(r.stderr, argv.join(' ')).toMatch(msg);
      expect(r.stdout).toBe('');
    }
  });
});

describe('the nos binary', () => {
  it('runs check, rules and trace as a child process with the contract exit codes', () => {
    expect(nosBin(['check', 'sign(g)*g'])).toMatchObject({ code: 0, stdout: 'g * sign(g)\n' });
    const bad = nosBin(['check', 'g +']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('<arg>:1:4: error:');
    const rules = nosBin(['rules', '--json']);
    expect(rules.code).toBe(0);
    expect(JSON.parse(rules.stdout)).toHaveLength(library().size);
    expect(nosBin(['--help']).stdout).toContain('nos check');
  });
});
