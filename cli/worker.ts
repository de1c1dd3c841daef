/** `nos worker`: take evaluation jobs from the queue and run them here until Ctrl-C. */
import { nosVersion } from '../controller/run.js';
import { resolveWorkers } from '../evaluator/pool.js';
import { startQueueWorker } from '../evaluator/queue-worker.js';
import { type FlagSpecs, has, intFlag, parseArgs, UsageError } from './args.js';
import type { Io } from './io.js';
import { QUEUE_URL_ENV, queueFlags, queueFromArgs } from './queue-url.js';

/** The most stand-in jobs one worker holds at once. */
const MAX_STAND_IN_JOBS = 1024;

export const WORKER_FLAGS: FlagSpecs = {
  ...queueFlags('the queue to take jobs from (required, here or in the environment)'),
  workers: {
    type: 'string',
    value: 'K',
    description: 'evaluator threads, and jobs held at once (default and most: the number of cores)',
  },
  'stand-in': {
    type: 'bool',
    description: `benchmarks only: take the stand-in jobs of 'nos search --stand-in' (and nos bench --only loop), each of which sleeps instead of training; --workers K is then the jobs held at once, up to ${MAX_STAND_IN_JOBS}, whatever the cores`,
  },
};

export async function workerCommand(argv: readonly string[], io: Io): Promise<number> {
  const args = parseArgs(argv, WORKER_FLAGS);
  const url = queueFromArgs(args, io, 'worker');
  if (url === undefined)
    throw new UsageError(
      `--queue is required (or --queue-file F, or $${QUEUE_URL_ENV}), e.g. nos worker --queue redis://127.0.0.1:6379`,
    );
  const standIn = has(args, 'stand-in');
  const asked = intFlag(args, 'workers', 1);
  let threads = resolveWorkers(asked);
  if (standIn) {
    // Sleeping jobs need no core each.
    if (asked !== undefined && asked > MAX_STAND_IN_JOBS)
      throw new UsageError(`--workers with --stand-in holds at most ${MAX_STAND_IN_JOBS} jobs at once, got ${asked}`);
    threads = { workers: asked ?? threads.workers, note: undefined };
  }
  if (threads.note !== undefined) io.err(`nos worker: ${threads.note}`);
  const handle = await startQueueWorker({
    url,
    version: nosVersion(),
    threads: threads.workers,
    log: (line) => io.err(`nos worker: ${line}`),
    ...(standIn ? { standIn } : {}),
  });
  io.err(
    standIn
      ? `nos worker: ready: ${handle.threads} stand-in job(s) at once (they sleep, nothing is trained), taking jobs from ${handle.url.redacted} (queue ${handle.queue}); Ctrl-C finishes the jobs in hand, then exits`
      : `nos worker: ready: ${handle.threads} thread(s), taking jobs from ${handle.url.redacted} (queue ${handle.queue}); Ctrl-C finishes the jobs in hand, then exits`,
  );
  let signals = 0;
  let finished!: () => void;
  const done = new Promise<void>((r) => {
    finished = r;
  });
  const onSignal = (signal: NodeJS.Signals) => {
    signals++;
    if (signals === 1) {
      io.err(
        `nos worker: ${signal}: finishing the jobs in hand, taking no new ones (again to quit now: held jobs go back to the queue after ${Math.round((handle.lockMs * 1.5) / 1000)} s)`,
      );
      void handle.close().then(finished);
    } else {
      io.err(`nos worker: ${signal} again: quitting now`);
      void handle.close(true).finally(() => process.exit(130));
      setTimeout(() => process.exit(130), 2000).unref();
    }
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    await done;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  io.err('nos worker: stopped');
  const code = signals > 1 ? 130 : 0;
  // A Redis that went away leaves BullMQ's clients retrying in the background: do not wait on them.
  setTimeout(() => process.exit(code), 500).unref();
  return code;
}
