#!/usr/bin/env bash
# The suite on another torch and torchvision than the development environment's: the oldest pyproject.toml admits
# (torch>=2.10, torchvision>=0.25), or the GPU image's (torch 2.11.0+cu130, torchvision 0.26.0), before a GPU is lent.
#   bash scripts/test-torch.sh 2.11.0 0.26.0 [pytest arguments]
# A fresh virtual environment in ${VENV:-/tmp/venv-torch-TORCH} (about 5.5 GB: PyPI's CUDA builds, which run on the
# CPU), this checkout installed in it editable, then the README's test command.
set -euo pipefail
torch_v=${1:?usage: test-torch.sh TORCH TORCHVISION [pytest arguments]}
vision_v=${2:?usage: test-torch.sh TORCH TORCHVISION [pytest arguments]}
shift 2
cd "$(dirname "$0")/.."
venv=${VENV:-/tmp/venv-torch-$torch_v}
[[ -x "$venv/bin/python" ]] || python3 -m venv "$venv"
"$venv/bin/pip" install -q "torch==$torch_v" "torchvision==$vision_v" -e ".[test]"
source "$venv/bin/activate"
python -c "import torch, torchvision; print('torch', torch.__version__, 'torchvision', torchvision.__version__)"
lint-imports && ruff check . && ruff format --check . && python -m pytest "$@"
