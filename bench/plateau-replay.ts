/**
 * Replays an RL run's controller from one of its checkpoints, with and without the plateau guard
 * (controller/rl.ts), on a simulated reward: a rule the run had already met gets its stored
 * reward (a cache hit), a rule the checker or the screen rejects gets 0, and a new rule that
 * passes gets a reward drawn from the run's trained rules' rewards (the simulation: nothing is
 * trained). Batches of the run's size, each learned from at once (no staleness). It answers:
 * from where the long search's controller sat, does the guard bring it back to trainable rules?
 *
 *   node dist/bench/plateau-replay.js --db search-results/runs/long-suite/run.db --from 1040 \
 *     [--updates 60] [--out FILE]
 */
import { writeFileSync } from 'node:fs';
import Database from 'better-sqlite3';
import { checkText } from '../controller/checker.js';
import { RlController } from '../controller/rl.js';
import { makeRng } from '../controller/strategy.js';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? (process.argv[i + 1] ?? fallback) : fallback;
}

const dbFile = arg('db', 'search-results/runs/long-suite/run.db');
const from = Number(arg('from', '1040'));
const updates = Number(arg('updates', '60'));
const out = arg('out', '');
if (!Number.isInteger(from) || from < 1 || !Number.isInteger(updates) || updates < 1) {
  console.error('--from and --updates must be whole numbers >= 1');
  process.exit(1);
}

const db = new Database(dbFile, { readonly: true, fileMustExist: true });
const config = JSON.parse(
  (db.prepare("select value from meta where key = 'config'").get() as { value: string }).value,
) as { seed: number; groups: number; batchSize: number; strategy: string };
if (config.strategy !== 'rl') {
  console.error(`${dbFile}: a ${config.strategy} run, not rl`);
  process.exit(1);
}
const row = db.prepare('select state from checkpoints where batch = ?').get(from - 1) as { state: string } | undefined;
if (row === undefined) {
  console.error(`${dbFile}: no checkpoint after batch ${from - 1}`);
  process.exit(1);
}
// What the run knew before batch `from`: each rule's first reward, and the trained rules' rewards.
const known = new Map<string, number>();
const trainedRewards: number[] = [];
for (const c of db
  .prepare('select hash, status, reward from candidates where batch < ? order by idx')
  .iterate(from) as Iterable<{ hash: string; status: string; reward: number }>) {
  if (c.status === 'cached' || known.has(c.hash)) continue;
  known.set(c.hash, c.reward);
  if (c.status === 'ok') trainedRewards.push(c.reward);
}
db.close();

const lines: string[] = [
  `plateau replay: ${dbFile}, the controller after batch ${from - 1}, ${updates} updates of ${config.batchSize}, simulated rewards (known: stored; rejected: 0; new: drawn from the run's ${trainedRewards.length} trained rules)`,
];
for (const guard of [false, true]) {
  const c = new RlController({ seed: config.seed, groups: config.groups, ...(guard ? {} : { plateauBatches: 0 }) });
  c.restore(row.state);
  const seen = new Map(known);
  const draw = makeRng(`plateau-replay:${from}`);
  let trained = 0;
  let rejected = 0;
  let cached = 0;
  const trace: string[] = [];
  for (let k = 0; k < updates; k++) {
    const ps = c.propose(config.batchSize);
    const rewards: number[] = [];
    const novel: boolean[] = [];
    for (const p of ps) {
      const checked = checkText(p.text);
      const hash = checked.ok ? checked.hash : `text:${p.text}`;
      const old = seen.get(hash);
      if (old !== undefined) {
        rewards.push(old);
        // Rejected samples are never cache hits in a run (they are not trained).
        novel.push(old === 0 && (!checked.ok || !checked.screen().ok));
        cached++;
        continue;
      }
      const ok = checked.ok && checked.screen().ok;
      const r = ok ? (trainedRewards[Math.floor(draw() * trainedRewards.length)] as number) : 0;
      if (ok) trained++;
      else rejected++;
      seen.set(hash, r);
      rewards.push(r);
      novel.push(true);
    }
    const s = c.observe(ps, rewards, undefined, novel);
    if (k % 5 === 4 || s.flattened !== undefined)
      trace.push(
        `  update ${from + k}: mean reward ${s.meanReward.toFixed(3)}, entropy ${(s.entropy ?? 0).toFixed(3)}${s.flattened === undefined ? '' : ', flattened'}`,
      );
  }
  lines.push(
    `guard ${guard ? 'on' : 'off'}: ${trained} new rules that pass the screen, ${rejected} new rejected, ${cached} met before`,
  );
  lines.push(...trace);
}
const text = lines.join('\n');
console.log(text);
if (out !== '') writeFileSync(out, `${text}\n`);
