/** The `nos` command line. Wires the parts together; nothing else imports it. */
import { nearest } from '../dsl/diagnostics.js';
import { UsageError } from './args.js';
import { benchCommand } from './bench.js';
import { evalCommand, tasksCommand } from './eval.js';
import { exportCommand } from './export.js';
import { type Io, processIo } from './io.js';
import { reportCommand } from './report.js';
import { checkCommand, primitivesCommand, rulesCommand, traceCommand } from './rules.js';
import { scheduleCommand } from './schedule.js';
import { leaderboardCommand, searchCommand } from './search.js';

type Command = (argv: readonly string[], io: Io) => number | Promise<number>;

const COMMANDS: Record<string, { run: Command; help: string }> = {
  check: { run: checkCommand, help: 'check <rule text> | --file F.nos   parse and check rules, print their canonical form' },
  rules: { run: rulesCommand, help: 'rules [--json]                     the built-in rule library' },
  tasks: { run: tasksCommand, help: 'tasks [--json]                     the child tasks rules are trained on' },
  eval: {
    run: evalCommand,
    help: 'eval --rules a,b,... [--task ID] [--seeds N] [--steps S] [--lrs x,y] [--schedule S] [--weight-decay WD] [--batch-growth] [--analyze] [--out DIR] [--json]   train and compare rules',
  },
  search: {
    run: searchCommand,
    help: 'search [--task ID] [--budget N] [--strategy rl|random|evolution] [--workers K] [--seed S] [--run NAME] [--resume] [--warm-start] [--json]   search for rules',
  },
  leaderboard: { run: leaderboardCommand, help: 'leaderboard --run NAME [--top K] [--json]   the best rules of a run' },
  schedule: { run: scheduleCommand, help: 'schedule [NAME[:k=v,...] | expression] [--steps N] [--out F.svg] [--json]   learning-rate schedules' },
  report: { run: reportCommand, help: 'report --run NAME [--out F.html]   a self-contained HTML page for a run' },
  bench: { run: benchCommand, help: 'bench [--only kernels|training|pool|screen|gpu] [--json]   the project\'s own measurements' },
  export: {
    run: exportCommand,
    help: 'export (--rule R | --run NAME --rank R) --format tfjs|ts|pytorch [--set k=v] [--out F]   a rule as a ready-to-use optimizer',
  },
  primitives: { run: primitivesCommand, help: 'primitives [--json]                the language: values, functions, NOS short names' },
  trace: {
    run: traceCommand,
    help: 'trace --rule R --lr X --input F.json [--set k=v] [--seed S] [--backend js|tf|wgsl|interp] [--json]   apply a rule to a gradient stream',
  },
};

const USAGE = `nos: neural optimizer search

usage: nos <command> [flags]

${Object.values(COMMANDS)
  .map((c) => `  nos ${c.help}`)
  .join('\n')}

Rules are written in the update-rule language; see README.md. Examples:
  nos check "exp(sign(g) * sign(m)) * g"
  nos trace --rule adam --lr 0.001 --input grads.json --json`;

export async function main(argv: readonly string[], io: Io = processIo): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === 'help' || name === '--help' || name === '-h') {
    io.out(USAGE);
    return name === undefined ? 1 : 0;
  }
  const cmd = COMMANDS[name];
  try {
    if (cmd === undefined) {
      const hint = nearest(name, Object.keys(COMMANDS));
      throw new UsageError(`unknown command '${name}'${hint ? `; did you mean '${hint}'?` : ''} (nos --help lists them)`);
    }
    if (rest.includes('--help') || rest.includes('-h')) {
      io.out(`usage: nos ${cmd.help}`);
      return 0;
    }
    return await cmd.run(rest, io);
  } catch (e) {
    if (e instanceof UsageError) {
      io.err(`nos ${cmd ? `${name}: ` : ''}error: ${e.message}`);
      return 1;
    }
    io.err(`nos: internal error: ${e instanceof Error ? e.message : String(e)} (please report this)`);
    return 2;
  }
}
