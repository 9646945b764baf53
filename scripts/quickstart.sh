#!/usr/bin/env bash
# The main job on the embedded default: a 100-trial search (small CNN, scikit-learn digits, host CPU),
# then the Pareto front with test accuracy, the plots, and the knee point of the front exported to .tflite
# and verified in the LiteRT interpreter. Extra flags go to `nas search`.
# Rerunning resumes the study (finished trials are kept); set NAS_STUDY for a fresh one.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup_env.sh"
cd "$root"
study="${NAS_STUDY:-quickstart}"
"$venv/bin/nas" search --model cnn --dataset digits --trials 100 --study "$study" "$@"
"$venv/bin/nas" pareto --study "$study"
"$venv/bin/nas" plot --study "$study"
"$venv/bin/nas" export --study "$study" --knee
