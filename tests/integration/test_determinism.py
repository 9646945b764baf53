"""The same command with the same seed gives the same trials and front, and exporting a trial twice gives
byte-identical files."""

from __future__ import annotations

import optuna
import pytest

from nas.cli import main

pytestmark = pytest.mark.slow


def _trials(results):
    study = optuna.load_study(study_name="same", storage=f"sqlite:///{results / 'same' / 'study.db'}")
    return [(t.params, t.values, t.user_attrs["metrics"]["val_per_class"]) for t in study.trials]


def test_same_seed_same_trials_and_byte_identical_exports(tmp_path, capsys):
    runs = [tmp_path / "a", tmp_path / "b"]
    for results in runs:
        command = ["search", "--study", "same", "--trials", "3", "--epochs", "3", "--steps", "40"]
        assert main([*command, "--no-progress", "--seed", "7", "--results-dir", str(results)]) == 0
    assert _trials(runs[0]) == _trials(runs[1])
    contents = []
    for results in (runs[0], runs[0], runs[1]):
        assert main(["export", "--study", "same", "--trial", "1", "--results-dir", str(results)]) == 0
        contents.append((results / "same" / "models" / "trial-1.tflite").read_bytes())
    assert contents[0] == contents[1] == contents[2]
    capsys.readouterr()
