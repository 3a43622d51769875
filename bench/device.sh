#!/usr/bin/env bash
# One-shot speed check on a GPU machine (issue 18), from the repository root of a copy of the tree:
# render throughput, SGD at 256x256 (1 and 8 seeds), ES's fused-generation gain, NEAT at
# populations 1,000 and 10,000, the FER suite on the skull (ferlab analyze there and on that
# machine's CPU, compared; bench/analyze.py's 8 seeds against 1, at 64 and 512 pictures a
# call) and bench/islands.py at 1, 2, 4 and 8 islands (CPU actors: the machine's 16 cores).
# Each part has its own time limit (10 minutes in all after the setup; stop 34's run took
# 4.5) and a failing part does not stop the others; NEAT, the part likeliest to run long,
# comes last. Tables go to stdout and to $OUT/<part>.txt (default results/device/): what the
# device tool brings back.
#
#   bash bench/device.sh                          # on the GPU machine
#   bash bench/device.sh --quick                  # small sizes, e.g. on a CPU to check the script
#   PARTS="suite analyze" bash bench/device.sh    # only those parts (a second, shorter run)
#
# Setup: the machine's own python3 (its image has JAX with the CUDA plugin, flax, optax, pandas)
# with this tree on PYTHONPATH; nothing is installed into it. That machine reaches no package
# index: what it lacks (evosax, ray, defusedxml, ...) travels in .whl/, made here by
# `bash bench/device_wheels.sh` and named in the device tool's carry, and is unpacked into
# $DEVICE_SITE (default /tmp/ferlab-site). PYTHON=/path/to/python skips the setup.
# Picbreeder data: $FERLAB_PICBREEDER_DATA, else shared/data/picbreeder, else ../shared/data/picbreeder.
set -uo pipefail
cd "$(dirname "$0")/.."
QUICK=0
case "${1:-}" in
  --quick) QUICK=1 ;;
  "") ;;
  *) echo "device.sh: unknown argument '$1' (only --quick)" >&2; exit 2 ;;
esac
for p in ${PARTS:-}; do
  case "$p" in render | sgd | analyze | suite | islands | neat) ;;
    *) echo "device.sh: unknown part '$p' in PARTS (parts: render sgd analyze suite islands neat)" >&2; exit 2 ;;
  esac
done
OUT="${OUT:-results/device}"
mkdir -p "$OUT"
export OUT PYTHONUNBUFFERED=1 TQDM_DISABLE=1 RAY_ADDRESS=local PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
start=$(date +%s)

if [ -z "${PYTHON:-}" ]; then
  PYTHON=python3
  if [ -d .whl ]; then
    SITE="${DEVICE_SITE:-/tmp/ferlab-site}"
    "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" .whl/*.whl
    for t in .whl/*.tar.xz; do
      [ -f "$t" ] && "$PYTHON" -c "import sys, tarfile; tarfile.open(sys.argv[1]).extractall(sys.argv[2], filter='tar')" "$t" "$SITE"
    done
    export PYTHONPATH="$PYTHONPATH:$SITE"
  fi
fi
for d in "${FERLAB_PICBREEDER_DATA:-}" shared/data/picbreeder ../shared/data/picbreeder; do
  if [ -n "$d" ] && [ -f "$d/README.md" ]; then export FERLAB_PICBREEDER_DATA="$(cd "$d" && pwd)"; break; fi
done

part() {  # part NAME LIMIT_S COMMAND...: run, print and save one part's output
  local name=$1 limit=$2; shift 2
  [ -n "${PARTS:-}" ] && [[ " $PARTS " != *" $name "* ]] && return 0
  local t0; t0=$(date +%s)
  echo "=== $name (limit ${limit}s): $*"
  timeout "$limit" "$@" 2>&1 | grep -v -e "^WARNING" -e "^I0000" | tee "$OUT/$name.txt"
  echo "=== $name: exit ${PIPESTATUS[0]}, $(( $(date +%s) - t0 ))s"
}

analyze_both() {  # ferlab analyze of the skull at SIZE on the accelerator, timed, then on this machine's CPU:
  # the two metrics.json should agree (the suite measures in true float32 everywhere)
  local size=$1 skull="$FERLAB_PICBREEDER_DATA/nets/picbreeder_skull.npz"
  time "$PYTHON" -m ferlab.cli analyze "$skull" --size "$size" --out /tmp/device_analyze && cp /tmp/device_analyze/metrics.json "$OUT/"
  JAX_PLATFORMS=cpu "$PYTHON" -m ferlab.cli analyze "$skull" --size "$size" --out /tmp/device_analyze_cpu
  "$PYTHON" - /tmp/device_analyze/metrics.json /tmp/device_analyze_cpu/metrics.json <<'PY'
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:])
print(f"{'':22s}{'device':>10s}{'cpu':>10s}")
for k in ("fer_score", "live_weights", "effect_groups", "random_directions"):
    print(f"{k:22s}{a[k]:>10.4g}{b[k]:>10.4g}")
print("largest metric difference", max(abs(a["metrics"][k] - b["metrics"][k]) for k in a["metrics"]))
PY
}
export -f analyze_both
export PYTHON

{ "$PYTHON" -c "import jax; print('jax', jax.__version__, jax.devices())"; nvidia-smi -L 2>/dev/null; nproc
  echo "setup: $(( $(date +%s) - start ))s; data: ${FERLAB_PICBREEDER_DATA:-not found}"; } 2>&1 | tee "$OUT/env.txt"

if [ "$QUICK" = 1 ]; then
  part render 120 "$PYTHON" bench/render.py --quick
  part sgd 180 bash -c "$PYTHON bench/sgd.py --quick; $PYTHON bench/es.py --populations 32 --generations 10 --repeats 1"
  part neat 300 "$PYTHON" bench/neat.py --size 16 --pops 32 --generations 5 --seeds 1 --only ferlab \
    --fuse-pops 32 --fuse-generations 10 --painter-pops 32 --painter-generations 3
  part analyze 240 bash -c "analyze_both 32"
  part suite 180 "$PYTHON" bench/analyze.py --seeds-only --repeats 1 --size 32 --chunk 64 128 --profile 10
  part islands 240 env JAX_PLATFORMS=cpu "$PYTHON" bench/islands.py --regime es --islands 1 2 --generations 6 --population 16 --resolution 16
else
  part render 50 "$PYTHON" bench/render.py --size 512 --batch 256 --batch-size 64 --repeats 10
  part sgd 90 bash -c "$PYTHON bench/sgd.py --size 256 --steps 100 --seeds 8 --repeats 3; $PYTHON bench/es.py --generations 30 --repeats 2"
  part analyze 70 bash -c "analyze_both 64"
  part suite 110 "$PYTHON" bench/analyze.py --seeds-only --repeats 3 --chunk 64 512 --profile 30
  part islands 80 env JAX_PLATFORMS=cpu "$PYTHON" bench/islands.py --regime es --islands 1 2 4 8 --generations 20 --population 64
  part neat 200 "$PYTHON" bench/neat.py --size 32 --pops 1000 10000 --generations 20 --seeds 1 --only ferlab \
    --fuse-pops 32 150 --fuse-generations 30 --painter-pops 1000 10000 --painter-generations 10
fi
echo "device.sh: $(( $(date +%s) - start ))s in all"
