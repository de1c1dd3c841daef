/**
 * The GPU evaluator's side of cancelling (evaluator/gpu-pool.ts), with a stand-in worker that
 * speaks the GPU worker's protocol (evaluator/gpu-worker.ts: the same `{cancel}` check before an
 * evaluation's turn) and sleeps instead of training: Dawn stays out of vitest's threads, and a
 * child on Mesa's software adapter takes seconds per evaluation.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { GpuEvaluator } from '../../evaluator/gpu-pool.js';
import { scratchDir } from '../helpers/scratch.js';

/** Evaluations one at a time, each sleeping `seed` x 100 ms; `{cancel}` drops one not started; log.json on close. */
function standInWorker(): { file: string; log: string } {
  const dir = scratchDir('gpu-pool-worker');
  const file = join(dir, 'worker.mjs');
  const log = join(dir, 'log.json');
  writeFileSync(
    file,
    `import { writeFileSync } from 'node:fs';
import { parentPort } from 'node:worker_threads';
const cancelled = new Set();
const log = [];
let queue = Promise.resolve();
parentPort.on('message', (m) => {
  if ('cancel' in m) { cancelled.add(m.cancel); return; }
  if ('close' in m) { queue = queue.then(() => { writeFileSync(${JSON.stringify(log)}, JSON.stringify(log)); parentPort.close(); }); return; }
  queue = queue.then(async () => {
    if (cancelled.delete(m.id)) { log.push('dropped ' + m.req.rule); return; }
    log.push('ran ' + m.req.rule);
    await new Promise((r) => setTimeout(r, 100 * m.req.seed));
    parentPort.postMessage({ id: m.id, result: { rule: m.req.rule, status: 'ok', seed: m.req.seed } });
  });
});
`,
  );
  return { file, log };
}

describe('GPU evaluator: an abort rejects at once, drops what has not started, lets the running one finish', () => {
  it('three evaluations, aborted while the first runs', async () => {
    const worker = standInWorker();
    const gpu = new GpuEvaluator({ workerFile: worker.file });
    const ac = new AbortController();
    const replies = ['a', 'b', 'c'].map((rule) =>
      gpu.evaluate({ rule, task: 'quadratic', seed: 5 }, { interrupt: ac.signal }),
    );
    setTimeout(() => ac.abort(), 100);
    const t0 = performance.now();
    const outcomes = await Promise.allSettled(replies);
    expect(performance.now() - t0).toBeLessThan(400); // not after the running one's 500 ms
    for (const o of outcomes) expect(o).toMatchObject({ status: 'rejected', reason: { name: 'AbortError' } });
    await gpu.close(); // waits for the running one
    expect(JSON.parse(readFileSync(worker.log, 'utf8'))).toEqual(['ran a', 'dropped b', 'dropped c']);
  });
});
