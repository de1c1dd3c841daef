#!/bin/sh
# The GPU checks of issue 13, for a machine with a GPU (one short run, a few minutes):
#   sh bench/gpu-machine.sh [OUT_DIR]
# Needs Node 20, this checkout built (npm ci; npm run build) and a Vulkan driver (the NVIDIA
# ICD: set VK_DRIVER_FILES if the loader does not find it). Prints and writes:
#   - gpu.json: the WGSL Adam kernel on 1M parameters, ns/param and GB/s, next to the device's
#     buffer-copy bandwidth (`nos bench --only gpu`);
#   - training.json: ms per child step for both tasks on wasm, next to PyTorch when it is
#     installed, and gpuMsPerStep (null until children train on the GPU; see the README).
set -eu
OUT=${1:-bench/results}
mkdir -p "$OUT"
node -e 'import("webgpu").then(async (m) => { Object.assign(globalThis, m.globals); const a = await m.create([]).requestAdapter({ powerPreference: "high-performance" }); console.log("adapter:", a ? JSON.stringify(a.info) : "none"); process.exit(0); })'
timeout 300 node bin/nos.js bench --only gpu --json | tee "$OUT/gpu.json"
timeout 300 node bin/nos.js bench --only training --json | tee "$OUT/training-gpu-machine.json"
