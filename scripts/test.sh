#!/usr/bin/env bash
# The whole test suite: lint, format check, type check (mypy) and pytest in two processes, in the pinned
# environment. Extra flags go to pytest.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup_env.sh"
bash "$root/scripts/setup_system.sh"
cd "$root"
"$venv/bin/ruff" check .
"$venv/bin/ruff" format --check .
"$venv/bin/mypy"
# Two test processes (pytest-xdist): on this 2-core machine 9.6 minutes against 17.3 in one process (the
# suite's tests wait on subprocesses, compilers and storage as much as they compute). -n 0 runs them in one.
# Work stealing: a process that runs out of tests takes the other's queued ones, so the slow end-to-end tests do
# not leave one process idle at the end.
"$venv/bin/python" -m pytest -n "${NAS_TEST_PROCESSES:-2}" --dist worksteal "$@"
