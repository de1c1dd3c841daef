#!/bin/sh
# Prepare what bench/gpu-machine.sh needs beside the checkout on a machine with a GPU but no
# Node and no network (the H200 machine: Python, torch and CUDA only):
#   sh bench/gpu-pack.sh [PACK_DIR]          (default .gpu-pack, ignored by git; about 45 MB)
# Run it here, from a checkout with `npm ci` done, on Linux x86-64. PACK_DIR then holds:
#   node.xz       this machine's Node 20 binary (NodeSource's build: glibc and libstdc++ only)
#   app.tar.xz    dist/ (built now) and the files of node_modules the GPU checks load: traced by
#                 running those checks here on Mesa's software adapter (bench/gpu-pack-trace.mjs),
#                 plus tfjs-backend-wasm's .wasm files (read, not imported) and every package.json
#   cache.tar.xz  the dataset cache: MNIST whole; Fashion-MNIST's first 8,000 training, 1,000
#                 validation and 1,000 test images (enough to time ConvNet steps, which is all
#                 the script does with it; its accuracies would not be Fashion-MNIST's)
#   libvulkan1_*.deb   Debian's Vulkan loader, unpacked there only if the machine has none
#   MANIFEST      the commit, the Node version, the sizes
# With the device tool: name PACK_DIR in `carry` (the working tree and carried paths travel up to
# 64 MiB together) and run `sh bench/gpu-machine.sh PACK_DIR $OUT`.
set -eu
cd "$(dirname "$0")/.."
PACK=${1:-.gpu-pack}
command -v python3 >/dev/null || { echo 'gpu-pack: python3 is needed' >&2; exit 1; }
[ -d node_modules ] || { echo 'gpu-pack: run npm ci first' >&2; exit 1; }
npm run build >/dev/null
rm -rf "$PACK"
mkdir -p "$PACK"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
export EGL_PLATFORM=surfaceless NOS_PACK_TRACE="$TMP/trace" NOS_RUNS="$TMP/runs"
traced() {
  echo "gpu-pack: tracing: $*" >&2
  node --import ./bench/gpu-pack-trace.mjs "$@" >"$TMP/out" 2>&1 || {
    tail -20 "$TMP/out" >&2
    echo "gpu-pack: the traced run failed: node $*" >&2
    exit 1
  }
}
echo '{"w0": [1, 2, 3], "grads": [[0.1, -0.2, 0.3], [0.2, 0.1, -0.1]]}' >"$TMP/in.json"
traced bin/nos.js trace --rule adam --lr 0.01 --input "$TMP/in.json" --backend wgsl --json
traced bin/nos.js bench --only gpu --params 5000 --json
traced --expose-gc tests/fixtures/wgsl-repeat.mjs 1
traced bin/nos.js eval --device webgpu --rules adam --task softmax-mnist --steps 2 --lrs 0.01 --json
traced bin/nos.js eval --rules adam --task convnet-fashion --steps 1 --lrs 0.01 --workers 1 --json
traced bin/nos.js search --task softmax-mnist --budget 1 --steps 1 --funnel off --strategy rl --json
CACHE=$(node --input-type=module -e "const m = await import('./dist/evaluator/data.js'); m.sharedDataset('mnist'); m.sharedDataset('fashion'); console.log(m.cacheLocation().dir)")
(cd "$PACK" && apt-get download libvulkan1 >/dev/null 2>&1) ||
  echo 'gpu-pack: note: apt-get download libvulkan1 failed; the GPU machine must have a Vulkan loader of its own' >&2
python3 - "$PACK" "$TMP/trace" "$CACHE" "$(command -v node)" <<'PY'
import glob, io, lzma, os, subprocess, sys, tarfile

pack, trace, cache, node = sys.argv[1:5]
nm = os.path.realpath('node_modules')
files = set()
for line in open(trace):
    p = os.path.realpath(line.strip())
    if p.startswith(nm + os.sep) and os.path.isfile(p):
        files.add(os.path.relpath(p, nm))
files.update(os.path.relpath(p, nm) for p in glob.glob(os.path.join(nm, '@tensorflow/tfjs-backend-wasm/dist/*.wasm')))
# Every package.json from a file's folder up to node_modules: resolution reads "main", "exports", "type".
for f in list(files):
    d = os.path.dirname(f)
    while d:
        if os.path.isfile(os.path.join(nm, d, 'package.json')):
            files.add(os.path.join(d, 'package.json'))
        d = os.path.dirname(d)

def xz_tar(path, members):
    with tarfile.open(path, 'w:xz', preset=9) as t:
        for arc, src in members:
            t.add(src, arcname=arc, recursive=False)

app = [(os.path.join('node_modules', f), os.path.join(nm, f)) for f in sorted(files)]
for root, _dirs, names in os.walk('dist'):
    for n in names:
        if not n.endswith(('.map', '.d.ts')):
            p = os.path.join(root, n)
            app.append((p, p))
xz_tar(os.path.join(pack, 'app.tar.xz'), app)

# Fashion-MNIST cut to 8,000/1,000/1,000 images (the cache format: "nos1", 3 counts, labels, pixels).
import struct
IMAGE = 784
def subset(src, keep):
    b = open(src, 'rb').read()
    magic, *counts = struct.unpack('<4I', b[:16])
    total = sum(counts)
    labels, pixels = b[16:16 + total], b[16 + total:]
    starts = [0, counts[0], counts[0] + counts[1]]
    lab = b''.join(labels[s:s + k] for s, k in zip(starts, keep))
    pix = b''.join(pixels[s * IMAGE:(s + k) * IMAGE] for s, k in zip(starts, keep))
    return struct.pack('<4I', magic, *keep) + lab + pix
fashion = subset(os.path.join(cache, 'fashion.bin'), [8000, 1000, 1000])
with tarfile.open(os.path.join(pack, 'cache.tar.xz'), 'w:xz', preset=9) as t:
    t.add(os.path.join(cache, 'mnist.bin'), arcname='mnist.bin')
    info = tarfile.TarInfo('fashion.bin')
    info.size = len(fashion)
    t.addfile(info, io.BytesIO(fashion))

with open(node, 'rb') as src, lzma.open(os.path.join(pack, 'node.xz'), 'wb', preset=6) as dst:
    dst.write(src.read())

version = subprocess.run([node, '--version'], capture_output=True, text=True).stdout.strip()
try:
    commit = subprocess.run(['git', 'rev-parse', 'HEAD'], capture_output=True, text=True).stdout.strip()
except OSError:
    commit = 'unknown'
sizes = {n: os.path.getsize(os.path.join(pack, n)) for n in sorted(os.listdir(pack))}
with open(os.path.join(pack, 'MANIFEST'), 'w') as m:
    m.write(f'commit {commit}\nnode {version}\nnode_modules files {len(files)}\n')
    for n, s in sizes.items():
        m.write(f'{n} {s}\n')
total = sum(sizes.values())
print(f'gpu-pack: {pack}: {total / 2**20:.1f} MiB ({", ".join(f"{n} {s / 2**20:.1f}" for n, s in sizes.items())}); '
      f'{len(files)} files of node_modules; commit {commit[:12]}')
if total > 60 * 2**20:
    sys.exit('gpu-pack: over 60 MiB: with the checkout it would not fit the 64 MiB that travel')
PY
