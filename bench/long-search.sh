#!/usr/bin/env bash
# The long search (issue 19): the workload suite's search with a budget of 2,000 trained rules
# (hours on 2 cores), then the funnel, then 10-seed verdicts of the top finalists against tuned
# Adam on every held-out workload, with the known rules (PowerSign, AddSign, Lion, momentum)
# beside them to check the funnel ranks them sensibly. Resumable: rerun it after a stop and the
# search continues (--resume); results land in bench/results/long-search/ (commit them).
#
#   bash bench/long-search.sh                 # BUDGET=2000 RUN=long-suite SEEDS=10 FINALISTS=2
#   BUDGET=300 RUN=long-300 bash bench/long-search.sh
set -euo pipefail
cd "$(dirname "$0")/.."
BUDGET=${BUDGET:-2000}
RUN=${RUN:-long-suite}
SEEDS=${SEEDS:-10}
FINALISTS=${FINALISTS:-2}
OUT=${OUT:-bench/results/long-search}
mkdir -p "$OUT"
runs_dir=${NOS_RUNS:-search-results/runs}
start=$(date +%s)
if [ -f "$runs_dir/$RUN/run.db" ]; then
  node bin/nos.js search --resume --run "$RUN" --budget "$BUDGET" --json > "$OUT/search.json" 2> "$OUT/search.log"
else
  node bin/nos.js search --suite on --strategy rl --seed 0 --budget "$BUDGET" --run "$RUN" --json > "$OUT/search.json" 2> "$OUT/search.log"
fi
echo "search and funnel: $(( $(date +%s) - start )) s" > "$OUT/timing.txt"
node bin/nos.js leaderboard --run "$RUN" --top 20 --json > "$OUT/leaderboard.json"
node bin/nos.js leaderboard --run "$RUN" --top 20 > "$OUT/leaderboard.txt"
# The finalists: the rules at the held-out rung (3), best first.
finalists=$(node -e '
  const board = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
  const top = board.filter((e) => e.rung === 3).slice(0, Number(process.argv[2])).map((e) => e.rule);
  process.stdout.write(top.join(","));
' "$OUT/leaderboard.json" "$FINALISTS")
: > "$OUT/verdicts.tsv"
known="powersign,addsign,lion,momentum"
rules=${finalists:+$finalists,}$known
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
