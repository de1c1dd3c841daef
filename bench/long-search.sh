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
# The verdicts: the finalists and the known rules against tuned Adam on every held-out workload.
RUN="$RUN" SEEDS="$SEEDS" FINALISTS="$FINALISTS" OUT="$OUT" bash bench/heldout-verdicts.sh
