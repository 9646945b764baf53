"""A search killed with SIGKILL mid-trial resumes with the same command: no finished trial lost or
duplicated, the interrupted trial marked failed and its work redone, no orphan temporary files left."""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import optuna
import pytest
from optuna.trial import TrialState

from nas.search.objective import load_trial_weights

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


def _states(database: Path) -> list[TrialState]:
    """The trials' states, read through a read-only connection: opening the study with Optuna would create its
    tables, racing the search that creates them (which then failed with "table ... already exists")."""
    if not database.exists():
        return []
    try:
        with contextlib.closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True)) as connection:
            rows = connection.execute("SELECT state FROM trials ORDER BY number").fetchall()
    except sqlite3.OperationalError:  # its tables not created yet, or being written now
        return []
    return [TrialState[state] for (state,) in rows]


def _wait_for_a_running_third_trial(process: subprocess.Popen, database: Path, log: Path) -> None:
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        states = _states(database)
        if states.count(TrialState.COMPLETE) >= 2 and states[-1] == TrialState.RUNNING:
            return
        assert process.poll() is None, log.read_text()[-2000:]
        time.sleep(0.05)
    pytest.fail("the search never reached a running third trial")


def test_sigkill_mid_trial_then_the_same_command_resumes_cleanly(tmp_path):
    results = tmp_path / "results"
    command = [sys.executable, "-m", "nas.cli", "search", "--study", "kill", "--trials", "6"]
    # A fixed rate: the rate sweep (12 fine-tunes at the study's steps) is not what this test is about.
    command += [
        "--results-dir",
        str(results),
        "--epochs",
        "3",
        "--steps",
        "150",
        "--finetune-lr",
        "1e-3",
        "--no-progress",
    ]
    command += ["--objectives", "accuracy,stored_bytes"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    log = tmp_path / "first.log"
    with log.open("wb") as handle:
        process = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=handle, stderr=handle)
    database = results / "kill" / "study.db"
    try:
        _wait_for_a_running_third_trial(process, database, log)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    killed_at = len(_states(database)) - 1
    orphan = results / "kill" / "trials" / ".trial-99.npz.abc.tmp"
    orphan.parent.mkdir(parents=True, exist_ok=True)
    orphan.write_bytes(b"half a file")
    os.utime(orphan, (time.time() - 3600, time.time() - 3600))

    resumed = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    study = optuna.load_study(study_name="kill", storage=f"sqlite:///{database}")
    complete = [t for t in study.trials if t.state == TrialState.COMPLETE]
    assert len(complete) == 6 and len({t.number for t in complete}) == 6
    assert study.trials[killed_at].state == TrialState.FAIL  # the interrupted trial, redone by a new one
    for trial in complete:
        params, _ = load_trial_weights(results / "kill" / "trials" / f"trial-{trial.number}.npz")
        assert all(np.isfinite(leaf).all() for layer in params.values() for leaf in layer.values())
    assert not orphan.exists()
