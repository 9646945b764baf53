"""Two processes that need the same baseline at once train it once: one builds it, the other waits and reuses it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


def test_racing_processes_train_the_baseline_once(tmp_path):
    command = [sys.executable, "-m", "nas.cli", "train", "--epochs", "30", "--results-dir", str(tmp_path)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    processes = [
        subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        for _ in range(2)
    ]
    outputs = [process.communicate(timeout=600)[0] for process in processes]
    assert all(process.returncode == 0 for process in processes), outputs
    sources = sorted(output.split(":")[0] for output in outputs)
    assert sources == ["baseline cached", "baseline trained"], outputs
    assert len(list((tmp_path / "baselines").glob("*/params.npz"))) == 1
