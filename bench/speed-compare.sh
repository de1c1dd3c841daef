#!/bin/sh
# Issue 13's figures before and after, side by side in one run (run it under the shared lock):
#   flock /tmp/nos-bench.lock sh bench/speed-compare.sh BEFORE_DIR [OUT_DIR]
# BEFORE_DIR is a built checkout of the commit to compare with (git archive <commit> | tar -x;
# node_modules linked; tsc -p tsconfig.build.json; bench/profile.ts copied in and built). The
# two trees run alternately, each part twice, so load on the machine hits both alike.
set -eu
BEFORE=$1
OUT=${2:-bench/results}
AFTER=$(pwd)
mkdir -p "$OUT"
for round in 1 2; do
  for side in before after; do
    dir=$BEFORE; [ "$side" = after ] && dir=$AFTER
    (cd "$dir" && node bin/nos.js bench --only kernels --json) > "$OUT/speed-$side-kernels-$round.json"
    (cd "$dir" && node bin/nos.js bench --only training --json) > "$OUT/speed-$side-training-$round.json"
  done
done
(cd "$BEFORE" && node dist/bench/profile.js --js) > "$OUT/profile-before.txt"
(cd "$AFTER" && node dist/bench/profile.js) > "$OUT/profile-after.txt"
