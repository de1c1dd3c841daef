/** `nos report --run NAME [--out F]`: a self-contained HTML page for a run. */
import { join } from 'node:path';
import { adamBaseline, openRun } from '../controller/run.js';
import type { RunStore } from '../controller/config.js';
import { renderReport } from '../controller/report.js';
import { type FlagSpecs, flag, has, parseArgs, UsageError } from './args.js';
import type { Io } from './io.js';
import { checkOutputFile, writeOutputFile } from './paths.js';

export const REPORT_FLAGS: FlagSpecs = {
  run: { type: 'string', value: 'NAME', description: 'the run (required)' },
  out: {
    type: 'string',
    value: 'F.html',
    description: "where to write the page (default: report.html in the run's folder)",
  },
  'no-adam': { type: 'bool', description: "skip training Adam under the run's protocol for comparison" },
};

/**
 * Render a run's report (with Adam's curve under the run's protocol when `adam`) and write it to
 * `out`, or to report.html in the folder the run was opened from. Returns the path written.
 */
export async function writeReport(store: RunStore, out: string | undefined, adam: boolean): Promise<string> {
  const config = store.config;
  const baseline = adam ? await adamBaseline(config) : undefined;
  const html = renderReport({
    config,
    candidates: store.candidates(),
    checkpoints: store.checkpoints(),
    evaluations: store.evaluations(),
    ...(baseline ? { adam: baseline } : {}),
  });
  const path = out ?? join(store.dir, 'report.html');
  try {
    writeOutputFile(path, html, 'the report');
  } catch (e) {
    throw e instanceof UsageError && out === undefined
      ? new UsageError(`${e.message} (pass --out F.html to write it elsewhere)`)
      : e;
  }
  return path;
}

export async function reportCommand(argv: readonly string[], io: Io): Promise<number> {
  const args = parseArgs(argv, REPORT_FLAGS);
  const out = flag(args, 'out');
  if (out !== undefined) checkOutputFile(out);
  const store = openRun(flag(args, 'run'));
  try {
    if (out === undefined) {
      try {
        checkOutputFile(join(store.dir, 'report.html'), 'the report');
      } catch (e) {
        throw e instanceof UsageError ? new UsageError(`${e.message} (pass --out F.html to write it elsewhere)`) : e;
      }
    }
    io.out(await writeReport(store, out, !has(args, 'no-adam')));
    return 0;
  } finally {
    store.close();
  }
}
