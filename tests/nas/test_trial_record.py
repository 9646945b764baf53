"""A trial's typed record: the JSON form a study holds round-trips, older records read, damaged ones are refused."""

from __future__ import annotations

import json

import optuna
import pytest

from nas.errors import ConfigError
from nas.search.record import METRICS_ATTR, ParityRecord, TrialRecord

RECORD = TrialRecord(
    figures={"val_accuracy": 0.95, "stored_bytes": 12000.0, "latency_ms": 0.002, "ram_bytes": 4096.0},
    feasible=False,
    finetuned=True,
    seconds={"finetune": 1.2, "parity": 0.1},
    val_per_class=(1.0, None, 0.9),
    layer_sizes={"conv1": {"weights": 288, "weight_bytes": 288, "bias_bytes": 128, "qparam_bytes": 256}},
    recovery="fine-tuned",
    calibrated_accuracy=0.93,
    device="host",
    provenance={"latency_ms": "measured", "ram_bytes": "exact"},
    latency_us={"conv1": 1.5},
    parity=ParityRecord(passed=False, agreement={"xnnpack": 0.97}, accuracy={"xnnpack": 0.94}, jax_accuracy=0.95),
    infeasible_reason="the exported model diverges from its JAX model in LiteRT",
)


def test_a_record_round_trips_through_the_json_a_study_stores():
    stored = json.loads(json.dumps(RECORD.to_attr()))  # what the storage gives back
    assert TrialRecord.from_attr(stored) == RECORD
    assert RECORD.diverged


def test_the_stored_form_is_the_one_studies_already_hold():
    stored = RECORD.to_attr()
    assert stored["val_accuracy"] == 0.95 and stored["latency_ms"] == 0.002  # figures at the top level
    assert stored["parity"]["passed"] is False and "export_error" not in stored["parity"]
    plain = TrialRecord(figures={"val_accuracy": 0.9}, feasible=True, finetuned=False, seconds={})
    assert not {"device", "provenance", "latency_us", "parity", "infeasible_reason"} & set(plain.to_attr())


def test_an_older_record_without_recovery_or_parity_reads_as_absent():
    older = {"val_accuracy": 0.9, "stored_bytes": 100.0, "feasible": True, "finetuned": True, "seconds": {}}
    record = TrialRecord.from_attr(older)
    assert record.recovery is None and record.parity is None and not record.diverged
    assert record.figures == {"val_accuracy": 0.9, "stored_bytes": 100.0}


def test_a_trial_without_a_record_has_none_and_a_damaged_one_is_refused_naming_the_trial():
    study = optuna.create_study()
    running = study.ask()
    assert TrialRecord.of(study.trials[running.number]) is None
    running.set_user_attr(METRICS_ATTR, {"stored_bytes": 1.0})
    with pytest.raises(ConfigError, match=r"trial 0's record lacks val_accuracy, feasible, finetuned"):
        TrialRecord.of(study.trials[0])
    running.set_user_attr(METRICS_ATTR, {"val_accuracy": 0.9, "feasible": True, "finetuned": True, "parity": [1]})
    with pytest.raises(ConfigError, match="trial 0's record has a parity entry without 'passed'"):
        TrialRecord.of(study.trials[0])
    running.set_user_attr(METRICS_ATTR, [0.9])
    with pytest.raises(ConfigError, match="trial 0's record is not a JSON object"):
        TrialRecord.of(study.trials[0])
