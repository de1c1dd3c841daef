/**
 * The tables in docs/MANUAL.md that restate code, checked against the code: the language
 * (primitives/registry.ts), the built-in rules (dsl/library.ts), the child tasks
 * (evaluator/tasks.ts) and the funnel's defaults (controller/funnel-plan.ts and the run config's
 * resolution in controller/run.ts). A change on either side without the other fails here.
 */
import { describe, expect, it } from 'vitest';
import { FUNNEL_DEFAULTS } from '../../controller/funnel-plan.js';
import { funnelConfig, SUITE_DEFAULTS, suiteFunnel } from '../../controller/run.js';
import { library } from '../../dsl/index.js';
import { findTask, parameterCount, TASKS } from '../../evaluator/tasks.js';
import { ALIASES, CONSTANTS, CONTEXT_PARAMS, LEAVES, PRIMITIVES } from '../../primitives/registry.js';
import { codeSpans, readDoc, table } from '../helpers/markdown.js';

const MANUAL = 'docs/MANUAL.md';
const manual = readDoc(MANUAL);

/** A code span that names something (`clip(x, c)`, `T`): its name and the number of arguments it shows. */
function signature(span: string): { name: string; args: number | null } | undefined {
  const m = /^([A-Za-z][A-Za-z0-9]*)(?:\((.*)\))?$/.exec(span.trim());
  if (!m) return undefined;
  const inside = m[2];
  return { name: m[1] as string, args: inside === undefined ? null : inside.split(',').length };
}

/** The names a cell shows in code spans (other spans, such as file names, are prose). */
function named(cell: string): { name: string; args: number | null }[] {
  return codeSpans(cell).flatMap((s) => signature(s) ?? []);
}

function rowsByKey(rows: readonly string[][]): Map<string, string> {
  return new Map(rows.map((r) => [r[0] as string, r.slice(1).join(' | ')]));
}

describe('the language table', () => {
  const rows = rowsByKey(table(manual, ['kind', 'names']));
  const byCategory = (c: string) => PRIMITIVES.filter((p) => p.category === c && !p.operator);

  it('has one row per kind of name, in this order', () => {
    expect([...rows.keys()]).toEqual([
      'values',
      'operators',
      'functions',
      'state',
      'schedules',
      'stochastic',
      'NOS names',
      'rules',
    ]);
  });

  it('values: the registry leaves, context parameters and constants', () => {
    const names = named(rows.get('values') ?? '').map((s) => s.name);
    expect(new Set(names)).toEqual(
      new Set([...LEAVES.map((l) => l.name), ...CONTEXT_PARAMS.keys(), ...CONSTANTS.keys()]),
    );
  });

  it('operators: the registry operators, infix and prefix', () => {
    const row = rows.get('operators') ?? '';
    const symbols = new Set(
      codeSpans(row)
        .filter((s) => /^[-+*/^ ]+$/.test(s))
        .flatMap((s) => s.split(/\s+/)),
    );
    expect(symbols).toEqual(new Set(PRIMITIVES.flatMap((p) => (p.operator ? [p.operator.symbol] : []))));
    const prefix = PRIMITIVES.filter((p) => p.operator?.prefix).map((p) => p.operator?.symbol);
    for (const s of prefix) expect(row).toContain(`unary \`${s}\``);
  });

  for (const [row, category, extra] of [
    ['functions', 'elementwise', []],
    ['state', 'state', ['prev']],
    ['schedules', 'schedule', []],
    ['stochastic', 'stochastic', []],
  ] as const) {
    it(`${row}: every ${category} primitive of the registry, with its arity where arguments are shown`, () => {
      const shown = named(rows.get(row) ?? '');
      expect(new Set(shown.map((s) => s.name))).toEqual(
        new Set([...byCategory(category).map((p) => p.name), ...extra]),
      );
      for (const s of shown) {
        const p = PRIMITIVES.find((x) => x.name === s.name);
        if (p !== undefined && s.args !== null) expect(s.args, s.name).toBe(p.arity);
      }
    });
  }

  it('the rows together name every primitive of the registry', () => {
    const all = new Set(
      ['functions', 'state', 'schedules', 'stochastic'].flatMap((r) => named(rows.get(r) ?? '').map((s) => s.name)),
    );
    for (const p of PRIMITIVES) if (!p.operator) expect(all.has(p.name), p.name).toBe(true);
  });

  it('NOS names: each short name with its expansion', () => {
    const row = rows.get('NOS names') ?? '';
    const pairs = [...row.matchAll(/`([^`]+)` = `([^`]+)`/g)].map((m) => [m[1], m[2]]);
    const shortOnly = codeSpans(row.replace(/`[^`]+` = `[^`]+`/g, ''));
    const expected = ALIASES.map((a) => [a.name, a.text]);
    // Written out (`m` = `ema(g, 0.9)`) or named alone (`ld`): the names are the registry's, the
    // expansions given are its texts.
    expect(new Set([...pairs.map((p) => p[0]), ...shortOnly])).toEqual(new Set(ALIASES.map((a) => a.name)));
    for (const p of pairs) expect(expected).toContainEqual(p);
  });
});

describe('the built-in rules table', () => {
  const rows = table(manual, ['name', 'hyperparameters', 'd_t']);
  const lib = library();
  const declared = (name: string) =>
    Object.fromEntries(
      (lib.get(name)?.params ?? []).filter((p) => !CONTEXT_PARAMS.has(p.name)).map((p) => [p.name, p.default]),
    );
  const value = (text: string) => (text === 'e' ? Math.E : Number(text));

  /** `powersign-ld/-cd/-rd, addsign-ld/-cd/-rd` -> the six names. */
  function names(cell: string): string[] {
    return cell.split(/,\s*/).flatMap((part) => {
      const [first = '', ...more] = part.trim().split('/');
      const stem = first.replace(/-[a-z]+$/, '');
      return [first, ...more.map((s) => stem + s)];
    });
  }

  it('lists every built-in rule once', () => {
    const listed = rows.flatMap((r) => names(r[0] as string));
    expect(listed.slice().sort()).toEqual([...lib.keys()].sort());
  });

  it("gives each rule's hyperparameters and defaults as the library declares them", () => {
    for (const [nameCell = '', params = ''] of rows) {
      const given = Object.fromEntries(
        [...params.matchAll(/([A-Za-z][A-Za-z0-9]*)=([^,\s)]+)/g)].map((m) => [m[1], value(m[2] as string)]),
      );
      const as = /^as ([a-z][a-z0-9-]*)\b/.exec(params);
      for (const name of names(nameCell)) {
        const want = declared(name);
        if (params === '–') expect(want, name).toEqual({});
        else if (/^as above/.test(params)) {
          // `as above + T (cd: periods=0.5, rd: periods=1)`: the stem rule's, plus the variant's own.
          const [stem = '', variant = ''] = name.split('-');
          const own = [...params.matchAll(/([a-z]+): ([A-Za-z]+)=([^,\s)]+)/g)].filter((m) => m[1] === variant);
          const extra = Object.fromEntries(own.map((m) => [m[2], value(m[3] as string)]));
          expect({ ...declared(stem), ...extra }, name).toEqual(want);
          expect(params, name).toMatch(/\+ T\b/);
          expect(
            lib.get(name)?.params.map((p) => p.name),
            name,
          ).toContain('T');
        } else if (as) expect({ ...declared(as[1] as string), ...given }, name).toEqual(want);
        else expect(given, name).toEqual(want);
      }
    }
  });
});

describe('the tasks table', () => {
  const rows = table(manual, ['task', 'kind', 'suite', 'data', 'model', 'parameters', 'metric (target)']);

  it('lists every task with its kind, suite and parameter count as evaluator/tasks.ts has them', () => {
    const listed: string[] = [];
    for (const [ids = '', kind, suite, , , params] of rows) {
      const spans = codeSpans(ids);
      const counts = (params ?? '').split(/,\s+/).map((c) => Number(c.replace(/,/g, '')));
      spans.forEach((id, i) => {
        const t = findTask(id);
        expect(t, id).toBeDefined();
        if (t === undefined) return;
        listed.push(id);
        expect(kind, id).toBe(t.kind);
        expect(suite, id).toBe(t.suite ?? '-');
        expect(counts[i] ?? counts[0], id).toBe(parameterCount(t));
      });
    }
    expect(listed.slice().sort()).toEqual(TASKS.map((t) => t.id).sort());
  });
});

describe('the funnel defaults table', () => {
  const rows = rowsByKey(table(manual, ['setting', 'flag', 'single task (mlp-mnist)', 'workload suite']));
  const mlp = findTask('mlp-mnist');
  if (mlp === undefined) throw new Error('no mlp-mnist task');
  const single = funnelConfig(undefined, mlp);
  const suite = suiteFunnel(undefined);
  if (single === null || suite === null) throw new Error('the default funnel is off');
  const cellsOf = (key: string) => (rows.get(key) ?? '').split(' | ');

  it('states the defaults a run gets when no flag is given', () => {
    const expected: Record<string, [string, string, string]> = {
      'promoted to rung 1': ['`--promote`', `${single.promote}`, `${suite.promote}`],
      'at least': ['-', `${single.minPromoted}`, `${suite.minPromoted}`],
      'rules at rung 2': ['`--long-top`', `${single.longTop}`, `${suite.longTop}`],
      "rung 2's steps": ['`--long-factor`', `${single.longFactor}x`, `${suite.longFactor}x`],
      finalists: ['`--finalists`', `${single.finalists}`, `${suite.finalists}`],
      'seeds at rungs 1, 2, 3': ['`--rung-seeds`', single.seeds.join(','), suite.seeds.join(',')],
      'last rung': ['`--transfer`', `\`${single.transfer}\``, 'the held-out suite'],
      baseline: ['`--baseline`', `\`${single.baseline}\``, `\`${suite.baseline}\``],
    };
    expect([...rows.keys()]).toEqual(Object.keys(expected));
    for (const [k, v] of Object.entries(expected)) expect(cellsOf(k), k).toEqual(v);
  });

  it('reads the constants the resolution starts from', () => {
    // The floor of rung 1 is max(FUNNEL_DEFAULTS.minPromoted, --long-top): the table states the result.
    expect(single.minPromoted).toBe(Math.max(FUNNEL_DEFAULTS.minPromoted, FUNNEL_DEFAULTS.longTop));
    expect(suite.longTop).toBe(SUITE_DEFAULTS.longTop);
    expect(suite.transfer).toBeNull();
  });
});
