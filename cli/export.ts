/** `nos export`: a rule as a tfjs config, a standalone TypeScript module, or a PyTorch optimizer. */
import { writeFileSync } from 'node:fs';
import { leaderboard } from '../controller/search.js';
import { BindError, bindParams, type CheckedRule, library, lookupRule } from '../dsl/index.js';
import { emitPyTorch } from '../dsl/compile/pytorch.js';
import { emitTypeScript, type Provenance } from '../dsl/compile/ts.js';
import { flag, intFlag, numberFlag, parseArgs, setFlags, UsageError } from './args.js';
import type { Io } from './io.js';
import { ruleFromArgs } from './rules.js';
import { openRun } from './search.js';

/** The rule with some hyperparameter defaults replaced (validated like --set in trace). */
export function withDefaults(rule: CheckedRule, overrides: Readonly<Record<string, number>>): CheckedRule {
  try {
    bindParams(rule, overrides);
  } catch (e) {
    if (e instanceof BindError) throw new UsageError(e.message);
    throw e;
  }
  return { ...rule, params: rule.params.map((p) => ({ name: p.name, default: overrides[p.name] ?? p.default })) };
}

export function exportCommand(argv: readonly string[], io: Io): number {
  const args = parseArgs(argv, {
    rule: { type: 'string' },
    run: { type: 'string' },
    rank: { type: 'string' },
    format: { type: 'string' },
    out: { type: 'string' },
    set: { type: 'list' },
    lr: { type: 'string' },
    seed: { type: 'string' },
  });
  const format = flag(args, 'format');
  if (format === undefined) throw new UsageError('--format is required: tfjs, ts or pytorch');
  if (!['tfjs', 'ts', 'pytorch'].includes(format)) throw new UsageError(`unknown --format '${format}': use tfjs, ts or pytorch`);
  const spec = flag(args, 'rule')?.trim();
  let provenance: Provenance = { source: spec !== undefined && library().has(spec) ? 'built-in' : 'rule text given to nos export' };
  let base: CheckedRule;
  const run = flag(args, 'run');
  if (run !== undefined) {
    if (flag(args, 'rule') !== undefined) throw new UsageError('give --rule or --run with --rank, not both');
    const rank = intFlag(args, 'rank', 1);
    if (rank === undefined) throw new UsageError('--run needs --rank R (1 = the best rule)');
    const store = openRun(run);
    try {
      const rows = leaderboard(store.candidates(), rank);
      const row = rows[rank - 1];
      if (row === undefined) throw new UsageError(`run '${run}' has only ${rows.length} ranked rule(s)`);
      const found = lookupRule(row.rule);
      if (!found.ok) throw new UsageError(`run '${run}' rank ${rank} holds a rule this nos cannot read:\n${found.message}`);
      base = { ...found.rule, name: `${store.config.strategy}-${run}-r${rank}`.replace(/[^A-Za-z0-9-]/g, '') };
      provenance = {
        source: `search run '${run}', rank ${rank}`,
        detail: `candidate #${row.index}, ${store.config.strategy} on ${store.config.task}, seed ${store.config.seed}, reward ${row.reward.toFixed(4)} at lr ${row.bestLr}`,
      };
    } finally {
      store.close();
    }
  } else base = ruleFromArgs(args);
  const rule = withDefaults(base, setFlags(args));
  let text: string;
  if (format === 'tfjs') {
    const lr = numberFlag(args, 'lr') ?? 0.001;
    const params = Object.fromEntries(rule.params.map((p) => [p.name, p.default]));
    text = JSON.stringify({ className: 'RuleOptimizer', config: { rule: rule.canonical, learningRate: lr, params, seed: numberFlag(args, 'seed') ?? 0 } }, null, 2);
  } else if (format === 'ts') text = emitTypeScript(rule, provenance);
  else text = emitPyTorch(rule, provenance);
  const out = flag(args, 'out');
  if (out === undefined) io.out(text);
  else {
    try {
      writeFileSync(out, text.endsWith('\n') ? text : `${text}\n`);
    } catch (e) {
      throw new UsageError(`${out}: cannot write (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
    }
    io.err(`wrote ${out}`);
  }
  return 0;
}
