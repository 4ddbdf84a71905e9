#!/usr/bin/env bash
# Set up (first run only) and run the main job on the embedded tiny default. Extra arguments go to the command.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_OFFLINE=1
vr-quickstart --out outputs/quickstart "$@"
