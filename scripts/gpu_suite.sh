#!/usr/bin/env bash
# The GPU benchmark suite on one CUDA machine, set-up included: one command, <= 8 minutes on an H100/H200.
#   bash scripts/gpu_suite.sh                 # writes benchmarks/results/gpu-<date>.json and .md
#   bash scripts/gpu_suite.sh --cases vae     # extra arguments go to benchmarks/gpu_suite.py
# Set-up (first run only, see setup.sh): .venv with the pinned torch release - the package registry's Linux wheel of
# torch is the CUDA build - then the project, whose dependencies include the reference diffusers. A CPU-only torch
# already in .venv is replaced by that CUDA build.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export TORCH_SPEC="${TORCH_SPEC:-torch==2.13.0}"
# shellcheck source=scripts/setup.sh
. scripts/setup.sh
if ! python -c "import sys, torch; sys.exit(0 if torch.version.cuda else 1)"; then
  echo "torch $(python -c 'import torch; print(torch.__version__)') is a CPU build; installing ${TORCH_SPEC} (CUDA)"
  python -m pip uninstall --quiet -y torch
  python -m pip install --quiet "${TORCH_SPEC}"
fi
if ! python -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)"; then
  echo "gpu_suite.sh: error: torch $(python -c 'import torch; print(torch.__version__)') sees no CUDA device; \
'python benchmarks/gpu_suite.py --quick' runs the suite at tiny size on CPU" >&2
  exit 2
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
exec python benchmarks/gpu_suite.py "$@"
