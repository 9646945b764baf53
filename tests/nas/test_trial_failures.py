"""A trial that cannot finish is recorded as failed with its reason, and the study goes on."""

from __future__ import annotations

from optuna.trial import TrialState

from nas.config import FinetuneConfig, SearchConfig, TrainConfig
from nas.search.context import resolve_problem
from nas.search.study import run_search


def test_diverging_fine_tuning_fails_its_trials_with_the_reason_and_the_study_goes_on(tmp_path):
    config = SearchConfig(
        objectives=("accuracy", "stored_bytes"),
        train=TrainConfig(epochs=2),
        finetune=FinetuneConfig(steps=5, learning_rate=1e30),  # adam moves every weight by ~1e30: overflow
    )
    summary = run_search(resolve_problem(config), name="nan", trials=3, results_dir=tmp_path, show_progress=False)
    trials = summary.study.trials
    assert len(trials) == 3 and all(t.state == TrialState.FAIL for t in trials)
    assert all("fine-tuning diverged" in t.user_attrs["fail_reason"] for t in trials)
    assert not (tmp_path / "nan" / "trials").exists() or not any((tmp_path / "nan" / "trials").iterdir())
