/**
 * `nos learn`: meta-train a learned LSTM optimizer (Andrychowicz et al. 2016) and write its file.
 *
 * Checkpoints go to FILE.ckpt at every problem boundary; a run started again with the same
 * flags continues from it (automatically: a checkpoint made with other settings is refused,
 * naming the difference), and gives the same file as an uninterrupted run. The checkpoint is
 * removed once FILE is written.
 */
import { existsSync, rmSync } from 'node:fs';
import { AtomicWriteError, writeFileAtomic } from '../util/atomic-write.js';
import { nosVersion } from '../controller/run.js';
import { batchPixels, loadDataset } from '../evaluator/data.js';
import { initTf } from '../dsl/compile/tf-backend.js';
import { type CheckedRule, lookupRule, type RuleLookup } from '../dsl/index.js';
import {
  checkpointDocument,
  LearnedFileError,
  learnedDocument,
  MAX_FILE_BYTES,
  parseCheckpoint,
  parseLearnedFile,
  stateOfCheckpoint,
} from '../learned/file.js';
import { isLearnedSpec, type LearnedRule, learnedPath, learnedRule } from '../learned/kernel.js';
import { META_DEFAULTS, type MetaSettings, type MetaState, metaTrain } from '../learned/meta-train.js';
import { type ImageSource, META_TASKS, type MetaTaskId } from '../learned/problems.js';
import { type FlagSpecs, flag, has, intFlag, numberFlag, parseArgs, UsageError } from './args.js';
import { type Io, readUserFile } from './io.js';
import { checkOutputFile, describeWriteError, writeOutputFile } from './paths.js';
import { duration } from './search.js';

export const LEARN_FLAGS: FlagSpecs = {
  task: {
    type: 'string',
    value: 'ID',
    description: `the problems to meta-train on: ${META_TASKS.join(' or ')} (default quadratic: random 10-d quadratics, as the paper)`,
  },
  out: {
    type: 'string',
    value: 'FILE',
    description: 'the learned optimizer (JSON weights with provenance; required); checkpoints go to FILE.ckpt',
  },
  'meta-steps': {
    type: 'string',
    value: 'N',
    description: `outer Adam updates, one per unroll (default ${META_DEFAULTS.quadratic.metaSteps} for quadratic, ${META_DEFAULTS['mlp-mnist'].metaSteps} for mlp-mnist)`,
  },
  unroll: {
    type: 'string',
    value: 'U',
    description: `optimizee steps per truncated unroll (default ${META_DEFAULTS.quadratic.unroll})`,
  },
  horizon: {
    type: 'string',
    value: 'H',
    description: `optimizee steps per problem before a fresh one (default ${META_DEFAULTS.quadratic.horizon})`,
  },
  'meta-lr': {
    type: 'string',
    value: 'X',
    description: `the outer Adam's learning rate (default ${META_DEFAULTS.quadratic.metaLr})`,
  },
  seed: {
    type: 'string',
    value: 'S',
    description: 'seed of the initial weights and the problems drawn (default 0); same seed and flags, same file',
  },
  json: { type: 'bool', description: 'print one JSON document at the end (progress goes to stderr)' },
};

/**
 * A rule for `nos eval --rules`: `learned:FILE` reads and validates the file (problems are the
 * lookup's message, naming the file), anything else is looked up as rule text or a name.
 */
export function lookupEvalRule(
  label: string,
): { ok: true; rule: CheckedRule | LearnedRule } | { ok: false; message: string } {
  if (!isLearnedSpec(label)) return lookupRule(label) as RuleLookup;
  const path = learnedPath(label);
  if (path === '')
    return {
      ok: false,
      message: `${label}: give the file after 'learned:', e.g. learned:opt.json (made by nos learn)`,
    };
  try {
    return {
      ok: true,
      rule: learnedRule(
        label,
        parseLearnedFile(readUserFile(path, { maxBytes: MAX_FILE_BYTES, what: 'a learned optimizer' }), path),
      ),
    };
  } catch (e) {
    if (e instanceof UsageError || e instanceof LearnedFileError) return { ok: false, message: e.message };
    throw e;
  }
}

/** The progress line: the same shape as `nos search`'s bar. */
export function learnBar(step: number, total: number, loss: number, elapsedMs: number, doneBefore: number): string {
  const width = 24;
  const filled = Math.min(width, Math.round((width * step) / Math.max(1, total)));
  const rate = (step - doneBefore) / Math.max(1e-9, elapsedMs / 1000);
  const eta = rate > 0 ? ((total - step) / rate) * 1000 : 0;
  return `[${'='.repeat(filled)}${' '.repeat(width - filled)}] ${step}/${total} meta-steps  ${rate.toFixed(2)}/s  ETA ${duration(eta)}  meta-loss ${Number.isFinite(loss) ? loss.toPrecision(4) : String(loss)}`;
}

/** MNIST's training split as the meta-trainer's image source. */
function mnistSource(): ImageSource {
  const d = loadDataset('mnist');
  return {
    n: d.train.n,
    batch: (idx) => ({ x: batchPixels(d.train, idx), y: Int32Array.from(idx, (i) => d.train.y[i] as number) }),
  };
}

const SETTINGS_KEYS = ['task', 'seed', 'metaSteps', 'unroll', 'horizon', 'metaLr'] as const;

/** A checkpoint to resume from, or undefined; one made with other settings is an error. */
function readCheckpoint(path: string, settings: MetaSettings): MetaState | undefined {
  if (!existsSync(path)) return undefined;
  const c = parseCheckpoint(readUserFile(path, { maxBytes: MAX_FILE_BYTES, what: 'a checkpoint' }), path);
  const differ = SETTINGS_KEYS.filter((k) => c[k] !== settings[k]);
  if (differ.length > 0) {
    throw new UsageError(
      `${path} is a checkpoint of a run with other settings (${differ.map((k) => `${k} ${c[k]} there, ${settings[k]} now`).join('; ')}): give the same flags to resume it, or delete it to start afresh`,
    );
  }
  return stateOfCheckpoint(c);
}

export async function learnCommand(argv: readonly string[], io: Io): Promise<number> {
  const args = parseArgs(argv, LEARN_FLAGS);
  const taskId = flag(args, 'task') ?? 'quadratic';
  if (!(META_TASKS as readonly string[]).includes(taskId))
    throw new UsageError(`--task ${taskId}: nos learn meta-trains on ${META_TASKS.join(' or ')}`);
  const task = taskId as MetaTaskId;
  const out = flag(args, 'out');
  if (out === undefined) throw new UsageError('--out FILE is required: where the learned optimizer is written');
  checkOutputFile(out);
  const defaults = META_DEFAULTS[task];
  const metaLr = numberFlag(args, 'meta-lr') ?? defaults.metaLr;
  if (!(metaLr > 0 && metaLr <= 1)) throw new UsageError('--meta-lr must be in (0, 1]');
  const settings: MetaSettings = {
    task,
    seed: intFlag(args, 'seed', 0) ?? 0,
    metaSteps: intFlag(args, 'meta-steps', 1) ?? defaults.metaSteps,
    unroll: intFlag(args, 'unroll', 1) ?? defaults.unroll,
    horizon: intFlag(args, 'horizon', 1) ?? defaults.horizon,
    metaLr,
  };
  if (settings.metaSteps > 1_000_000) throw new UsageError('--meta-steps is limited to 1000000');
  if (settings.unroll > 1000 || settings.horizon > 100_000)
    throw new UsageError('--unroll is limited to 1000 and --horizon to 100000');
  const ckpt = `${out}.ckpt`;
  const resume = readCheckpoint(ckpt, settings);
  const data = task === 'mlp-mnist' ? mnistSource() : undefined;
  const backend = await initTf();
  const version = nosVersion();
  io.err(
    `nos learn: ${task}, ${settings.metaSteps} meta-steps, unroll ${settings.unroll}, horizon ${settings.horizon}, meta-lr ${settings.metaLr}, seed ${settings.seed}, tfjs ${backend.name}${resume ? `; resuming from ${ckpt} at meta-step ${resume.step}` : ''}`,
  );
  const tty = process.stderr.isTTY === true && !has(args, 'json');
  const t0 = performance.now();
  const before = resume?.step ?? 0;
  let lastLine = before;
  let state: MetaState;
  try {
    state = metaTrain(settings, {
      ...(data ? { data } : {}),
      ...(resume ? { resume } : {}),
      onStep: (step, loss) => {
        const line = learnBar(step, settings.metaSteps, loss, performance.now() - t0, before);
        if (tty) process.stderr.write(`\r${line}\u001b[K`);
        else if (step - lastLine >= Math.max(1, Math.floor(settings.metaSteps / 20)) || step === settings.metaSteps) {
          lastLine = step;
          io.err(line);
        }
      },
      onCheckpoint: (s) => writeFileAtomic(ckpt, JSON.stringify(checkpointDocument(settings, s, version))),
    });
  } catch (e) {
    if (tty) process.stderr.write('\n');
    if (e instanceof AtomicWriteError)
      throw new UsageError(
        `could not write the checkpoint ${ckpt}: ${describeWriteError(e.cause)}${e.existed ? ' (the previous checkpoint is unchanged: run again to resume from it)' : ''}`,
      );
    throw e;
  }
  if (tty) process.stderr.write('\n');
  const doc = learnedDocument(settings, state, version);
  try {
    writeOutputFile(out, `${JSON.stringify(doc)}\n`, 'the learned optimizer');
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    io.err(`nos learn: error: ${e.message} (the checkpoint ${ckpt} is kept; run again to write it)`);
    return 1;
  }
  rmSync(ckpt, { force: true });
  const summary = {
    out,
    task,
    seed: settings.seed,
    metaSteps: settings.metaSteps,
    unroll: settings.unroll,
    horizon: settings.horizon,
    metaLr: settings.metaLr,
    finalMetaLoss: doc.finalMetaLoss,
    resumedFrom: before,
    nos: version,
  };
  if (has(args, 'json')) io.out(JSON.stringify(summary));
  else
    io.out(
      `wrote ${out}: ${task}, ${settings.metaSteps} meta-steps, final meta-loss ${doc.finalMetaLoss === null ? '-' : doc.finalMetaLoss.toPrecision(4)} (nos eval --rules adam,learned:${out} --task ...)`,
    );
  return 0;
}
