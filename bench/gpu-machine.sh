#!/usr/bin/env bash
# The GPU checks of issue 21, in one run of a few minutes on a machine with a GPU:
#   bash bench/gpu-machine.sh [PACK_DIR] [OUT_DIR]     (defaults .gpu-pack, bench/results/gpu-machine)
# Made for the H200 machine: an NVIDIA driver, Python, torch and CUDA, but no Node and no network.
# Beside the checkout it needs PACK_DIR, made by `sh bench/gpu-pack.sh` on a machine with Node 20
# and `npm ci` done (Node, dist/, the node_modules files these checks load, the dataset cache,
# Debian's Vulkan loader; about 45 MB). On a machine with Node 20, `npm ci` and `npm run build`
# done, PACK_DIR may be absent. What it runs, each step with a time limit, going on past a failure:
#   1. the adapter Dawn finds, and its limits (VK_DRIVER_FILES is found or written for NVIDIA);
#   2. the abort of issue 21: 20 traces of 100k parameters in one process with the collector
#      forced, a 2-D dispatch past 65,535 workgroups and a chunked kernel, against the CPU;
#   3. nos bench --only gpu: WGSL Adam at 1M, 10M and 100M parameters against the device copy;
#   4. nos eval --device webgpu --rules adam --steps 20 (mlp-mnist) against --device cpu;
#   5. nos bench --only training: ms per child step on wasm, PyTorch CPU and the GPU (gpuMsPerStep);
#   6. PyTorch on CUDA beside them (bench/torch_cuda.py): copy bandwidth, fused/foreach Adam at the
#      same sizes, the same child steps;
#   7. the PyTorch export's speed on CUDA at 16M parameters (bench/torch-export-speed.py --device
#      cuda, when the checkout has it: issue 21 item 4 writes it).
# OUT_DIR gets three files: results.json (every step's JSON, exit status and seconds),
# summary.txt (the figures side by side) and log.txt (everything printed).
set -uo pipefail
cd "$(dirname "$0")/.."
PACK=${1:-.gpu-pack}
OUT=${2:-bench/results/gpu-machine}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
RT=$(mktemp -d)
PARTS=$RT/parts
mkdir -p "$PARTS"
LOG=$OUT/log.txt
: >"$LOG"
T0=$(date +%s)
say() { echo "gpu-machine: $*" | tee -a "$LOG" >&2; }
# step NAME SECONDS CMD...: stdout to parts/NAME.json, stderr to the log, status to parts/NAME.status.
step() {
  local name=$1 limit=$2 start rc
  shift 2
  start=$(date +%s)
  say "$name: $*"
  timeout "$limit" "$@" >"$PARTS/$name.json" 2>>"$LOG"
  rc=$?
  echo "{\"rc\": $rc, \"seconds\": $(($(date +%s) - start))}" >"$PARTS/$name.status"
  say "$name: exit $rc after $(($(date +%s) - start)) s"
}

# --- Node, dist/, node_modules and the dataset cache: from the pack when there is one.
if [ -d "$PACK" ]; then
  say "pack $PACK: $(tr '\n' ' ' <"$PACK/MANIFEST")"
  mkdir -p "$RT/bin" "$RT/cache"
  python3 - "$PACK" "$RT" <<'PY' || { say 'could not unpack the pack'; exit 1; }
import lzma, os, shutil, sys, tarfile
pack, rt = sys.argv[1:3]
with lzma.open(os.path.join(pack, 'node.xz')) as src, open(os.path.join(rt, 'bin', 'node'), 'wb') as dst:
    shutil.copyfileobj(src, dst)
os.chmod(os.path.join(rt, 'bin', 'node'), 0o755)
# dist/ and node_modules/ go into the checkout, unless it has its own node_modules (npm ci).
if not os.path.exists('node_modules'):
    with tarfile.open(os.path.join(pack, 'app.tar.xz')) as t:
        t.extractall('.')
with tarfile.open(os.path.join(pack, 'cache.tar.xz')) as t:
    t.extractall(os.path.join(rt, 'cache'))
PY
  export PATH="$RT/bin:$PATH" NOS_CACHE="$RT/cache"
fi
command -v node >/dev/null || { say 'no Node: make the pack (bench/gpu-pack.sh) and pass its folder'; exit 1; }
[ -f dist/cli/main.js ] || { say 'no dist/: npm run build (or pass the pack)'; exit 1; }

# --- Vulkan: the loader (libvulkan.so.1) and the NVIDIA driver's ICD file.
if ! ldconfig -p 2>/dev/null | grep -q 'libvulkan\.so\.1'; then
  deb=$(ls "$PACK"/libvulkan1_*.deb 2>/dev/null | head -1)
  if [ -n "$deb" ]; then
    mkdir -p "$RT/root"
    python3 - "$deb" "$RT/root" <<'PY'
import io, sys, tarfile
deb, dest = sys.argv[1:3]
data = open(deb, 'rb').read()
pos = 8  # an ar archive: "!<arch>\n", then 60-byte headers
while pos < len(data):
    name, size = data[pos:pos + 16].strip().decode(), int(data[pos + 48:pos + 58])
    body = data[pos + 60:pos + 60 + size]
    if name.startswith('data.tar'):
        tarfile.open(fileobj=io.BytesIO(body)).extractall(dest)
    pos += 60 + size + (size & 1)
PY
    export LD_LIBRARY_PATH="$RT/root/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    say "no Vulkan loader on the machine: using $(basename "$deb")"
  else
    say 'no Vulkan loader (libvulkan.so.1) and none in the pack: Dawn will find no GPU adapter'
  fi
fi
if [ -z "${VK_DRIVER_FILES:-}${VK_ICD_FILENAMES:-}" ]; then
  for f in /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json /usr/share/vulkan/icd.d/nvidia_icd.json \
    /etc/vulkan/icd.d/nvidia_icd.json /usr/local/share/vulkan/icd.d/nvidia_icd.json; do
    if [ -f "$f" ]; then
      export VK_DRIVER_FILES=$f
      break
    fi
  done
  if [ -z "${VK_DRIVER_FILES:-}" ] && ldconfig -p 2>/dev/null | grep -q 'libGLX_nvidia\.so\.0'; then
    echo '{"file_format_version": "1.0.0", "ICD": {"library_path": "libGLX_nvidia.so.0", "api_version": "1.3"}}' \
      >"$RT/nvidia_icd.json"
    export VK_DRIVER_FILES=$RT/nvidia_icd.json
  fi
fi
# The Python that holds torch (on the H200 machine, the plain python3 of PATH, not /usr/bin's).
export EGL_PLATFORM=${EGL_PLATFORM:-surfaceless} NOS_RUNS=$RT/runs NOS_PYTHON=${NOS_PYTHON:-$(command -v python3)}
say "node $(node --version) at $(command -v node); python $NOS_PYTHON; VK_DRIVER_FILES=${VK_DRIVER_FILES:-unset}; $(nvidia-smi -L 2>/dev/null | head -1 || echo 'no nvidia-smi')"

# --- The checks.
step adapter 60 node --input-type=module -e '
  const w = await import("./dist/dsl/compile/webgpu.js");
  const g = await w.initWebGpu();
  console.log(JSON.stringify({ adapter: g.adapter, software: g.software, limits: g.limits }));
  await w.closeWebGpu();'
step wgslRepeat 180 node --expose-gc tests/fixtures/wgsl-repeat.mjs 20
step gpu 300 node bin/nos.js bench --only gpu --json
step evalGpu 240 node bin/nos.js eval --device webgpu --rules adam --steps 20 --json
step evalCpu 240 node bin/nos.js eval --rules adam --steps 20 --workers 4 --json
step training 300 node bin/nos.js bench --only training --json
step torchCuda 240 "$NOS_PYTHON" bench/torch_cuda.py
if [ -f bench/torch-export-speed.py ]; then
  # 16M parameters, as the issue's figures (exported Adam 0.87 ms/step against torch's 0.34).
  step torchExport 240 "$NOS_PYTHON" bench/torch-export-speed.py --device cuda --params 16000000
else
  say 'torchExport: SKIPPED: bench/torch-export-speed.py is not in this checkout (issue 21 item 4 writes it)'
fi

# --- One JSON document and a summary.
node --input-type=module - "$PARTS" "$OUT" "$(($(date +%s) - T0))" <<'JS'
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
const [parts, out, seconds] = process.argv.slice(2);
const doc = { seconds: Number(seconds), steps: {} };
for (const f of readdirSync(parts).filter((f) => f.endsWith('.status'))) {
  const name = f.slice(0, -'.status'.length);
  const text = readFileSync(join(parts, `${name}.json`), 'utf8').trim();
  let json = null;
  for (const candidate of [text, text.split('\n').at(-1)]) {
    try { json = JSON.parse(candidate); break; } catch { json = text === '' ? null : { unparsed: text.slice(-2000) }; }
  }
  doc.steps[name] = { ...JSON.parse(readFileSync(join(parts, f), 'utf8')), json };
}
writeFileSync(join(out, 'results.json'), `${JSON.stringify(doc, null, 1)}\n`);
const s = Object.fromEntries(Object.entries(doc.steps).map(([k, v]) => [k, v.json ?? {}]));
const f = (x, d = 2) => (typeof x === 'number' ? x.toFixed(d) : '-');
const lines = [`gpu-machine: ${doc.seconds} s; exit codes ${Object.entries(doc.steps).map(([k, v]) => `${k} ${v.rc}`).join(', ')}`];
lines.push(`adapter: ${s.adapter?.adapter ?? '-'} (software: ${s.adapter?.software ?? '-'})`);
const w = s.wgslRepeat;
lines.push(`abort check: ${w?.reps ?? 0} traces of 100k, max |diff| ${w?.maxDiff ?? '-'}; 2-D dispatch ${JSON.stringify(w?.groups ?? '-')}, |diff| ${w?.bigDiff ?? '-'}; chunks ${JSON.stringify(w?.chunks ?? '-')}, |diff| ${w?.chunkDiff ?? '-'}`);
const g = s.gpu?.gpu;
const t = s.torchCuda;
lines.push(`device copy: WGSL/Dawn ${f(g?.deviceCopyGBps, 0)} GB/s, torch ${f(t?.copyGBps, 0)} GB/s`);
for (const z of g?.sizes ?? []) {
  const tz = (t?.adam ?? []).find((r) => r.params === z.params);
  lines.push(`adam ${z.params.toLocaleString('en-US').padStart(11)}: WGSL ${f(z.nsPerParam, 4)} ns/param ${f(z.GBps, 0)} GB/s (${f((100 * z.GBps) / g.deviceCopyGBps, 0)}% of copy, ${z.chunks} chunk(s)); torch fused ${f(tz?.fusedNsPerParam, 4)}, foreach ${f(tz?.foreachNsPerParam, 4)} ns/param`);
}
for (const n of s.gpu?.notes ?? []) lines.push(`note: ${n}`);
const tr = s.training?.training;
for (const k of ['mlp', 'convnet'])
  lines.push(`${k} step: wasm ${f(tr?.[k]?.msPerStep)} ms, torch CPU ${f(tr?.[k]?.torchMsPerStep)}, GPU (tfjs-webgpu + WGSL) ${f(tr?.[k]?.gpuMsPerStep)}, torch CUDA ${f(t?.[`${k}MsPerStep`])}`);
for (const n of s.training?.notes ?? []) lines.push(`note: ${n}`);
const eg = s.evalGpu?.results?.[0];
const ec = s.evalCpu?.results?.[0];
lines.push(`eval adam --steps 20: GPU val ${eg?.valAcc?.mean ?? '-'} test ${eg?.testAcc?.mean ?? '-'} loss ${eg?.finalLoss?.mean ?? '-'} lr ${eg?.bestLr ?? '-'} | CPU val ${ec?.valAcc?.mean ?? '-'} test ${ec?.testAcc?.mean ?? '-'} loss ${ec?.finalLoss?.mean ?? '-'} lr ${ec?.bestLr ?? '-'}`);
lines.push(`torch export speed on CUDA: ${doc.steps.torchExport ? JSON.stringify(s.torchExport).slice(0, 600) : 'SKIPPED (no bench/torch-export-speed.py)'}`);
writeFileSync(join(out, 'summary.txt'), `${lines.join('\n')}\n`);
console.log(lines.join('\n'));
JS
rm -rf "$RT"
