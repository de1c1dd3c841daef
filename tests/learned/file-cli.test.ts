import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { findTask } from '../../evaluator/tasks.js';
import { evaluateRule } from '../../evaluator/train.js';
import {
  checkpointDocument,
  LearnedFileError,
  learnedDocument,
  parseLearnedFile,
  validateLearned,
} from '../../learned/file.js';
import { META_DEFAULTS, type MetaState, metaTrain } from '../../learned/meta-train.js';
import { learnedKernel } from '../../learned/kernel.js';
import { initialWeights, PARAMETER_COUNT } from '../../learned/lstm.js';
import { LearnedOptimizer, loadLearnedOptimizer } from '../../learned/optimizer.js';
import { nos } from '../helpers/cli.js';
import { scratchDir } from '../helpers/scratch.js';
import { tfReady } from '../helpers/tf.js';

beforeAll(async () => {
  await tfReady;
});

const settings = { task: 'quadratic', seed: 0, metaSteps: 0, unroll: 20, horizon: 100, metaLr: 0.003 } as const;
const doc = () => learnedDocument(settings, { weights: initialWeights(4), losses: [] }, '0.1.0');

function rejects(mutate: (d: Record<string, unknown>) => unknown, message: RegExp): void {
  const d = JSON.parse(JSON.stringify(doc())) as Record<string, unknown>;
  const text = typeof mutate(d) === 'string' ? (mutate(d) as string) : JSON.stringify(d);
  expect(() => parseLearnedFile(text, 'bad.json')).toThrow(LearnedFileError);
  expect(() => parseLearnedFile(text, 'bad.json')).toThrow(message);
}

describe('the learned optimizer file', () => {
  it('is validated: corrupt or hostile files are refused with the file and the field', () => {
    expect(parseLearnedFile(JSON.stringify(doc()), 'ok.json').task).toBe('quadratic');
    const w = (d: Record<string, unknown>) => d.weights as Record<string, unknown[]>;
    rejects(() => '{"format": ', /bad\.json: not JSON/);
    rejects((d) => {
      w(d).w1 = (w(d).w1 as number[]).slice(1);
    }, /bad\.json: weights\.w1: expected exactly 1760 numbers/);
    rejects((d) => {
      (w(d).b2 as unknown[])[3] = 'x';
    }, /bad\.json: weights\.b2\[3\]/);
    rejects(
      () => JSON.stringify(doc()).replace(/"bOut":\[[^\]]*\]/, '"bOut":[1e400]'),
      /bad\.json: weights\.bOut\[0\]/,
    );
    rejects((d) => {
      (w(d).wOut as number[])[0] = 5e6;
    }, /weights\.wOut\[0\]: a number of magnitude at most/);
    rejects((d) => {
      d.format = 'something-else';
    }, /bad\.json: format/);
    rejects((d) => {
      d.architecture = { cell: 'lstm', layers: 3, hidden: 20, preprocessP: 10, outputScale: 0.1 };
    }, /architecture\.layers/);
    rejects((d) => {
      d.extra = 1;
    }, /Unrecognized key/);
    rejects(() => JSON.stringify(doc()).replace('"weights":{', '"weights":{"__proto__":[1],'), /bad\.json: weights/);
    rejects((d) => {
      delete d.task;
    }, /bad\.json: task/);
    rejects(() => '[]', /bad\.json: the document/);
    expect(() => validateLearned(null, 'req')).toThrow(/req: the document/);
    expect(PARAMETER_COUNT).toBe(5141);
  });

  it('a request carrying invalid weights becomes an invalid result, never a crash', () => {
    const task = findTask('quadratic');
    if (!task) throw new Error('no quadratic task');
    const bad = { ...doc(), weights: { ...doc().weights, w1: [1, 2] } };
    const r = evaluateRule('learned:x.json', task, undefined, { learned: bad, steps: 10, lrGrid: [1] });
    expect(r.status).toBe('invalid');
    expect(r.reason).toMatch(/learned:x\.json: weights\.w1/);
    const ok = evaluateRule('learned:x.json', task, undefined, { learned: doc(), steps: 10, lrGrid: [1] });
    expect(ok.status).toBe('ok');
    expect(ok.hash).toMatch(/^[0-9a-f]{64}$/);
  });
});

describe('LearnedOptimizer (tfjs)', () => {
  it('applies w <- w + lr * Δ per variable, as the kernel does, without leaking tensors', () => {
    const data = doc();
    const opt = new LearnedOptimizer({ learned: data, learningRate: 2 });
    const x = tf.variable(tf.tensor1d([1, -2, 3]));
    const ref = learnedKernel(initialWeights(4), 3, 'js');
    const w = Float32Array.of(1, -2, 3);
    const before = tf.memory().numTensors;
    for (let s = 0; s < 3; s++) {
      const g = Float32Array.from(w, (v) => 2 * v);
      opt.minimize(() => tf.sum(tf.square(x)) as tf.Scalar);
      ref.step(w, g, 2);
      const got = x.dataSync();
      for (let j = 0; j < 3; j++) expect(got[j]).toBeCloseTo(w[j] as number, 5);
    }
    expect(tf.memory().numTensors).toBe(before);
    expect(opt.iterations).toBe(3);
    const again = LearnedOptimizer.fromConfig(LearnedOptimizer, opt.getConfig()) as LearnedOptimizer;
    expect(again.learningRate).toBe(2);
    expect(again.learned.weights.w1).toEqual(data.weights.w1);
    expect(() => new LearnedOptimizer({ learned: { nope: 1 } })).toThrow(/<LearnedOptimizer config>: format/);
    opt.dispose();
    x.dispose();
  });
});

describe('nos learn and nos eval --rules learned:FILE', () => {
  it('meta-trains a tiny optimizer, resumes from a checkpoint, evaluates it beside Adam, refuses a corrupt file', async () => {
    const dir = scratchDir('learned-cli');
    const out = join(dir, 'q.json');
    const flags = [
      '--task',
      'quadratic',
      '--out',
      out,
      '--meta-steps',
      '4',
      '--unroll',
      '5',
      '--horizon',
      '10',
      '--seed',
      '3',
    ];
    const r = await nos('learn', ...flags, '--json');
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ out, task: 'quadratic', metaSteps: 4, unroll: 5, resumedFrom: 0 });
    expect(r.stderr).toMatch(/4\/4 meta-steps/);
    expect(existsSync(`${out}.ckpt`)).toBe(false);
    const first = parseLearnedFile(readFileSync(out, 'utf8'), out);
    expect(first).toMatchObject({ task: 'quadratic', seed: 3, metaSteps: 4, unroll: 5, horizon: 10 });
    // A run killed after its first checkpoint (meta-step 2 of 4): the same flags resume it, to
    // the same file as the uninterrupted run above.
    const out2 = join(dir, 'q2.json');
    const meta = {
      task: 'quadratic',
      seed: 3,
      metaSteps: 4,
      unroll: 5,
      horizon: 10,
      metaLr: META_DEFAULTS.quadratic.metaLr,
    } as const;
    let at2: MetaState | undefined;
    metaTrain({ ...meta, metaSteps: 2 }, { onCheckpoint: (s) => (at2 ??= s) });
    writeFileSync(`${out2}.ckpt`, JSON.stringify(checkpointDocument(meta, at2 as MetaState, 'test')));
    const resumed = await nos('learn', ...flags.map((f) => (f === out ? out2 : f)), '--json');
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(resumed.stderr).toMatch(/resuming from .*q2\.json\.ckpt at meta-step 2/);
    expect(JSON.parse(resumed.stdout)).toMatchObject({ resumedFrom: 2 });
    expect(parseLearnedFile(readFileSync(out2, 'utf8'), out2).weights).toEqual(first.weights);
    expect(existsSync(`${out2}.ckpt`)).toBe(false);
    writeFileSync(`${out2}.ckpt`, JSON.stringify(checkpointDocument({ ...meta, seed: 9 }, at2 as MetaState, 'test')));
    const other = await nos('learn', ...flags.map((f) => (f === out ? out2 : f)));
    expect(other.code).toBe(1);
    expect(other.stderr).toMatch(/q2\.json\.ckpt is a checkpoint of a run with other settings \(seed 9 there, 3 now\)/);
    // A corrupt checkpoint is refused, naming the file.
    writeFileSync(`${out2}.ckpt`, '{}');
    const refused = await nos('learn', ...flags.map((f) => (f === out ? out2 : f)));
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/q2\.json\.ckpt: not a valid learned optimizer/);

    const e = await nos(
      'eval',
      '--rules',
      `adam,learned:${out}`,
      '--task',
      'quadratic',
      '--steps',
      '30',
      '--workers',
      '1',
      '--baseline',
      'adam',
      '--json',
    );
    expect(e.code, e.stderr).toBe(0);
    const res = JSON.parse(e.stdout) as {
      results: { rule: string; status: string; bestLr: number; vsBaseline?: { baseline: string } }[];
    };
    const learned = res.results.find((x) => x.rule === `learned:${out}`);
    expect(learned?.status).toBe('ok');
    expect(learned?.vsBaseline?.baseline).toBe('adam');

    const bad = join(dir, 'bad.json');
    writeFileSync(bad, JSON.stringify({ ...first, weights: { ...first.weights, b1: [0] } }));
    const b = await nos('eval', '--rules', `learned:${bad}`, '--task', 'quadratic');
    expect(b.code).toBe(1);
    expect(b.stderr).toMatch(/bad\.json: weights\.b1: expected exactly 80 numbers/);
    const missing = await nos('eval', '--rules', `learned:${join(dir, 'nope.json')}`, '--task', 'quadratic');
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/nope\.json: no such file/);
    expect(() => loadLearnedOptimizer(bad)).toThrow(/bad\.json: weights\.b1/);
    expect(loadLearnedOptimizer(out).learned.seed).toBe(3);
  });
});
