/**
 * The search space of Bello et al. (2017), "Neural Optimizer Search with Reinforcement
 * Learning", section 3, as text in the update-rule language. The controller picks, per
 * group, two operands, two unary functions and one binary function; the result of a group
 * can be an operand of a later group. Every entry here is checked by the tests to parse.
 */

export interface SpaceEntry {
  /** Stable id used by the controller's vocabulary. */
  readonly id: string;
  /** DSL text; unary and binary entries use `$1` (and `$2`) for their arguments. */
  readonly text: string;
}

export interface SearchSpace {
  readonly operands: readonly SpaceEntry[];
  readonly unary: readonly SpaceEntry[];
  readonly binary: readonly SpaceEntry[];
}

const e = (id: string, text: string): SpaceEntry => ({ id, text });

export const NOS_SPACE: SearchSpace = {
  operands: [
    e('g', 'g'),
    e('g2', 'g^2'),
    e('g3', 'g^3'),
    e('m', 'm'),
    e('v', 'v'),
    e('gamma', 'gamma'),
    e('sign-g', 'sign(g)'),
    e('sign-m', 'sign(m)'),
    e('one', '1'),
    e('two', '2'),
    e('noise', 'noise'),
    e('wd4', '1e-4 * w'),
    e('wd3', '1e-3 * w'),
    e('wd2', '1e-2 * w'),
    e('wd1', '1e-1 * w'),
    e('adam', 'adam'),
    e('rmsprop', 'rmsprop'),
    e('ld', 'ld'),
    e('cd', 'cd'),
    e('rd', 'rd'),
    e('anoise', 'anoise'),
  ],
  unary: [
    e('id', '$1'),
    e('neg', '-($1)'),
    e('exp', 'exp($1)'),
    e('log', 'log($1)'),
    e('sqrt', 'sqrt($1)'),
    e('clip5', 'clip($1, 1e-5)'),
    e('clip4', 'clip($1, 1e-4)'),
    e('clip3', 'clip($1, 1e-3)'),
    e('drop1', 'drop($1, 0.1)'),
    e('drop3', 'drop($1, 0.3)'),
    e('drop5', 'drop($1, 0.5)'),
    e('sign', 'sign($1)'),
  ],
  binary: [
    e('add', '($1) + ($2)'),
    e('sub', '($1) - ($2)'),
    e('mul', '($1) * ($2)'),
    e('div', '($1) / (($2) + 1e-8)'),
    e('pow', '($1) ^ ($2)'),
    e('keep', 'keep($1, $2)'),
  ],
};

/** Fill a template's `$1`/`$2` holes with argument text. */
export function fill(template: string, args: readonly string[]): string {
  return template.replace(/\$(\d)/g, (_m, d: string) => {
    const a = args[Number(d) - 1];
    if (a === undefined) throw new Error(`template ${template} needs argument $${d}`);
    return a;
  });
}

/** A space configuration: keep only some entries (by id), and/or add entries of your own. */
export interface SpaceConfig {
  readonly operands?: readonly (string | SpaceEntry)[];
  readonly unary?: readonly (string | SpaceEntry)[];
  readonly binary?: readonly (string | SpaceEntry)[];
}

/**
 * A search space from NOS_SPACE and a configuration: each list, when given, names NOS entries by
 * id or adds new `{id, text}` entries (unary texts use `$1`, binary texts `$1` and `$2`).
 */
export function configureSpace(config: SpaceConfig, base: SearchSpace = NOS_SPACE): SearchSpace {
  const pick = (
    kind: keyof SearchSpace,
    items: readonly (string | SpaceEntry)[] | undefined,
  ): readonly SpaceEntry[] => {
    if (items === undefined) return base[kind];
    const out = items.map((item) => {
      if (typeof item !== 'string') return item;
      const found = base[kind].find((e) => e.id === item);
      if (found === undefined)
        throw new Error(`no ${kind} entry '${item}' in the NOS space (ids: ${base[kind].map((e) => e.id).join(', ')})`);
      return found;
    });
    if (out.length === 0) throw new Error(`the ${kind} list is empty`);
    if (new Set(out.map((e) => e.id)).size !== out.length) throw new Error(`duplicate ids in the ${kind} list`);
    return out;
  };
  return {
    operands: pick('operands', config.operands),
    unary: pick('unary', config.unary),
    binary: pick('binary', config.binary),
  };
}
