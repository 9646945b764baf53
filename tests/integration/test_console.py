"""A user sees our progress and results, not third-party noise; ``--verbose`` shows it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
NOISE = ("absl::InitializeLog", "oneDNN custom operations", "XNNPACK delegate for CPU", "Running Calibration")


def _nas(tmp_path: Path, *argv: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("NAS_VERBOSE", None)
    command = [sys.executable, "-m", "nas.cli", *argv, "--results-dir", str(tmp_path)]
    return subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)


def test_search_and_export_print_no_third_party_noise_unless_verbose(tmp_path):
    search = _nas(
        tmp_path, "search", "--study", "c", "--trials", "2", "--epochs", "10", "--steps", "20", "--no-progress"
    )
    export = _nas(tmp_path, "export", "--study", "c", "--knee")
    assert search.returncode == 0 and export.returncode == 0, search.stderr + export.stderr
    quiet = search.stdout + search.stderr + export.stdout + export.stderr
    assert not [marker for marker in NOISE if marker in quiet], quiet
    assert "on the Pareto front" in search.stdout and "latency predicted" in export.stdout
    verbose = _nas(tmp_path, "--verbose", "export", "--study", "c", "--knee")
    assert verbose.returncode == 0
    assert "oneDNN custom operations" in verbose.stderr and "Running Calibration" in verbose.stderr
