#!/usr/bin/env bash
# The README's claims about known rules: each rule paired with Adam over 10 seeds (paired t-test,
# 95% CI), on the proxy task and on the transfer task, under the search's own protocol.
# Long (about 15 minutes on 2 cores): run by hand, commit docs/claims-*/ (results.json,
# curves.svg, table.txt).
set -euo pipefail
cd "$(dirname "$0")/.."
rules="sgd,momentum,rmsprop,amsgrad,lion,signum,powersign,addsign,powersign-ld,addsign-ld"
mkdir -p docs/claims-mlp-mnist docs/claims-convnet-fashion
node bin/nos.js eval --task mlp-mnist --rules "$rules" --baseline adam --seeds 10 --out docs/claims-mlp-mnist > docs/claims-mlp-mnist/table.txt
node bin/nos.js eval --task convnet-fashion --rules "powersign-ld,addsign-ld" --baseline adam --seeds 10 --out docs/claims-convnet-fashion > docs/claims-convnet-fashion/table.txt
