/** `nos export`: a rule as a tfjs config, a standalone TypeScript module, or a PyTorch optimizer. */
import { openRun } from '../controller/run.js';
import { BindError, bindParams, type CheckedRule, library, lookupRule } from '../dsl/index.js';
import { emitPyTorch } from '../dsl/compile/pytorch.js';
import { emitTypeScript, type Provenance } from '../dsl/compile/ts.js';
import { rankedLeaderboard } from '../controller/funnel-plan.js';
import { type FlagSpecs, flag, intFlag, numberFlag, type ParsedArgs, parseArgs, setFlags, UsageError } from './args.js';
import type { Io } from './io.js';
import { checkOutputFile, writeOutputFile } from './paths.js';
import { ruleFromArgs } from './rules.js';
import { shown } from '../util/terminal.js';

export const EXPORT_FLAGS: FlagSpecs = {
  rule: { type: 'string', value: 'R', description: 'a built-in rule name, rule text, or a .nos file' },
  run: { type: 'string', value: 'NAME', description: 'export a rule a search found: the run (with --rank)' },
  rank: { type: 'string', value: 'R', description: "the rule's rank in the run's leaderboard (1 = the best)" },
  format: {
    type: 'string',
    value: 'FORMAT',
    description: 'tfjs (RuleOptimizer config), ts (a standalone TypeScript module) or pytorch (required)',
  },
  out: { type: 'string', value: 'F', description: 'write to this file (default: stdout)' },
  set: { type: 'list', value: 'k=v', description: "override a hyperparameter's default (repeatable)" },
  lr: { type: 'string', value: 'X', description: 'learning rate in the tfjs config (default 0.001)' },
  seed: { type: 'string', value: 'S', description: 'seed in the tfjs config, for rules with noise (default 0)' },
  'decay-steps': {
    type: 'string',
    value: 'N',
    description:
      'for a rule that decays over T steps (powersign-ld, lindecay(T), ...): T, the steps the decay spans (required for tfjs; ts and pytorch classes require T from their user without it)',
  },
  name: {
    type: 'string',
    value: 'CLASS',
    description: 'class name of the ts or pytorch optimizer (default: from the rule)',
  },
};

/** The rule with some hyperparameter defaults replaced (validated like --set in trace). */
export function withDefaults(rule: CheckedRule, overrides: Readonly<Record<string, number>>): CheckedRule {
  try {
    bindParams(rule, overrides);
  } catch (e) {
    if (e instanceof BindError) throw new UsageError(e.message);
    throw e;
  }
  return {
    ...rule,
    params: rule.params.map((p) => ({
      name: p.name,
      default: Object.hasOwn(overrides, p.name) ? (overrides[p.name] as number) : p.default,
    })),
  };
}

/**
 * The decay steps T: `--decay-steps N` or `--set T=N` (one of them, or both agreeing), for a
 * rule that reads T; refused for one that does not.
 */
function decayStepsFlag(
  args: ParsedArgs,
  rule: CheckedRule,
  sets: Readonly<Record<string, number>>,
): number | undefined {
  const flagged = numberFlag(args, 'decay-steps');
  const set = Object.hasOwn(sets, 'T') ? sets.T : undefined;
  const readsT = rule.params.some((p) => p.name === 'T');
  if (flagged !== undefined && !readsT)
    throw new UsageError(
      `--decay-steps: rule '${rule.name ?? rule.canonical}' does not decay (it reads no T); drop --decay-steps`,
    );
  if (flagged !== undefined && !(Number.isFinite(flagged) && flagged > 0))
    throw new UsageError(`--decay-steps must be a positive number, got ${flagged}`);
  if (flagged !== undefined && set !== undefined && set !== flagged)
    throw new UsageError(`--decay-steps ${flagged} and --set T=${set} disagree; give one`);
  return flagged ?? set;
}

export function exportCommand(argv: readonly string[], io: Io): number {
  const args = parseArgs(argv, EXPORT_FLAGS);
  const out = flag(args, 'out');
  if (out !== undefined) checkOutputFile(out); // before any work: a folder or an empty path is refused
  const format = flag(args, 'format');
  if (format === undefined) throw new UsageError('--format is required: tfjs, ts or pytorch');
  if (!['tfjs', 'ts', 'pytorch'].includes(format))
    throw new UsageError(`unknown --format '${shown(format)}': use tfjs, ts or pytorch`);
  const spec = flag(args, 'rule')?.trim();
  let provenance: Provenance = {
    source: spec !== undefined && library().has(spec) ? 'built-in' : 'rule text given to nos export',
  };
  let base: CheckedRule;
  const run = flag(args, 'run');
  if (run !== undefined) {
    if (flag(args, 'rule') !== undefined) throw new UsageError('give --rule or --run with --rank, not both');
    const rank = intFlag(args, 'rank', 1);
    if (rank === undefined) throw new UsageError('--run needs --rank R (1 = the best rule)');
    const store = openRun(run);
    try {
      const rows = rankedLeaderboard(store.config, store.candidates(), store.evaluations(), rank).map((e) => ({
        ...e.candidate,
        reward: e.reward,
      }));
      const row = rows[rank - 1];
      if (row === undefined) throw new UsageError(`run '${run}' has only ${rows.length} ranked rule(s)`);
      const found = lookupRule(row.rule);
      if (!found.ok)
        throw new UsageError(`run '${run}' rank ${rank} holds a rule this nos cannot read:\n${found.message}`);
      base = { ...found.rule, name: `${store.config.strategy}-${run}-r${rank}`.replace(/[^A-Za-z0-9-]/g, '') };
      provenance = {
        source: `search run '${run}', rank ${rank}`,
        detail: `candidate #${row.index}, ${store.config.strategy} on ${store.config.task}, seed ${store.config.seed}, reward ${row.reward.toFixed(4)} at lr ${row.bestLr}`,
      };
    } finally {
      store.close();
    }
  } else base = ruleFromArgs(args);
  const sets = setFlags(args);
  const decaySteps = decayStepsFlag(args, base, sets);
  const rule = withDefaults(base, decaySteps === undefined ? sets : { ...sets, T: decaySteps });
  let text: string;
  if (format === 'tfjs') {
    const lr = numberFlag(args, 'lr') ?? 0.001;
    if (lr < 0) throw new UsageError(`--lr must be >= 0 (a negative rate climbs the loss), got ${lr}`);
    const params = Object.fromEntries(rule.params.map((p) => [p.name, p.default]));
    if (decaySteps === undefined && rule.params.some((p) => p.name === 'T'))
      throw new UsageError(
        `rule '${rule.name ?? rule.canonical}' decays over T steps: pass --decay-steps N (the number of training steps the decay spans, usually the whole run); the tfjs config has no default for it`,
      );
    text = JSON.stringify(
      {
        className: 'RuleOptimizer',
        config: {
          rule: rule.canonical,
          learningRate: lr,
          params,
          seed: intFlag(args, 'seed', 0) ?? 0,
        },
      },
      null,
      2,
    );
  } else {
    const name = flag(args, 'name');
    if (name !== undefined && !/^[A-Za-z][A-Za-z0-9]*$/.test(name))
      throw new UsageError(`--name must be a class name (a letter, then letters and digits), got '${shown(name)}'`);
    const options = {
      provenance,
      ...(name === undefined ? {} : { className: name }),
      ...(decaySteps === undefined ? {} : { decaySteps }),
    };
    text = format === 'ts' ? emitTypeScript(rule, options) : emitPyTorch(rule, options);
  }
  if (out === undefined) io.out(text);
  else {
    writeOutputFile(out, text.endsWith('\n') ? text : `${text}\n`, `the ${format} export`);
    io.err(`wrote ${out}`);
  }
  return 0;
}
