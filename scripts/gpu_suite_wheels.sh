#!/usr/bin/env bash
# Wheels for running scripts/gpu_suite.sh on a GPU machine without network whose python3 already has a CUDA torch:
#   bash scripts/gpu_suite_wheels.sh DIR [PYTHON_VERSION]      # e.g. DIR=.whl, PYTHON_VERSION=3.12 (the GPU machine's)
#   GPU_SUITE_WHEELS=DIR bash scripts/gpu_suite.sh             # there
# Pure-Python packages the suite imports besides torch, at the versions this project is tested with; packages a GPU
# image already holds (numpy, pillow, safetensors, tokenizers, pyarrow, ...) are not fetched. Add NAME==VERSION
# arguments after PYTHON_VERSION for anything else that machine lacks.
set -euo pipefail
dir="${1:?usage: gpu_suite_wheels.sh DIR [PYTHON_VERSION] [NAME==VERSION ...]}"
pyver="${2:-3.12}"
shift $(( $# >= 2 ? 2 : 1 ))
python3 -m pip download --quiet --no-deps --only-binary=:all: --python-version "$pyver" --implementation py \
  --platform any -d "$dir" \
  "diffusers==0.42.1" "trl==1.16.0" "datasets==5.2.0" "peft==0.21.2" "transformers==5.24.0" "accelerate==1.15.0" \
  "huggingface-hub==2.4.0" "dill" "multiprocess" "importlib-metadata" "$@"
ls "$dir"
