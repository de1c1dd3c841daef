#!/usr/bin/env bash
# The long search (issue 19): the workload suite's search with a budget of 2,000 trained rules
# (hours on 2 cores), then the funnel, then 10-seed verdicts of the top finalists against tuned
# Adam on every held-out workload, with the known rules (PowerSign, AddSign, Lion, momentum)
# beside them to check the funnel ranks them sensibly. Resumable: rerun it after a stop and the
# search continues (--resume); results land in bench/results/RUN/ (commit them).
#
#   bash bench/long-search.sh   # STRATEGY=random WORKLOADS=mlp-mnist BUDGET=2000 SEEDS=10 FINALISTS=2 KNOWN=
#   STRATEGY=rl WORKLOADS= RUN=long-suite OUT=bench/results/long-search bash bench/long-search.sh   # the first one
#   BUDGET=300 RUN=long-300 bash bench/long-search.sh
#
# STRATEGY: random by default, because it reaches its budget. The RL controller (learning rate
# 0.01, batches of 10) converges within ~100 batches and then mostly re-samples rules it knows
# (the first long search: 307 rules trained by batch 100, 26 more in the next 557 batches), and
# evolution as it was then filled its population with copies of its best rule (89% cache hits
# after 5,749 samples, 305 trained); either ends at the sample cap (20 x the budget) far short of
# 2,000 trained rules. (Evolution no longer lets cache hits join its population: not yet run long.)
#
# WORKLOADS: the search workloads (--search-workloads; empty: the default search suite,
# mlp-mnist + ae-mnist). mlp-mnist alone by default: on the fresh fidelity panel it ranks rules as
# the held-out suite does better than the default suite (Spearman 0.938 vs 0.890; 0.828 vs 0.694
# among rules that train) and better than mlp-mnist + softmax-mnist (0.926, 0.794;
# bench/results/fidelity-heldout-mlp-softmax.txt), at 2.8 s of one thread a rule instead of 19
# s, so 2,000 rules take about an hour on 2 cores.
#
# KNOWN: the known rules judged beside the finalists (empty by default: bench/heldout-verdicts.sh
# judged them against tuned Adam already, docs/STUDIES.md).
set -euo pipefail
cd "$(dirname "$0")/.."
STRATEGY=${STRATEGY:-random}
WORKLOADS=${WORKLOADS-mlp-mnist}
export KNOWN=${KNOWN-}
BUDGET=${BUDGET:-2000}
RUN=${RUN:-long-$STRATEGY}
SEEDS=${SEEDS:-10}
FINALISTS=${FINALISTS:-2}
OUT=${OUT:-bench/results/$RUN}
mkdir -p "$OUT"
runs_dir=${NOS_RUNS:-search-results/runs}
start=$(date +%s)
if [ -f "$runs_dir/$RUN/run.db" ]; then
  node bin/nos.js search --resume --run "$RUN" --budget "$BUDGET" --json > "$OUT/search.json" 2> "$OUT/search.log"
else
  node bin/nos.js search --suite on ${WORKLOADS:+--search-workloads "$WORKLOADS"} --strategy "$STRATEGY" --seed 0 --budget "$BUDGET" --run "$RUN" --json > "$OUT/search.json" 2> "$OUT/search.log"
fi
echo "search and funnel: $(( $(date +%s) - start )) s" > "$OUT/timing.txt"
# The verdicts: the finalists and the known rules against tuned Adam on every held-out workload.
RUN="$RUN" SEEDS="$SEEDS" FINALISTS="$FINALISTS" OUT="$OUT" bash bench/heldout-verdicts.sh
