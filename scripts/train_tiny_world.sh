#!/usr/bin/env bash
# Retrain the tiny world from scratch (seeded) and install it as the package's shipped weights:
#   diffusers_cogvideox/assets/tiny_world/         the CogVideoX pipeline (Hub layout)
#   trl_vision_reward/assets/tiny_world_scorer/    the VisionReward-Video scorer
# Usage: bash scripts/train_tiny_world.sh [OUT_DIR] [SEED]   (about 40 minutes on 2 CPU cores)
# The report (OUT_DIR/report.json, OUT_DIR/README.md) lists the sha256 of every weight file; with the same seed, torch
# version and thread count they equal the shipped ones (tests/datasets_scripts/tiny_world/test_shipped.py checks the
# shipped files against the hashes recorded beside them).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${1:-outputs/tiny_world}"
SEED="${2:-0}"
PY="${PYTHON:-.venv/bin/python}"
RESUME=()
if [ -d "$OUT/stages" ]; then RESUME=(--resume); fi   # an earlier or interrupted run: finished stages are kept
"$PY" -m datasets_scripts.cli train-tiny-world --out "$OUT" --seed "$SEED" "${RESUME[@]}"
install_folder() {  # replace the shipped folder with the new one, as the stage wrote it
  local src="$1" dst="$2"
  rm -rf "$dst.new" && cp -r "$src" "$dst.new"
  rm -rf "$dst" && mv "$dst.new" "$dst"
}
install_folder "$OUT/pipeline" diffusers_cogvideox/assets/tiny_world
install_folder "$OUT/scorer" trl_vision_reward/assets/tiny_world_scorer
"$PY" - "$OUT/report.json" <<'PY'
import json, sys
report = json.load(open(sys.argv[1]))
json.dump({"seed": report["seed"], "torch": report["torch"], "threads": report["threads"], "sha256": report["sha256"]},
          open("datasets_scripts/tiny_world/shipped_weights.json", "w"), indent=2, sort_keys=True)
PY
echo "installed; hashes in datasets_scripts/tiny_world/shipped_weights.json"
