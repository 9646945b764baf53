#!/usr/bin/env bash
# Creates .venv and installs the pinned environment when it is missing or the pins changed.
# Sourced by the quickstart and test scripts; safe to run repeatedly (a stamp records what was installed).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.venv"
python="${PYTHON:-python3.11}"
command -v "$python" >/dev/null 2>&1 || python=python3
stamp_want="$(cat "$root/requirements.lock" "$root/pyproject.toml" | sha256sum | cut -d' ' -f1)"
if [ ! -x "$venv/bin/python" ]; then
  echo "setting up $venv (first run: downloads about 1 GB of pinned packages)" >&2
  "$python" -m venv "$venv"
fi
if [ "$(cat "$venv/.nas-stamp" 2>/dev/null)" != "$stamp_want" ]; then
  "$venv/bin/python" -m pip install --quiet --upgrade pip
  "$venv/bin/python" -m pip install --quiet -r "$root/requirements.lock"
  "$venv/bin/python" -m pip install --quiet --no-deps -e "$root"
  echo "$stamp_want" > "$venv/.nas-stamp"
fi
