import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { describeFlag, flag, HelpRequested, has, intFlag, parseArgs, UsageError } from '../../cli/args.js';
import { COMMANDS, commandSpecs } from '../../cli/main.js';
import { nos, nosBin } from '../helpers/cli.js';
import { repoRoot } from '../helpers/reference.js';

const SPEC = {
  seed: { type: 'string' },
  json: { type: 'bool' },
  set: { type: 'list' },
  task: { type: 'string' },
} as const;

describe('parseArgs (node:util parseArgs underneath)', () => {
  it('parses string, bool and repeatable flags, inline values and values that start with a dash', () => {
    const a = parseArgs(['--seed', '-1', '--json', '--set', 'a=1', '--set=b=2', '--task=quadratic'], SPEC);
    expect(flag(a, 'seed')).toBe('-1');
    expect(has(a, 'json')).toBe(true);
    expect(a.flags.get('set')).toEqual(['a=1', 'b=2']);
    expect(flag(a, 'task')).toBe('quadratic');
    expect(a.positionals).toEqual([]);
  });

  it('keeps positionals that look like short options or numbers (rule text), in order, and everything after --', () => {
    const a = parseArgs(['-g', '--json', 'x', '-5', '--', '--seed', '-h'], SPEC, { positionals: true });
    expect(a.positionals).toEqual(['-g', 'x', '-5', '--seed', '-h']);
    expect(has(a, 'json')).toBe(true);
    expect(has(a, 'seed')).toBe(false);
  });

  it('refuses unknown flags with a suggestion, repeated single flags, values on bool flags, missing values, stray arguments', () => {
    const cases: [string[], RegExp][] = [
      [['--sed', '1'], /unknown flag --sed; did you mean --seed\?/],
      [['--zzzzzz'], /^unknown flag --zzzzzz$/],
      [['--seed', '1', '--seed', '2'], /--seed is given more than once/],
      [['--json=yes'], /--json takes no value/],
      [['--seed'], /--seed needs a value/],
      [['extra'], /unexpected argument 'extra'/],
    ];
    for (const [argv, msg] of cases) {
      expect(() => parseArgs(argv, SPEC), argv.join(' ')).toThrow(UsageError);
      expect(() => parseArgs(argv, SPEC), argv.join(' ')).toThrow(msg);
    }
    expect(() => intFlag(parseArgs(['--seed', '1.5'], SPEC), 'seed', 0)).toThrow(
      /--seed must be an integer >= 0, got '1.5'/,
    );
  });

  it('--help or -h before -- asks for help with the specs parsed against', () => {
    for (const argv of [['--help'], ['--seed', '1', '-h']]) {
      try {
        parseArgs(argv, SPEC);
        expect.unreachable();
      } catch (e) {
        expect(e).toBeInstanceOf(HelpRequested);
        expect((e as HelpRequested).spec).toBe(SPEC);
      }
    }
  });

  it('a command cannot read a flag its specs do not declare (so --help is complete)', () => {
    const a = parseArgs([], SPEC);
    expect(() => flag(a, 'budget')).toThrow(/do not declare/);
    expect(() => has(a, 'resume')).toThrow(/do not declare/);
  });
});

describe('help is generated from the flag specs', () => {
  it('every flag each command accepts appears in its --help, with a value name and a description', async () => {
    for (const name of Object.keys(COMMANDS)) {
      const specs = await commandSpecs(name);
      const r = await nos(name, '--help');
      expect(r.code, name).toBe(0);
      expect(r.stdout, name).toMatch(new RegExp(`^usage: nos ${name}`));
      for (const [f, s] of Object.entries(specs)) {
        const { usage, description } = describeFlag(f, s);
        expect(description.length, `nos ${name} --${f} has no description`).toBeGreaterThan(5);
        expect(r.stdout, `nos ${name} --help lacks --${f}`).toContain(`${usage} `);
        expect(r.stdout).toContain(description);
      }
    }
  });

  it('lists the flags the old hand-written help forgot', async () => {
    const search = (await nos('search', '--help')).stdout;
    for (const f of ['--space FILE.json', '--batch N', '--groups N', '--steps N', '--warm-start', '--resume'])
      expect(search).toContain(f);
    const evalHelp = (await nos('eval', '-h')).stdout;
    for (const f of ['--workers K', '--set k=v']) expect(evalHelp).toContain(f);
  });

  it('help, version and unknown commands follow the contract (exit codes, stderr, no stack trace)', async () => {
    const pkg = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { version: string };
    expect(await nos('--version')).toMatchObject({ code: 0, stdout: pkg.version });
    // From dist/ too (the version is read relative to the module, wherever it runs from).
    expect(nosBin(['--version'])).toMatchObject({ code: 0, stdout: `${pkg.version}\n` });
    const usage = await nos('--help');
    expect(usage.code).toBe(0);
    for (const name of Object.keys(COMMANDS)) expect(usage.stdout).toContain(`  ${name} `);
    const bad = await nos('serch');
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/unknown command 'serch'; did you mean 'search'/);
    const flagTypo = await nos('search', '--budjet', '5');
    expect(flagTypo.code).toBe(1);
    expect(flagTypo.stderr).toBe('nos search: error: unknown flag --budjet; did you mean --budget?');
  });
});
