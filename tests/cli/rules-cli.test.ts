import { spawnSync } from 'node:child_process';
import { closeSync, ftruncateSync, mkdtempSync, openSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { compileRules, library } from '../../dsl/index.js';
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
    expect(r.stderr).toBe(
      "<arg>:1:11: error: unknown function 'sigm'; did you mean 'sign'?\nsign(g) * sigm(m)\n          ^~~~",
    );
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
    for (const argv of [
      ['check'],
      ['check', '--file', '/nonexistent.nos'],
      ['check', '--fiel', 'x'],
      ['chek', 'g'],
      ['rules', 'extra'],
    ]) {
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
      'sgd',
      'momentum',
      'nesterov',
      'adam',
      'amsgrad',
      'adamw',
      'sgdw',
      'rmsprop',
      'adagrad',
      'lion',
      'signum',
      'powersign',
      'addsign',
      'powersign-ld',
      'powersign-cd',
      'powersign-rd',
      'addsign-ld',
      'addsign-cd',
      'addsign-rd',
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
    expect((JSON.parse(viaFile.stdout) as { weights: number[][] }).weights[0]).toEqual([
      0.5,
      Math.fround(-0.5 - Math.fround(-0.3)),
      0.25,
    ]);
  });

  it('seeds noise: same seed, same weights', async () => {
    const run = async (seed: string) =>
      (await nos('trace', '--rule', 'g + noise', '--lr', '1', '--input', input, '--seed', seed, '--json')).stdout;
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
      [
        ['trace', '--rule', 'adam', '--lr', '0.1', '--input', input, '--set', 'beta=0.5'],
        /unknown hyperparameter 'beta'/,
      ],
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

describe('nos trace --set', () => {
  const input = tempFile(
    'set.json',
    JSON.stringify({
      w0: [1, -0.5],
      grads: [
        [0.5, -0.3],
        [-0.2, -0.1],
      ],
    }),
  );
  const trace = (...argv: string[]) => nos('trace', '--lr', '0.1', '--input', input, '--json', ...argv);

  it('refuses values out of range, past the number limit, or not decimal, naming the flag, the hyperparameter and the range', async () => {
    const cases: [string[], string][] = [
      [
        ['--rule', 'adam', '--set', 'beta1=5'],
        "--set beta1=5: hyperparameter 'beta1' is 5; it must be in [0, 1] (argument 'beta' of 'ema')",
      ],
      [
        ['--rule', 'adam', '--set', 'beta2=-0.1'],
        "--set beta2=-0.1: hyperparameter 'beta2' is -0.1; it must be in [0, 1] (argument 'beta' of 'ema')",
      ],
      [
        ['--rule', 'adam', '--set', 'eps=1e300'],
        '--set eps=1e300: 1e300 is too large (numbers are limited to 1e+30 in magnitude)',
      ],
      [
        ['--rule', 'adam', '--set', 'eps=-2e30'],
        '--set eps=-2e30: -2e30 is too large (numbers are limited to 1e+30 in magnitude)',
      ],
      [
        ['--rule', 'adam', '--set', 'beta1=0x1'],
        "--set beta1=0x1: '0x1' is not a decimal number (such as 0.9, -2, 1e-8)",
      ],
      [
        ['--rule', 'adam', '--set', 'beta1=0b1'],
        "--set beta1=0b1: '0b1' is not a decimal number (such as 0.9, -2, 1e-8)",
      ],
      [
        ['--rule', 'adam', '--set', 'beta1=0o7'],
        "--set beta1=0o7: '0o7' is not a decimal number (such as 0.9, -2, 1e-8)",
      ],
      [
        ['--rule', 'adam', '--set', 'beta1=Infinity'],
        "--set beta1=Infinity: 'Infinity' is not a decimal number (such as 0.9, -2, 1e-8)",
      ],
      [
        ['--rule', 'adam', '--set', 'beta1=NaN'],
        "--set beta1=NaN: 'NaN' is not a decimal number (such as 0.9, -2, 1e-8)",
      ],
      [['--rule', 'adam', '--set', 'beta1='], '--set beta1=: a number is required, got nothing'],
      [['--rule', 'adam', '--set', 'beta1=0.5', '--set', 'beta1=0.6'], '--set beta1 is given more than once'],
      [
        ['--rule', 'powersign-ld', '--set', 'T=0'],
        "--set T=0: hyperparameter 'T' is 0; it must be in (0, inf) (argument 'steps' of 'lindecay')",
      ],
      [
        ['--rule', 'rule r(p = 0.1) = drop(g, p)', '--set', 'p=1'],
        "--set p=1: hyperparameter 'p' is 1; it must be in [0, 1) (argument 'p' of 'drop')",
      ],
      [
        ['--rule', 'rule r(c = 1) = clip(g, c)', '--set', 'c=-0'],
        "--set c=-0: hyperparameter 'c' is 0; it must be in (0, inf) (argument 'c' of 'clip')",
      ],
    ];
    for (const [argv, message] of cases) {
      const r = await trace(...argv);
      expect(r.code, argv.join(' ')).toBe(1);
      expect(r.stdout, argv.join(' ')).toBe('');
      expect(r.stderr, argv.join(' ')).toBe(`nos trace: error: ${message}`);
    }
  });

  it('accepts decimal values at the edges of the ranges', async () => {
    for (const set of ['beta1=0', 'beta1=-0', 'beta1=+0.5', 'eps=1e30', 'eps=1e-400', 'beta2=.9']) {
      const r = await trace('--rule', 'adam', '--set', set);
      expect(r.code, `${set}: ${r.stderr}`).toBe(0);
    }
    // beta1=1 is in range, but Adam's bias correction 1 - beta1^t is then 0: accepted, and the
    // trace says why its weights are not numbers (it printed null weights and exit 0 before).
    const one = await trace('--rule', 'adam', '--set', 'beta1=1');
    expect(one.code).toBe(1);
    expect(one.stderr).toMatch(/the weights are not finite from step 1 on .*bias correction/);
  });

  it('takes hyperparameters named toString, constructor, valueOf, hasOwnProperty', async () => {
    const text =
      'rule r(toString = 0.5, constructor = 2, valueOf = 1, hasOwnProperty = 0) = toString * constructor * valueOf * g + hasOwnProperty';
    const rule = compileRules(text).rules[0]!;
    const g = {
      w0: [1, -0.5],
      grads: [
        [0.5, -0.3],
        [-0.2, -0.1],
      ],
    };
    const run = async (...sets: string[]) => {
      const r = await trace('--rule', text, ...sets.flatMap((s) => ['--set', s]));
      expect(r.code, r.stderr).toBe(0);
      return (JSON.parse(r.stdout) as { weights: number[][] }).weights;
    };
    expect(await run()).toEqual(traceInterp(rule, g, 0.1));
    expect(await run('toString=0.3')).toEqual(traceInterp(rule, g, 0.1, { params: { toString: 0.3 } }));
    expect(await run('toString=0.3')).not.toEqual(await run());
    expect(await run('constructor=4', 'valueOf=0.5', 'hasOwnProperty=0.01')).toEqual(
      traceInterp(rule, g, 0.1, { params: { constructor: 4, valueOf: 0.5, hasOwnProperty: 0.01 } }),
    );
    const unknown = await trace('--rule', 'adam', '--set', 'toString=1');
    expect(unknown.stderr).toMatch(/--set toString=1: unknown hyperparameter 'toString'/);
  });
});

describe('files nos reads', () => {
  const dir = mkdtempSync(join(tmpdir(), 'nos-files-'));
  /** A file of `bytes` zero bytes that takes no disk space. */
  const sparse = (name: string, bytes: number): string => {
    const path = join(dir, name);
    const fd = openSync(path, 'w');
    ftruncateSync(fd, bytes);
    closeSync(fd);
    return path;
  };

  it('refuses devices and FIFOs without reading them (a child process, so a regression cannot hang the tests)', () => {
    const fifo = join(dir, 'rules.fifo');
    expect(spawnSync('mkfifo', [fifo]).status).toBe(0);
    for (const argv of [
      ['check', '--file', '/dev/zero'],
      ['check', '--file', fifo],
      ['trace', '--rule', 'adam', '--lr', '0.1', '--input', '/dev/zero'],
      ['trace', '--rule', 'adam', '--lr', '0.1', '--input', fifo],
      ['trace', '--rule', '/dev/zero/x.nos', '--lr', '0.1', '--input', fifo],
    ]) {
      const r = nosBin(argv, { timeoutMs: 20_000 });
      expect(r.code, argv.join(' ')).toBe(1);
      expect(r.stderr, argv.join(' ')).toMatch(
        /error: \/(dev\/zero|.*rules\.fifo)(\/x\.nos)?: (not a regular file \(a device, FIFO or socket\); give the path of a file|a part of the path is not a directory)\n$/,
      );
    }
  });

  it('refuses files over the limit before reading them, and says what the limit is', async () => {
    const huge = sparse('huge.nos', 100 * 1024 * 1024);
    const r = await nos('check', '--file', huge);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(
      `nos check: error: ${huge}: the file is 104857600 bytes; rule text is limited to 200000 characters`,
    );
    // Under the byte bound but over the character limit: read, then refused by length.
    const long = join(dir, 'long.nos');
    writeFileSync(long, `${'g'.repeat(250_000)}\n`);
    expect((await nos('check', '--file', long)).stderr).toBe(
      `nos check: error: ${long}: the file is 250001 characters; rule text is limited to 200000 characters`,
    );
    const input = sparse('huge.json', 65 * 1024 * 1024);
    const t = await nos('trace', '--rule', 'adam', '--lr', '0.1', '--input', input);
    expect(t.stderr).toBe(
      `nos trace: error: ${input}: the file is 68157440 bytes; the trace input is limited to 67108864 bytes`,
    );
    const binary = join(dir, 'bin.nos');
    writeFileSync(binary, Buffer.from([0x67, 0xff, 0xfe, 0x2a]));
    expect((await nos('check', '--file', binary)).stderr).toBe(`nos check: error: ${binary}: not UTF-8 text`);
    expect((await nos('check', '--file', dir)).stderr).toBe(`nos check: error: ${dir}: is a directory, not a file`);
  });

  it('echoes at most ~160 characters of a long line around the problem', async () => {
    const path = join(dir, 'oneline.nos');
    writeFileSync(path, `${'g + '.repeat(1000)}${' '.repeat(150_000)}sigm(g)${' '.repeat(40_000)}`);
    const r = await nos('check', '--file', path);
    expect(r.code).toBe(1);
    const [head, line, caret] = r.stderr.split('\n');
    expect(head).toBe(`${path}:1:154001: error: unknown function 'sigm'; did you mean 'sign'?`);
    expect(line!.length).toBeLessThanOrEqual(166);
    expect(line!.slice(caret!.indexOf('^'), caret!.indexOf('^') + 4)).toBe('sigm');
    expect(r.stderr.length).toBeLessThan(600);
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
