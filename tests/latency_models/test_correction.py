"""The learned whole-model correction: learned from models measured whole, used only where it earns its place."""

from __future__ import annotations

import json
import threading

import numpy as np
import pytest

from latency_models.correction import (
    MIN_POINTS,
    MeasuredModel,
    WholeModel,
    fit_correction,
    load_measured_models,
    measured_models_path,
)
from latency_models.errors import CostModelError
from latency_models.layered import whole_model
from latency_models.registry import cost_model
from nas.runtime.measured_models import remember_measured
from search_spaces.space import Candidate


def models_with(factor_of_ram, count: int, seed: int = 0) -> list[MeasuredModel]:
    """Synthetic models: int8 and float32 mixes of growing size, measured at ``factor_of_ram(ram)`` times their
    raw sum (a whole-model effect the sum does not see), with 2% noise."""
    rng = np.random.default_rng(seed)
    models = []
    for i in range(count):
        ram = float(rng.uniform(1e3, 1e6))
        int8, float32 = float(rng.uniform(0.01, 1.0)), float(rng.uniform(0.0, 0.5))
        whole = WholeModel(
            groups={"fixed": 0.001, "int8": int8, "float32": float32},
            counts={"fixed": 2, "int8": 4, "float32": 2},
            kinds={"conv": int8 + float32},
            ram_bytes=ram,
            flash_bytes=ram / 4,
        )
        measured = (0.001 + int8 + float32) * factor_of_ram(ram) * float(rng.uniform(0.98, 1.02))
        models.append(MeasuredModel(name=f"m{i}", model=whole, measured_ms=measured))
    return models


def raw_sum(model: WholeModel) -> float:
    return sum(model.groups.values())


def test_a_whole_model_effect_the_sum_misses_is_learned_and_shown_in_cross_validation():
    # Large activations cost 40% more than the per-layer sum says (caches), small ones match it.
    models = models_with(lambda ram: 1.4 if ram > 3e5 else 1.0, 60)
    correction = fit_correction(models, raw_sum)
    assert correction is not None and correction.points == 60
    cv = correction.cross_validated
    assert cv["predicted_within_10pct"] < 0.5 and cv["corrected_within_10pct"] >= 0.9
    big = next(m for m in models if m.model.ram_bytes > 5e5)
    factor, extrapolated = correction.factor(big.model, raw_sum(big.model))
    assert factor == pytest.approx(1.4, rel=0.08) and not extrapolated
    assert correction.factor(big.model, 1e3)[1]  # far beyond the predictions it learned from


def test_no_correction_from_too_few_models_or_where_the_sum_is_already_right():
    assert fit_correction(models_with(lambda ram: 1.4, MIN_POINTS - 1), raw_sum) is None
    assert fit_correction(models_with(lambda ram: 1.0, 60), raw_sum) is None  # nothing to gain: not used


def test_the_host_cost_model_applies_a_learned_correction_to_every_part(tmp_path, monkeypatch, cnn_graph):
    monkeypatch.setenv("NAS_MEASURED_MODELS", str(tmp_path))
    plain = cost_model("host", "xnnpack")
    assert plain.correction is None
    rng = np.random.default_rng(1)
    for i in range(40):
        candidate = Candidate.uniform(cnn_graph, weight_bits=8, activation_bits=int(rng.choice([8, 32])))
        raw = plain.raw_parts(cnn_graph, candidate)
        cost = plain.cost(cnn_graph, candidate)
        # Measured 30% slower than predicted, whatever the model: what a drifted machine shows.
        whole = whole_model(raw, flash=cost.flash_bytes, ram=cost.ram_bytes)
        measured = cost.latency_ms.value * 1.3 * float(rng.uniform(0.98, 1.02))
        remember_measured(plain, MeasuredModel(name=f"file{i}", model=whole, measured_ms=measured))
    corrected = cost_model("host", "xnnpack")
    assert corrected.correction is not None
    candidate = Candidate.uniform(cnn_graph, weight_bits=8, activation_bits=8)
    before, after = plain.cost(cnn_graph, candidate), corrected.cost(cnn_graph, candidate)
    assert after.latency_ms.value == pytest.approx(before.latency_ms.value * 1.3, rel=0.05)
    assert after.latency_ms.provenance == "fitted"
    assert sum(p.latency_ms.value for p in after.layers) == pytest.approx(after.latency_ms.value)
    assert cost_model("host", "xnnpack", calibrated=False).correction is None  # the raw prior stays raw


def test_a_measured_file_is_kept_once_even_when_workers_add_it_at_once(tmp_path, monkeypatch):
    monkeypatch.setenv("NAS_MEASURED_MODELS", str(tmp_path))
    model = cost_model("host", "xnnpack")
    whole = WholeModel(
        groups={"fixed": 0.001, "int8": 0.01}, counts={"fixed": 1, "int8": 3}, kinds={}, ram_bytes=1e3, flash_bytes=1e3
    )
    threads = [
        threading.Thread(
            target=remember_measured,
            args=(model, MeasuredModel(name=f"file{i % 4}", model=whole, measured_ms=0.02)),
        )
        for i in range(16)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    path = measured_models_path("host", "xnnpack", model.calibration_basis(model.device, "xnnpack"))
    assert sorted(m.name for m in load_measured_models(path)) == ["file0", "file1", "file2", "file3"]
    header = json.loads(path.read_text())
    assert header["device"] == "host" and header["basis"].startswith("the table of")


def test_a_damaged_file_of_measured_models_is_refused_in_one_line(tmp_path):
    path = tmp_path / "host.xnnpack.0.json"
    path.write_text('{"models": [{"name": "x"}]}')
    with pytest.raises(CostModelError, match=r"is damaged \(.*\); delete it"):
        load_measured_models(path)
