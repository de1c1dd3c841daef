/**
 * The learned optimizer's file: plain JSON, its weights and where they came from.
 *
 *   {"format": "nos-learned-optimizer", "version": 1, "nos": "0.1.0",
 *    "architecture": {"cell": "lstm", "layers": 2, "hidden": 20, "preprocessP": 10, "outputScale": 0.1},
 *    "task": "quadratic", "seed": 0, "metaSteps": 1000, "unroll": 20, "horizon": 100, "metaLr": 0.003,
 *    "finalMetaLoss": 0.41, "weights": {"w1": [...], "b1": [...], "w2": [...], "b2": [...], "wOut": [...], "bOut": [...]}}
 *
 * A checkpoint (FILE.ckpt while `nos learn` runs) is the same document with `"checkpoint":
 * {"step", "adamM", "adamV", "losses"}`. Both are read as untrusted input: zod checks every
 * field, every array's length and that every number is finite and bounded; an error names
 * the file and the field.
 */
import { z } from 'zod';
import {
  HIDDEN,
  type LstmWeights,
  OUTPUT_SCALE,
  PARAMETER_COUNT,
  PREPROCESS_P,
  WEIGHT_NAMES,
  type WeightName,
  weightSize,
} from './lstm.js';
import type { MetaSettings, MetaState } from './meta-train.js';
import { META_TASKS, type MetaTaskId } from './problems.js';

export const FORMAT = 'nos-learned-optimizer';
export const FORMAT_VERSION = 1;
/** Largest file read, in bytes (a checkpoint of the 5,141 weights is ~0.4 MB). */
export const MAX_FILE_BYTES = 16 * 1024 * 1024;
/** Largest magnitude of a weight or moment: anything larger is corrupt, not learned. */
const MAX_ABS = 1e6;
const MAX_STEPS = 10_000_000;

/** A file that is not a valid learned optimizer: the message names the source and the field. */
export class LearnedFileError extends Error {
  override readonly name = 'LearnedFileError';
}

const bounded = z
  .number()
  .finite()
  .refine((x) => Math.abs(x) <= MAX_ABS, { message: `a number of magnitude at most ${MAX_ABS}` });
const vector = (n: number) => z.array(bounded).length(n, { message: `expected exactly ${n} numbers` });

const weightsSchema = z
  .object(
    Object.fromEntries(WEIGHT_NAMES.map((n) => [n, vector(weightSize(n))])) as Record<
      WeightName,
      ReturnType<typeof vector>
    >,
  )
  .strict();

const architectureSchema = z
  .object({
    cell: z.literal('lstm'),
    layers: z.literal(2),
    hidden: z.literal(HIDDEN),
    preprocessP: z.literal(PREPROCESS_P),
    outputScale: z.literal(OUTPUT_SCALE),
  })
  .strict();

const count = (min: number) => z.number().int().min(min).max(MAX_STEPS);

const baseSchema = z.object({
  format: z.literal(FORMAT),
  version: z.literal(FORMAT_VERSION),
  nos: z.string().max(64),
  architecture: architectureSchema,
  task: z.enum(META_TASKS as [MetaTaskId, ...MetaTaskId[]]),
  seed: count(0),
  metaSteps: count(0),
  unroll: count(1),
  horizon: count(1),
  metaLr: z.number().finite().positive().max(1),
  finalMetaLoss: z.number().finite().nullable(),
  weights: weightsSchema,
});

export const learnedFileSchema = baseSchema.strict();

const checkpointSchema = baseSchema
  .extend({
    checkpoint: z
      .object({
        step: count(0),
        adamM: vector(PARAMETER_COUNT),
        adamV: z
          .array(bounded.refine((x) => x >= 0, { message: 'a second moment >= 0' }))
          .length(PARAMETER_COUNT, { message: `expected exactly ${PARAMETER_COUNT} numbers` }),
        losses: z.array(z.number().finite().nullable()).max(MAX_STEPS),
      })
      .strict(),
  })
  .strict();

/** The learned optimizer's file as plain data: what crosses into evaluator workers. */
export type LearnedData = z.infer<typeof learnedFileSchema>;
export type LearnedCheckpoint = z.infer<typeof checkpointSchema>;

function where(path: readonly (string | number)[]): string {
  return path.length === 0
    ? 'the document'
    : path
        .map((p) => (typeof p === 'number' ? `[${p}]` : `.${p}`))
        .join('')
        .replace(/^\./, '');
}

function check<T>(schema: z.ZodType<T>, value: unknown, source: string): T {
  const r = schema.safeParse(value);
  if (r.success) return r.data;
  const lines = r.error.issues.slice(0, 5).map((i) => `${source}: ${where(i.path)}: ${i.message}`);
  const more = r.error.issues.length > 5 ? `\n${source}: ... and ${r.error.issues.length - 5} more problems` : '';
  throw new LearnedFileError(
    `${source}: not a valid learned optimizer (${FORMAT} v${FORMAT_VERSION}):\n${lines.join('\n')}${more}`,
  );
}

function parseJson(text: string, source: string): unknown {
  if (text.length > MAX_FILE_BYTES)
    throw new LearnedFileError(
      `${source}: the file is ${text.length} characters; a learned optimizer is at most ${MAX_FILE_BYTES}`,
    );
  try {
    return JSON.parse(text) as unknown;
  } catch (e) {
    throw new LearnedFileError(`${source}: not JSON (${e instanceof Error ? e.message : String(e)})`);
  }
}

/** Validate a learned optimizer given as data (a parsed file, or a worker's request). */
export function validateLearned(value: unknown, source: string): LearnedData {
  return check(learnedFileSchema, value, source);
}

export function parseLearnedFile(text: string, source: string): LearnedData {
  return validateLearned(parseJson(text, source), source);
}

export function parseCheckpoint(text: string, source: string): LearnedCheckpoint {
  return check(checkpointSchema, parseJson(text, source), source);
}

export function weightsOf(data: Pick<LearnedData, 'weights'>): LstmWeights {
  const out = {} as Record<WeightName, Float32Array>;
  for (const n of WEIGHT_NAMES) out[n] = Float32Array.from(data.weights[n]);
  return out;
}

function plain(w: LstmWeights): LearnedData['weights'] {
  return Object.fromEntries(WEIGHT_NAMES.map((n) => [n, Array.from(w[n])])) as LearnedData['weights'];
}

/** The file's document for trained weights. */
export function learnedDocument(
  settings: MetaSettings,
  state: Pick<MetaState, 'weights' | 'losses'>,
  nos: string,
): LearnedData {
  const tail = state.losses
    .slice(-Math.max(1, Math.min(50, Math.ceil(state.losses.length / 10))))
    .filter(Number.isFinite);
  return {
    format: FORMAT,
    version: FORMAT_VERSION,
    nos,
    architecture: { cell: 'lstm', layers: 2, hidden: HIDDEN, preprocessP: PREPROCESS_P, outputScale: OUTPUT_SCALE },
    task: settings.task,
    seed: settings.seed,
    metaSteps: settings.metaSteps,
    unroll: settings.unroll,
    horizon: settings.horizon,
    metaLr: settings.metaLr,
    // The mean meta-loss of the last tenth of the meta-steps (at most 50): one unroll is noisy.
    finalMetaLoss: tail.length === 0 ? null : tail.reduce((a, b) => a + b, 0) / tail.length,
    weights: plain(state.weights),
  };
}

export function checkpointDocument(settings: MetaSettings, state: MetaState, nos: string): LearnedCheckpoint {
  return {
    ...learnedDocument(settings, state, nos),
    checkpoint: {
      step: state.step,
      adamM: Array.from(state.adamM),
      adamV: Array.from(state.adamV),
      losses: state.losses.map((l) => (Number.isFinite(l) ? l : null)),
    },
  };
}

export function stateOfCheckpoint(c: LearnedCheckpoint): MetaState {
  return {
    step: c.checkpoint.step,
    weights: weightsOf(c),
    adamM: Float64Array.from(c.checkpoint.adamM),
    adamV: Float64Array.from(c.checkpoint.adamV),
    losses: c.checkpoint.losses.map((l) => (l === null ? Number.NaN : l)),
  };
}
