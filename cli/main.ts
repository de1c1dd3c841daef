/** The `nos` command line. Wires the parts together; nothing else imports it. */
import { nosVersion, RunConfigError } from '../controller/run.js';
import { nearest } from '../dsl/diagnostics.js';
import { DatasetError } from '../evaluator/data.js';
import { QueueError } from '../evaluator/queue.js';
import { MissingDependencyError } from '../util/optional-deps.js';
import { shown } from '../util/terminal.js';
import { LearnedFileError } from '../learned/file.js';
import { describeEnvironmentError, StoreError } from '../search-results/store.js';
import { type FlagSpecs, formatHelp, HelpRequested, UsageError } from './args.js';
import { benchCommand } from './bench.js';
import { dashboardCommand } from './dashboard.js';
import { evalCommand, tasksCommand } from './eval.js';
import { exportCommand } from './export.js';
import { learnCommand } from './learn.js';
import { type Io, processIo, safeIo } from './io.js';
import { reportCommand } from './report.js';
import { checkCommand, primitivesCommand, rulesCommand, traceCommand } from './rules.js';
import { scheduleCommand } from './schedule.js';
import { leaderboardCommand, searchCommand } from './search.js';
import { workerCommand } from './worker.js';

type Command = (argv: readonly string[], io: Io) => number | Promise<number>;

interface CommandEntry {
  readonly run: Command;
  /** Positional arguments, for the usage line (flags come from the command's own specs). */
  readonly usage: string;
  readonly summary: string;
}

export const COMMANDS: Readonly<Record<string, CommandEntry>> = {
  check: {
    run: checkCommand,
    usage: '(<rule text> | --file F.nos)',
    summary: 'parse and check rules, print their canonical form',
  },
  rules: { run: rulesCommand, usage: '', summary: 'the built-in rule library' },
  tasks: { run: tasksCommand, usage: '', summary: 'the child tasks rules are trained on' },
  eval: {
    run: evalCommand,
    usage: '--rules a,b,...',
    summary: 'train and compare rules over a learning-rate grid and seeds',
  },
  search: {
    run: searchCommand,
    usage: '',
    summary: 'search for update rules (--resume --run NAME continues a stopped run)',
  },
  worker: {
    run: workerCommand,
    usage: '--queue redis://HOST:PORT',
    summary: 'take evaluation jobs from a Redis queue and run them here (scale-out; Ctrl-C drains)',
  },
  leaderboard: { run: leaderboardCommand, usage: '--run NAME', summary: 'the best rules of a run' },
  schedule: {
    run: scheduleCommand,
    usage: '[NAME[:k=v,...] | expression]',
    summary: 'learning-rate schedules: list them, or print and plot one',
  },
  report: { run: reportCommand, usage: '--run NAME', summary: 'a self-contained HTML page for a run' },
  dashboard: {
    run: dashboardCommand,
    usage: '',
    summary: 'a live, read-only web app over the runs (and an in-browser search at /play)',
  },
  bench: { run: benchCommand, usage: '', summary: "the project's own measurements" },
  export: {
    run: exportCommand,
    usage: '(--rule R | --run NAME --rank R) --format tfjs|ts|pytorch',
    summary: 'a rule as a ready-to-use optimizer',
  },
  primitives: { run: primitivesCommand, usage: '', summary: 'the language: values, functions, NOS short names' },
  learn: {
    run: learnCommand,
    usage: '--out FILE',
    summary:
      'meta-train a learned LSTM optimizer (Andrychowicz et al. 2016) for nos eval --rules learned:FILE (not rule text: nos search never samples it)',
  },
  trace: { run: traceCommand, usage: '--rule R --lr X --input F.json', summary: 'apply a rule to a gradient stream' },
};

const USAGE = `nos: neural optimizer search

usage: nos <command> [flags]        (nos <command> --help lists a command's flags)

${Object.entries(COMMANDS)
  .map(([name, c]) => `  ${name.padEnd(12)} ${c.summary}`)
  .join('\n')}

  --version    print nos's version

Rules are written in the update-rule language; see README.md. Examples:
  nos check "exp(sign(g) * sign(m)) * g"
  nos trace --rule adam --lr 0.001 --input grads.json --json`;

/** The flag specs a command parses with (it answers --help with them before doing anything). */
export async function commandSpecs(name: string): Promise<FlagSpecs> {
  const cmd = COMMANDS[name];
  if (cmd === undefined) throw new Error(`no command ${name}`);
  try {
    await cmd.run(['--help'], { out: () => {}, err: () => {} });
  } catch (e) {
    if (e instanceof HelpRequested) return e.spec;
    throw e;
  }
  throw new Error(`nos ${name} --help did not reach its flag parser`);
}

/** A user error's message, or undefined for a bug. */
function userError(e: unknown): string | undefined {
  if (
    e instanceof UsageError ||
    e instanceof RunConfigError ||
    e instanceof StoreError ||
    e instanceof DatasetError ||
    e instanceof MissingDependencyError ||
    e instanceof LearnedFileError ||
    e instanceof QueueError
  )
    return e.message;
  return describeEnvironmentError(e);
}

export async function main(argv: readonly string[], rawIo: Io = processIo): Promise<number> {
  // Everything printed from here on is terminal-safe (control characters escaped, stderr lines cut).
  const io = safeIo(rawIo);
  const [name, ...rest] = argv;
  if (name === undefined || name === 'help' || name === '--help' || name === '-h') {
    io.out(USAGE);
    return name === undefined ? 1 : 0;
  }
  if (name === '--version' || name === '-V') {
    io.out(nosVersion());
    return 0;
  }
  const cmd = COMMANDS[name];
  try {
    if (cmd === undefined) {
      const hint = nearest(name, Object.keys(COMMANDS));
      throw new UsageError(
        `unknown command '${shown(name)}'${hint ? `; did you mean '${hint}'?` : ''} (nos --help lists them)`,
      );
    }
    return await cmd.run(rest, io);
  } catch (e) {
    if (e instanceof HelpRequested && cmd !== undefined) {
      io.out(formatHelp(name, cmd.usage, cmd.summary, e.spec));
      return 0;
    }
    const message = userError(e);
    if (message !== undefined) {
      io.err(`nos ${cmd ? `${name}: ` : ''}error: ${message}`);
      return 1;
    }
    io.err(`nos: internal error: ${e instanceof Error ? e.message : String(e)} (please report this)`);
    return 2;
  }
}
