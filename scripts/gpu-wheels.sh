#!/usr/bin/env bash
# Wheels for the lent GPU machine, which reaches no package index: the packages of scripts/gpu-wheels.txt (MLflow,
# Optuna, mlxtend and their needs that the machine's image lacks; TorchCodec) for its Python 3.12, into .whl/
# (ignored by git, ~46 MB; the working tree that travels may hold 64 MiB). Run here, where pip reaches an index:
#
#   bash scripts/gpu-wheels.sh
#   then, with the device tool: run(carry=[".whl"], command="WHEELS=.whl bash scripts/gpu-check.sh")
#
# gpu-check.sh installs them with --no-deps into a folder of their own (the image's packages stay as they are).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PY="${PYTHON:-python3}"
rm -rf .whl
platforms=()
for p in manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_17_x86_64 manylinux2014_x86_64 manylinux1_x86_64; do
    platforms+=(--platform "$p")
done
"$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp "${platforms[@]}" \
    -d .whl -r scripts/gpu-wheels.txt
count=$(ls .whl/*.whl | wc -l)
echo "$count wheels, $(du -sm .whl | cut -f1) MiB in .whl/ (the tree that travels: at most 64 MiB in all)"
