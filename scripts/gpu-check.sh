#!/usr/bin/env bash
# One GPU check of the harness in one call of at most 8 minutes, on a fresh machine with a GPU:
#   1. installs the package (pip install -e ., quiet; offline: the wheels in $WHEELS, from scripts/gpu-wheels.sh,
#      with the repo on PYTHONPATH);
#   2. ImageNet-sized JPEGs of real photo content (harness.photos: 10 classes x 300 training, x 75 validation images),
#      written by 10 processes;
#   3. `harness bench alexnet2012 alexnet2014 zfnet --size 224 --batch-size 128 --jpegs DIR` in fp32 and in bf16,
#      with --json: bare loop, harness step in memory, from the JPEGs and from a prepared store (default workers), the
#      input pipeline per core, TFLOP/s and MFU;
#   4. torchvision's recipe from the same JPEGs, where to decode (benchmarks/decode_paths.py): PIL in 8 DataLoader
#      workers against batched decode_jpeg on the GPU (torchvision.io's, and TorchCodec's where it imports: its wheel
#      is in scripts/gpu-wheels.txt), with torchvision_alexnet's bare bf16 step beside them;
#   5. a short paper-profile run of alexnet2014 (1 epoch, 8 workers) on the same JPEGs, in a fresh SQLite store;
#   6. a summary: every bench row, the target (alexnet2014, 224 px, bf16, from a store: >= 15,000 images/s with at
#      most 5 % data wait; harness.bench.TARGET) met or not, the decode rows and the run's images/s, printed and
#      written to $OUT/summary.txt.
# Files under "${OUT:-results}" (at most 8, none in subfolders, so a device call brings them all back):
#   env.txt, bench-fp32.json, bench-bf16.json, bench.txt (the bench's and the decode's tables), decode.json, run.log,
#   mlflow.db, summary.txt.
#
#   bash scripts/gpu-check.sh                    # on the GPU machine, with what its image holds
#   WHEELS=.whl bash scripts/gpu-check.sh        # with the wheels scripts/gpu-wheels.sh put in .whl/ (carried)
#   QUICK=1 bash scripts/gpu-check.sh            # the same steps, tiny, on the CPU, in about half a minute (tests)
# QUICK=1: alexnet2012 only, fp32 only, 64 px, batch 8, 2 steps, 2 classes x 20 images, device cpu, no install (bf16
# autocast on a CPU without bf16 units is ~15x slower than fp32: 0.6 against 9.9 images/s here, alexnet2012, 64 px,
# batch 8). VARIANTS="..." and PRECISIONS="..." override the lists; SKIP_INSTALL=1 skips step 1.
# Each step has its own time limit (JPEGs 60 s, bench 2 x 120 s, decode 60 s, run 120 s: 8 minutes at most); a step
# that fails or runs out is reported and the next one still runs; the exit status is 1 if any failed.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
OUT="${OUT:-results}"
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
PY="${PYTHON:-python3}"
export PYTHONUNBUFFERED=1 MLFLOW_ENABLE_ASYNC_LOGGING=false

if [[ "${QUICK:-0}" == 1 ]]; then
    SIZE=64 BATCH=8 STEPS=2 IMAGES=16 CLASSES=2 PER_CLASS=20 DEVICE=cpu WORKERS=0 RUN_BATCH=4 LIMIT=120
    DECODE_PRECISION=fp32
    SKIP_INSTALL=1 VARIANTS="${VARIANTS:-alexnet2012}" PRECISIONS="${PRECISIONS:-fp32}"
else
    VARIANTS="${VARIANTS:-alexnet2012 alexnet2014 zfnet}" PRECISIONS="${PRECISIONS:-fp32 bf16}"
    # 10 x 300 training JPEGs: (3 + 20) x 128 = 2,944 for the bench's training rows from JPEGs and from a store
    SIZE=224 BATCH=128 STEPS=20 IMAGES=200 CLASSES=10 PER_CLASS=300 DEVICE=cuda WORKERS=8 RUN_BATCH=128 LIMIT=120
    DECODE_PRECISION=bf16
fi
failed=()

step() {  # step NAME SECONDS COMMAND...: run with a time limit, record a failure, go on
    local name="$1" limit="$2"
    shift 2
    echo "== $name (limit ${limit}s)"
    local start=$SECONDS
    if timeout "$limit" "$@"; then
        echo "== $name: done in $((SECONDS - start)) s"
    else
        echo "== $name: FAILED (exit $?) after $((SECONDS - start)) s"
        failed+=("$name")
    fi
}

# --- 1. install -------------------------------------------------------------------------------------------------------
if [[ "${SKIP_INSTALL:-0}" != 1 ]]; then
    if [[ -n "${WHEELS:-}" ]]; then
        # offline: the packages the image lacks, carried as wheels (scripts/gpu-wheels.sh), installed without their
        # dependencies into a folder of their own, ahead of the image's on the path; the checkout itself on the path
        "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
            "$WHEELS"/*.whl || failed+=("install")
        export PYTHONPATH="/tmp/site${PYTHONPATH:+:$PYTHONPATH}"
    else
        # no retries: on a machine that reaches no index, fail in seconds and fall back to the installed packages
        "$PY" -m pip install -q --retries 0 --timeout 10 -e . \
            || "$PY" -m pip install -q --no-deps --no-build-isolation --no-index -e . \
            || failed+=("install")
    fi
fi
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"  # the checkout's harness even where pip could not install it

{
    date -u
    "$PY" -c 'import sys, torch; print("python", sys.version.split()[0], "| torch", torch.__version__,
"| cuda", torch.cuda.is_available() and torch.cuda.get_device_name(0))'
    command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm \
        --format=csv || true
    nproc
    "$PY" -m pip list 2>/dev/null | grep -iE '^(torch|torchvision|mlflow|optuna|mlxtend|pillow|scikit-learn|numpy) ' \
        || true
} >"$OUT/env.txt" 2>&1
cat "$OUT/env.txt"

# --- 2. ImageNet-sized JPEGs, once: read by the bench (pipeline rows, and training from JPEGs and from a prepared
# store) and by the run ----------------------------------------------------------------------------------------------
step "jpegs" 60 "$PY" -c "from pathlib import Path; from harness.photos import imagenet_like_jpegs as w
w(Path('$WORK/jpegs'), $PER_CLASS, $CLASSES, splits=('train',), processes=$CLASSES)
w(Path('$WORK/jpegs'), max(1, $PER_CLASS // 4), $CLASSES, splits=('val',), processes=$CLASSES)"

# --- 3. bench, fp32 and bf16 ------------------------------------------------------------------------------------------
: >"$OUT/bench.txt"
for precision in $PRECISIONS; do
    step "bench $precision" "$LIMIT" bash -c "set -o pipefail; \"$PY\" -m harness bench $VARIANTS \
        --size $SIZE --batch-size $BATCH --steps $STEPS --images $IMAGES --jpegs \"$WORK/jpegs\" --precision $precision --device $DEVICE \
        --json \"$OUT/bench-$precision.json\" 2>&1 | tee -a \"$OUT/bench.txt\""
done

# --- 4. torchvision's recipe: where to decode the JPEGs --------------------------------------------------------------
step "decode" 60 bash -c "set -o pipefail; \"$PY\" benchmarks/decode_paths.py --jpegs \"$WORK/jpegs\" --device $DEVICE \
    --size $SIZE --batch-size $BATCH --steps 5 --rounds 2 --workers $WORKERS --train torchvision_alexnet \
    --precision $DECODE_PRECISION --json \"$OUT/decode.json\" 2>&1 | tee -a \"$OUT/bench.txt\""

# --- 5. a short paper-profile run on ImageNet-sized JPEGs --------------------------------------------------------------
# the store lives in $WORK (artifacts beside it would add files under $OUT); its database is copied to $OUT after
step "run alexnet2014" 120 bash -c "set -o pipefail; \"$PY\" -m harness run alexnet2014 --data \"$WORK/jpegs\" \
    --epochs 1 --batch-size $RUN_BATCH --device $DEVICE --workers $WORKERS --no-report \
    --tracking-uri \"sqlite:///$WORK/store/mlflow.db\" --checkpoint-dir \"$WORK/ckpt\" 2>&1 | tee \"$OUT/run.log\""
[[ -f "$WORK/store/mlflow.db" ]] && cp "$WORK/store/mlflow.db" "$OUT/mlflow.db"

# --- 6. summary -------------------------------------------------------------------------------------------------------
PRECISIONS="$PRECISIONS" "$PY" - "$OUT" "${failed[@]}" <<'EOF' | tee "$OUT/summary.txt"
import os
import sys
from pathlib import Path

out, failed = Path(sys.argv[1]), sys.argv[2:]
try:
    from harness.bench import read_json, render, target_lines
except ImportError as e:
    print(f"no summary: {e}")
    raise SystemExit(0)
results = []
for p in os.environ["PRECISIONS"].split():
    f = out / f"bench-{p}.json"
    results += [read_json(f)] if f.is_file() else []
    print(render(results[-1]) if f.is_file() else f"bench {p}: no result", end="\n\n")
print("target:", *target_lines(results), sep="\n  ", end="\n\n")
decode = out / "decode.json"
if decode.is_file():
    sys.path.insert(0, "benchmarks")
    import json
    from decode_paths import render as render_decode
    print(render_decode(json.loads(decode.read_text())), end="\n\n")
else:
    print("decode: no result", end="\n\n")
log = out / "run.log"
lines = log.read_text().splitlines() if log.is_file() else []
print("run alexnet2014 (paper profile, 1 epoch):", *(lines[-6:] or ["no log"]), sep="\n  ")
print("failed steps:", ", ".join(failed) if failed else "none")
EOF
[[ ${#failed[@]} -eq 0 ]]
