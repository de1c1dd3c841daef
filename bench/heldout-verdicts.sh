#!/usr/bin/env bash
# Verdicts on the held-out suite (issue 19): a run's top finalists and the known rules (PowerSign,
# AddSign, Lion, momentum), each against tuned Adam on every held-out workload, SEEDS seeds each
# (paired: the same seeds for every rule). bench/long-search.sh calls it after its search; it also
# runs on any finished suite run:
#
#   RUN=NAME [NOS_RUNS=DIR] [SEEDS=10] [FINALISTS=2] [KNOWN=powersign,addsign,lion,momentum] \
#     [OUT=bench/results/heldout-verdicts] bash bench/heldout-verdicts.sh
#
# Writes OUT/leaderboard.{json,txt} (the run's), OUT/known-in-pool.{json,txt} (where the known
# rules and Adam would stand in the run's rung-0 pool: bench/known-in-pool.ts), OUT/verdicts-TASK.{json,log}, OUT/verdicts.tsv
# (task, rule, verdict, difference in points with its 95% CI, p) and OUT/timing.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${RUN:?RUN=the run whose finalists to judge}"
SEEDS=${SEEDS:-10}
FINALISTS=${FINALISTS:-2}
KNOWN=${KNOWN-powersign,addsign,lion,momentum}
OUT=${OUT:-bench/results/heldout-verdicts}
mkdir -p "$OUT"
node bin/nos.js leaderboard --run "$RUN" --top 20 --json > "$OUT/leaderboard.json"
node bin/nos.js leaderboard --run "$RUN" --top 20 > "$OUT/leaderboard.txt"
# Would the funnel have ranked the known rules sensibly? Each placed in the run's rung-0 pool.
node dist/bench/known-in-pool.js --run "$RUN" --rules "powersign,addsign,lion,adam,momentum" --out "$OUT" > /dev/null
# The finalists: the rules at the held-out rung (3), best first.
finalists=$(node -e '
  const board = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
  const top = board.filter((e) => e.rung === 3).slice(0, Number(process.argv[2])).map((e) => e.rule);
  process.stdout.write(top.join(","));
' "$OUT/leaderboard.json" "$FINALISTS")
rules=${finalists}${finalists:+${KNOWN:+,}}$KNOWN
[ -n "$rules" ] || { echo "no finalists in run '$RUN' and no known rules to judge" >&2; exit 1; }
echo "rules: $rules" >> "$OUT/timing.txt"
: > "$OUT/verdicts.tsv"
for task in $(node bin/nos.js tasks --json | node -e '
  const t = JSON.parse(require("fs").readFileSync(0, "utf8"));
  process.stdout.write(t.filter((x) => x.suite === "held-out").map((x) => x.id).join(" "));
'); do
  t0=$(date +%s)
  node bin/nos.js eval --task "$task" --rules "$rules" --baseline adam --seeds "$SEEDS" --json > "$OUT/verdicts-$task.json" 2> "$OUT/verdicts-$task.log"
  node -e '
    const d = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
    for (const r of d.results) {
      const v = r.vsBaseline;
      console.log(`${process.argv[2]}\t${r.rule}\t${v ? `${v.verdict}\t${(100 * v.diff.mean).toFixed(2)} [${v.diff.ci95 ? v.diff.ci95.map((x) => (100 * x).toFixed(2)).join(", ") : "-"}] p=${v.p === null ? "-" : v.p.toPrecision(2)}` : "baseline"}`);
    }
  ' "$OUT/verdicts-$task.json" "$task" >> "$OUT/verdicts.tsv"
  echo "verdicts on $task: $(( $(date +%s) - t0 )) s" >> "$OUT/timing.txt"
done
cat "$OUT/verdicts.tsv"
