#!/usr/bin/env bash
# The GPU benchmark suite on one CUDA machine, set-up included: one command, <= 8 minutes on an H100/H200.
#   bash scripts/gpu_suite.sh                 # writes benchmarks/results/gpu-<date>.json and .md
#   bash scripts/gpu_suite.sh --cases vae     # extra arguments go to benchmarks/gpu_suite.py
# Which Python runs it:
# - a python3 whose torch already sees a CUDA device (GPU images usually have one; GPU_SUITE_PYTHON names another):
#   the project runs from this checkout, and the packages that python lacks come from GPU_SUITE_WHEELS, a folder of
#   wheels made beforehand on a machine with network by scripts/gpu_suite_wheels.sh (for machines without network);
# - else the project's .venv (see setup.sh) with the pinned torch release - the package registry's Linux wheel of torch
#   is the CUDA build - then the project and the reference diffusers; a CPU-only torch in .venv is replaced.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
sees_cuda() { "$1" -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null; }
PY="${GPU_SUITE_PYTHON:-}"
if [ -z "$PY" ] && command -v python3 >/dev/null && sees_cuda python3; then
  PY=python3
fi
if [ -n "$PY" ]; then
  if [ -n "${GPU_SUITE_WHEELS:-}" ]; then
    site="$(mktemp -d "${TMPDIR:-/tmp}/gpu-suite-site.XXXXXX")"
    "$PY" -m pip install --quiet --no-index --no-deps --no-compile --no-cache-dir --target "$site" "$GPU_SUITE_WHEELS"/*.whl
    export PYTHONPATH="$site${PYTHONPATH:+:$PYTHONPATH}"
  fi
  export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
  if ! missing="$("$PY" - <<'PYEOF'
import importlib.util, sys
names = ["diffusers", "transformers", "peft", "accelerate", "trl", "datasets", "safetensors", "imageio", "yaml"]
missing = [n for n in names if importlib.util.find_spec(n) is None]
print(" ".join(missing))
sys.exit(1 if missing else 0)
PYEOF
)"; then
    echo "gpu_suite.sh: error: $PY lacks $missing; make wheels with scripts/gpu_suite_wheels.sh and set GPU_SUITE_WHEELS" >&2
    exit 2
  fi
else
  export TORCH_SPEC="${TORCH_SPEC:-torch==2.13.0}"
  # shellcheck source=scripts/setup.sh
  . scripts/setup.sh
  if ! python -c "import sys, torch; sys.exit(0 if torch.version.cuda else 1)"; then
    echo "torch $(python -c 'import torch; print(torch.__version__)') is a CPU build; installing ${TORCH_SPEC} (CUDA)"
    python -m pip uninstall --quiet -y torch
    python -m pip install --quiet "${TORCH_SPEC}"
  fi
  PY=python
  if ! sees_cuda "$PY"; then
    echo "gpu_suite.sh: error: torch $("$PY" -c 'import torch; print(torch.__version__)') sees no CUDA device; \
'python benchmarks/gpu_suite.py --quick' runs the suite at tiny size on CPU" >&2
    exit 2
  fi
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
exec "$PY" benchmarks/gpu_suite.py "$@"
