"""Host timings (profile, export, verify) are refused while a search runs on the machine; a dead search no
longer counts."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import optuna

from nas.activity import other_searches
from nas.cli import main
from nas.config import SearchConfig
from nas.search.study import CONFIG_ATTR

ROOT = Path(__file__).resolve().parents[2]
HOLD = """
from nas.activity import searching
import time
with searching():
    print("ready", flush=True)
    time.sleep(60)
"""


def _saved_study(results: Path) -> None:
    """A study as `nas search` leaves it before its first trial: the storage and its settings."""
    (results / "s").mkdir(parents=True)
    study = optuna.create_study(study_name="s", storage=f"sqlite:///{results / 's' / 'study.db'}")
    study.set_user_attr(CONFIG_ATTR, SearchConfig().to_json())


def test_host_timings_are_refused_while_a_search_runs_and_not_after_it_died(capsys, tmp_path):
    # The study and the file exist: a missing one is refused first, whatever the machine does.
    results = tmp_path / "results"
    _saved_study(results)
    model = tmp_path / "m.tflite"
    model.write_bytes(b"not checked before the guard")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    search = subprocess.Popen([sys.executable, "-c", HOLD], env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert search.stdout is not None and search.stdout.readline().strip() == "ready"
        assert search.pid in other_searches()
        for command in (
            ["profile", "--device", "host", "--quick"],
            ["export", "--study", "s", "--knee", "--results-dir", str(results)],
            ["verify", str(model)],
        ):
            assert main(command) == 2
            err = capsys.readouterr().err
            assert str(search.pid) in err and "--under-load" in err and len(err.strip().splitlines()) == 1
    finally:
        search.kill()
        search.wait()
        if search.stdout is not None:
            search.stdout.close()
    deadline = time.monotonic() + 5
    while search.pid in other_searches() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert search.pid not in other_searches()
