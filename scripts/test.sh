#!/usr/bin/env bash
# The whole test suite: lint, format check, type check (mypy) and pytest, in the pinned environment. Extra flags go to pytest.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup_env.sh"
bash "$root/scripts/setup_system.sh"
cd "$root"
"$venv/bin/ruff" check .
"$venv/bin/ruff" format --check .
"$venv/bin/mypy"
"$venv/bin/python" -m pytest "$@"
