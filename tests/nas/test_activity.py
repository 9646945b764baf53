"""Host timings (profile, export, verify) are refused while a search runs on the machine; a dead search no
longer counts."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from nas.activity import other_searches
from nas.cli import main

ROOT = Path(__file__).resolve().parents[2]
HOLD = """
from nas.activity import searching
import time
with searching():
    print("ready", flush=True)
    time.sleep(60)
"""


def test_host_timings_are_refused_while_a_search_runs_and_not_after_it_died(capsys):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    search = subprocess.Popen([sys.executable, "-c", HOLD], env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert search.stdout is not None and search.stdout.readline().strip() == "ready"
        assert search.pid in other_searches()
        for command in (
            ["profile", "--device", "host", "--quick"],
            ["export", "--study", "s", "--knee"],
            ["verify", "m.tflite"],
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
