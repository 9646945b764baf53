"""Re-scoring a study for another device keeps a trial whose export diverged in LiteRT off every front."""

from __future__ import annotations

import optuna

from latency_models.registry import cost_model
from nas.analysis.rescore import _rescored_row
from nas.search.record import METRICS_ATTR, ParityRecord, TrialRecord
from search_spaces.graph import analyze
from search_spaces.space import Candidate
from search_spaces.spec import load_model_spec


def _trial(parity_passed: bool) -> optuna.trial.FrozenTrial:
    graph = analyze(load_model_spec("cnn"), (8, 8, 1), 10)
    candidate = Candidate.uniform(graph, weight_bits=8, activation_bits=8)
    record = TrialRecord(
        figures={"val_accuracy": 0.9, "stored_bytes": 1000.0},
        feasible=parity_passed,
        finetuned=True,
        seconds={},
        parity=ParityRecord(passed=parity_passed, agreement={"xnnpack": 0.9}, accuracy={}, jax_accuracy=0.9),
        infeasible_reason=None if parity_passed else "the exported model diverges from its JAX model in LiteRT",
    )
    return optuna.trial.create_trial(
        values=[0.9, 1000.0],
        user_attrs={"candidate": candidate.to_dict(), METRICS_ATTR: record.to_attr()},
        state=optuna.trial.TrialState.COMPLETE,
    )


def test_a_trial_that_diverged_in_the_runtime_is_infeasible_on_every_device():
    graph = analyze(load_model_spec("cnn"), (8, 8, 1), 10)
    for device in ("host", "stm32h7", "rpi4"):
        model = cost_model(device)
        passed = _rescored_row(_trial(True), graph, model, {})
        diverged = _rescored_row(_trial(False), graph, model, {})
        assert passed["feasible"] is True, device
        assert diverged["feasible"] is False and "diverges" in diverged["infeasible_because"], device
