#!/usr/bin/env bash
# Create .venv (if missing) and install the project with its test extras. Sourced by the other scripts.
# TORCH_SPEC picks the torch build: the default pins the CPU-friendly release; set it to e.g. "torch" for the newest.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
# shellcheck disable=SC1091
. .venv/bin/activate
stamp=".venv/.installed-$(cat pyproject.toml scripts/setup.sh | sha1sum | cut -c1-12)"  # re-install when either changes
if [ ! -f "$stamp" ]; then
  python -m pip install --quiet --upgrade pip
  python -c "import torch" 2>/dev/null || python -m pip install --quiet "${TORCH_SPEC:-torch==2.13.0}"
  python -m pip install --quiet -e ".[test,spaces,video,quantization]"
  touch "$stamp"
fi
