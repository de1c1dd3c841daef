/**
 * The GPU evaluator's side of cancelling (evaluator/gpu-pool.ts), with a stand-in worker that
 * speaks the GPU worker's protocol (evaluator/gpu-worker.ts: `{id, req}` in, `{id, result}`
 * out, `{close}`) and sleeps instead of training: Dawn stays out of vitest's threads, and a
 * child on Mesa's software adapter takes seconds per evaluation.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { GpuEvaluator } from '../../evaluator/gpu-pool.js';
import { scratchDir } from '../helpers/scratch.js';

/** Evaluations one at a time, each sleeping `seed` x 100 ms; logs what it was handed (and how many it held at once) to log.json on close. */
function standInWorker(): { file: string; log: string } {
  const dir = scratchDir('gpu-pool-worker');
  const file = join(dir, 'worker.mjs');
  const log = join(dir, 'log.json');
  writeFileSync(
    file,
    `import { writeFileSync } from 'node:fs';
import { parentPort } from 'node:worker_threads';
const log = [];
let held = 0;
let queue = Promise.resolve();
parentPort.on('message', (m) => {
  if ('close' in m) { queue = queue.then(() => { writeFileSync(${JSON.stringify(log)}, JSON.stringify(log)); parentPort.close(); }); return; }
  held++;
  log.push('got ' + m.req.rule + ' holding ' + held);
  queue = queue.then(async () => {
    await new Promise((r) => setTimeout(r, 100 * m.req.seed));
    held--;
    parentPort.postMessage({ id: m.id, result: { rule: m.req.rule, status: 'ok', seed: m.req.seed } });
  });
});
`,
  );
  return { file, log };
}

const logOf = (worker: { log: string }) => JSON.parse(readFileSync(worker.log, 'utf8')) as string[];

describe('GPU evaluator: the device gets one request at a time; an abort drops the waiting ones', () => {
  // With the loop's host-side queue the device thread never holds more than the one it runs,
  // so the dropped ones never reach it (api's first version sent them and cancelled them there).
  it('interrupt: every evaluation rejects at once, the running one too (it finishes on the device, unread)', async () => {
    const worker = standInWorker();
    const gpu = new GpuEvaluator({ workerFile: worker.file });
    const ac = new AbortController();
    const replies = ['a', 'b', 'c'].map((rule) =>
      gpu.evaluate({ rule, task: 'quadratic', seed: 5 }, { signal: ac.signal, interrupt: ac.signal }),
    );
    setTimeout(() => ac.abort(), 100);
    const t0 = performance.now();
    const outcomes = await Promise.allSettled(replies);
    expect(performance.now() - t0).toBeLessThan(400); // not after the running one's 500 ms
    for (const o of outcomes) expect(o).toMatchObject({ status: 'rejected', reason: { name: 'AbortError' } });
    await gpu.close(); // waits for the running one
    expect(logOf(worker)).toEqual(['got a holding 1']);
  });

  it('signal: the running one finishes and resolves, the waiting ones are dropped; later requests go on', async () => {
    const worker = standInWorker();
    const gpu = new GpuEvaluator({ workerFile: worker.file });
    const ac = new AbortController();
    const replies = ['a', 'b', 'c'].map((rule) =>
      gpu.evaluate({ rule, task: 'quadratic', seed: 3 }, { signal: ac.signal }),
    );
    setTimeout(() => ac.abort(), 100);
    const [a, b, c] = await Promise.allSettled(replies);
    expect(a).toMatchObject({ status: 'fulfilled', value: { result: { rule: 'a', status: 'ok' } } });
    for (const o of [b, c]) expect(o).toMatchObject({ status: 'rejected', reason: { name: 'AbortError' } });
    // Already aborted: nothing is handed out.
    await expect(
      gpu.evaluate({ rule: 'x', task: 'quadratic', seed: 1 }, { signal: AbortSignal.abort() }),
    ).rejects.toMatchObject({ name: 'AbortError' });
    const [d, e] = await Promise.all(['d', 'e'].map((rule) => gpu.evaluate({ rule, task: 'quadratic', seed: 1 })));
    expect([d?.result.rule, e?.result.rule]).toEqual(['d', 'e']);
    await gpu.close();
    expect(logOf(worker)).toEqual(['got a holding 1', 'got d holding 1', 'got e holding 1']);
  });
});
