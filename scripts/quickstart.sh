#!/usr/bin/env bash
# Set up (first run only) and run the main job. With no arguments it runs the embedded tiny default, fully offline;
# extra arguments (e.g. --model, --scorer) go to vr-quickstart.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
if [ "$#" -eq 0 ]; then
  export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_OFFLINE=1
fi
vr-quickstart --out outputs/quickstart "$@"
