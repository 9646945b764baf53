#!/usr/bin/env bash
# The main job on the embedded default: a 100-trial hardware-aware search (small CNN, scikit-learn digits,
# accuracy against latency on this host's CPU, with RAM in the table), then the Pareto front with test
# accuracy, the plots, and the knee point of the front exported to .tflite, verified in the LiteRT interpreter,
# its predicted latency, RAM and flash compared with the measured ones. Extra flags go to `nas search`.
# Each trial's latency is measured on this host (timed inside the trial); the host tables only screen budgets
# before training. They were measured on one CPU: on another, the first step scales them to this one by timing
# the reference models (seconds, not the full profile's minutes).
# Rerunning resumes the study (finished trials are kept); set NAS_STUDY for a fresh one.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup_env.sh"
cd "$root"
study="${NAS_STUDY:-quickstart}"
"$venv/bin/nas" profile --device host --calibrate --if-cpu-differs
"$venv/bin/nas" search --model cnn --dataset digits --trials 100 --study "$study" "$@"
"$venv/bin/nas" pareto --study "$study"
"$venv/bin/nas" plot --study "$study"
"$venv/bin/nas" export --study "$study" --knee
