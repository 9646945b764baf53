"""Two worker processes on one study, on PostgreSQL (a real server), the SQLite default and Optuna's journal
file: the union of their trials is complete, unique and consistent; a storage password never shows."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import optuna
import pytest
from optuna.storages import RDBStorage
from optuna.trial import TrialState

from nas.search.objective import load_trial_weights
from nas.search.storage import optuna_storage
from tests import postgres

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
TRIALS = 4  # two per worker: enough for their trials to interleave in the storage


@pytest.fixture(scope="module")
def postgres_url():
    bin_dir = postgres.binaries()
    if bin_dir is None:
        pytest.fail("PostgreSQL is not installed: run `bash scripts/setup_system.sh` as root (scripts/test.sh does)")
    with postgres.server(bin_dir) as url:
        yield url


def _search(tmp_path: Path, *extra: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "nas.cli", "search", "--study", "shared", "--trials", str(TRIALS)]
    command += ["--workers", "2", "--epochs", "1", "--steps", "10", "--finetune-lr", "1e-3", "--no-progress"]
    command += ["--objectives", "accuracy,stored_bytes", "--no-verify-trials"]  # what is stored, not the files
    command += ["--results-dir", str(tmp_path / "results"), *extra]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)


def _check_union(study: optuna.Study, results: Path) -> None:
    complete = [t for t in study.trials if t.state == TrialState.COMPLETE]
    assert TRIALS <= len(complete) < TRIALS + 2  # a worker stopping may finish one more
    assert len({t.number for t in study.trials}) == len(study.trials)
    assert len({t.user_attrs["worker"] for t in complete}) == 2  # both workers ran trials
    assert not [t for t in study.trials if t.state == TrialState.RUNNING]
    candidates = [tuple(sorted(t.params.items())) for t in complete]
    assert len(set(candidates)) == len(candidates)  # seeded apart: no candidate proposed twice
    for trial in complete:
        assert trial.values[0] == trial.user_attrs["metrics"]["val_accuracy"]
        params, _ = load_trial_weights(results / "shared" / "trials" / f"trial-{trial.number}.npz")
        assert all(np.isfinite(leaf).all() for layer in params.values() for leaf in layer.values())


def _storage_url(kind: str, tmp_path: Path, postgres_url: str | None) -> str | None:
    if kind == "sqlite":
        return None
    if kind == "journal":
        return f"journal://{tmp_path / 'journal.log'}"
    return postgres_url


@pytest.mark.parametrize("kind", ["sqlite", "journal"])
def test_two_workers_share_one_file_study(kind, tmp_path):
    _two_workers(kind, tmp_path, None)


def test_two_workers_share_one_postgresql_study(tmp_path, postgres_url):
    _two_workers("postgresql", tmp_path, postgres_url)


def _two_workers(kind: str, tmp_path: Path, postgres_url: str | None) -> None:
    url = _storage_url(kind, tmp_path, postgres_url)
    run = _search(tmp_path, *(["--storage", url] if url else []))
    assert run.returncode == 0, run.stderr[-2000:]
    results = tmp_path / "results"
    storage = optuna_storage(url or f"sqlite:///{results / 'shared' / 'study.db'}")
    try:
        _check_union(optuna.load_study(study_name="shared", storage=storage), results)
    finally:
        if isinstance(storage, RDBStorage):
            storage.engine.dispose()  # before the server stops under an open connection
    assert postgres.PASSWORD not in run.stdout + run.stderr


def test_a_bad_postgresql_url_fails_in_one_line_without_its_password(tmp_path, postgres_url):
    wrong = postgres_url.rsplit("/", 1)[0] + "/no_such_database"
    run = _search(tmp_path, "--storage", wrong)
    assert run.returncode == 2
    assert len(run.stderr.strip().splitlines()) == 1 and "no_such_database" in run.stderr
    assert postgres.PASSWORD not in run.stdout + run.stderr and "***" in run.stderr


def test_a_waiting_trial_is_taken_by_one_taker_of_a_sqlite_study(tmp_path):
    """Eight takers at once on one enqueued trial: exactly one runs it. Optuna's own SQLite storage gives it
    to several here (SQLite ignores the row lock PostgreSQL takes), and two workers then ran the uniform int8
    seed twice and the second failed on "Cannot tell a COMPLETE trial"."""
    storage = optuna_storage(f"sqlite:///{tmp_path / 'study.db'}")
    study = optuna.create_study(storage=storage, study_name="take")
    for _ in range(3):
        study.enqueue_trial({"x": 1.0})
        (waiting,) = study.get_trials(deepcopy=False, states=(TrialState.WAITING,))
        assert sorted(_take_at_once(storage, waiting._trial_id, takers=8)) == [False] * 7 + [True]


def _take_at_once(storage, trial_id: int, takers: int) -> list[bool]:
    barrier, taken = threading.Barrier(takers), []

    def take() -> None:
        barrier.wait()
        taken.append(storage.set_trial_state_values(trial_id, TrialState.RUNNING))

    threads = [threading.Thread(target=take) for _ in range(takers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return taken
