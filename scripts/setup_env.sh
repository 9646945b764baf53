#!/usr/bin/env bash
# Creates .venv and installs the pinned environment when it is missing or the pins changed.
# Sourced by quickstart.sh and test.sh; safe to run repeatedly (a stamp records what was installed).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.venv"
python="${PYTHON:-}"
if [ -z "$python" ]; then
  for candidate in python3.11 python3; do
    if command -v "$candidate" >/dev/null 2>&1; then python="$candidate"; break; fi
  done
fi
if ! "$python" -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else 1)' 2>/dev/null; then
  echo "error: Python 3.11 is required (found: $("$python" --version 2>&1)); set PYTHON=/path/to/python3.11" >&2
  exit 2
fi
stamp_want="$(cat "$root/requirements.lock" "$root/pyproject.toml" | sha256sum | cut -d' ' -f1)"
if [ ! -x "$venv/bin/python" ]; then
  echo "setting up $venv (first run: downloads about 1 GB of pinned packages)" >&2
  "$python" -m venv "$venv"
fi
if [ "$(cat "$venv/.nas-stamp" 2>/dev/null)" != "$stamp_want" ]; then
  echo "installing pinned packages into $venv" >&2
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$root/requirements.lock"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps -e "$root"
  echo "$stamp_want" > "$venv/.nas-stamp"
fi
