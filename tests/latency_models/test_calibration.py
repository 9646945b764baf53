"""Whole-model calibration: the fit, its files, and how a cost model applies it."""

from __future__ import annotations

import json
import math
import shutil

import numpy as np
import pytest

from latency_models.calibration import (
    MIN_FULL_FIT,
    CalibrationPoint,
    fit_calibration,
    load_calibration,
    save_calibration,
)
from latency_models.errors import CostModelError
from latency_models.host import cpu_facts
from latency_models.registry import cost_model
from latency_models.timing import TimingProtocol, time_invokes
from nas.profiling.flash_fit import export_random
from nas.profiling.reference import reference_models
from nas.profiling.run import add_exports_and_save, calibrate_and_save
from search_spaces.graph import analyze
from search_spaces.space import Candidate
from search_spaces.spec import load_model_spec


def _points(scale: float, per_op: float, count: int, seed: int = 0) -> list[CalibrationPoint]:
    rng = np.random.default_rng(seed)
    points = []
    for index in range(count):
        raw, ops = float(rng.uniform(0.001, 2.0)), int(rng.integers(3, 40))
        points.append(CalibrationPoint(name=f"m{index}", raw_ms=raw, ops=ops, measured_ms=scale * raw + per_op * ops))
    return points


def test_the_fit_recovers_a_known_scale_and_dispatch_cost():
    calibration = fit_calibration(_points(1.12, 0.0002, 20), table_date="d")
    assert calibration.scale == pytest.approx(1.12, rel=1e-3)
    assert calibration.per_op_ms == pytest.approx(0.0002, rel=1e-2)
    assert calibration.fit_error() == {"within_10pct": 1.0, "mape": pytest.approx(0.0, abs=1e-4)}
    assert calibration.corrected(1.0, 10) == pytest.approx(1.12 + 0.002, rel=1e-3)


def test_one_badly_predicted_reference_model_does_not_drag_the_others():
    points = _points(0.9, 0.0, 20)
    points[0] = CalibrationPoint(name="outlier", raw_ms=0.035, ops=29, measured_ms=0.0079)  # 4.4x overpredicted
    calibration = fit_calibration(points, table_date="d")
    assert calibration.scale == pytest.approx(0.9, rel=0.02)
    assert calibration.fit_error()["within_10pct"] >= 0.95


def test_few_points_fit_only_a_scale_the_median_ratio():
    points = _points(1.3, 0.0005, MIN_FULL_FIT - 1)
    calibration = fit_calibration(points, table_date="d")
    assert calibration.per_op_ms == 0.0
    assert calibration.scale == pytest.approx(float(np.median([p.measured_ms / p.raw_ms for p in points])))


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("measured_ms", 0.0, "measured_ms must be finite and > 0"),
        ("raw_ms", math.nan, "raw_ms must be finite"),
        ("ops", 0, "at least one op"),
    ],
)
def test_a_bad_point_is_refused_by_name(field, value, message):
    fields = {"name": "cnn@8/int8", "raw_ms": 0.01, "ops": 5, "measured_ms": 0.012, field: value}
    with pytest.raises(CostModelError, match=f"'cnn@8/int8'.*{message}"):
        CalibrationPoint(**fields)


def test_no_points_is_a_clear_error():
    with pytest.raises(CostModelError, match="at least one measured reference model"):
        fit_calibration([], table_date="d")


def test_files_round_trip_and_a_malformed_file_says_calibrate_again(tmp_path):
    calibration = fit_calibration(_points(0.95, 0.0001, 12), table_date="2026-11-26T00:00:00Z", provenance={"a": 1})
    path = tmp_path / "host.xnnpack.calibration.json"
    save_calibration(calibration, path)
    assert load_calibration(path) == calibration
    assert json.loads(path.read_text())["fit_error"]["within_10pct"] == 1.0
    path.write_text('{"scale": 1.0}')
    with pytest.raises(CostModelError, match=r"malformed calibration.*calibrate again"):
        load_calibration(path)
    path.write_text("{not json")
    with pytest.raises(CostModelError, match="not valid JSON"):
        load_calibration(path)


@pytest.mark.slow
def test_calibrating_again_and_folding_in_exports(profiled_devices, tmp_path):
    directory, _ = profiled_devices
    devices = tmp_path / "devices"
    shutil.copytree(directory, devices)
    written = calibrate_and_save("host", show_progress=False, directory=devices)
    references = len(reference_models())
    assert {kernels: len(c.points) for kernels, (_, c) in written.items()} == {
        "xnnpack": references,
        "builtin": references,
    }
    assert cost_model("host", "builtin", directory=devices).calibration == written["builtin"][1]

    graph = analyze(load_model_spec("cnn"), (8, 8, 1), 10)
    content = export_random(graph, Candidate.uniform(graph, weight_bits=8, activation_bits=8))
    records = {}
    for index, cpu in enumerate((cpu_facts(), {"model": "another CPU"})):
        model = tmp_path / "results" / "s1" / "models" / f"trial-{index}.tflite"
        model.parent.mkdir(parents=True, exist_ok=True)
        model.write_bytes(content)
        latency = {
            k: {"measured_ms": time_invokes(content, delegate=k, protocol=TimingProtocol(rounds=5)).median_ms}
            for k in ("xnnpack", "builtin")
        }
        records[f"trial-{index}"] = {
            "model": str(model),
            "cost_check": {"device": "host", "cpu": cpu, "latency": latency},
        }
    (tmp_path / "results" / "s1" / "verification.json").write_text(json.dumps(records))

    for _ in range(2):  # folding in twice replaces the export points, never duplicates them
        folded = add_exports_and_save("host", tmp_path / "results", directory=devices)
        for _, calibration, used in folded.values():
            assert used == 1  # the record measured on another CPU is left out
            names = [p.name for p in calibration.points]
            assert len(names) == references + 1 and names[-1].endswith("trial-0.tflite")
    with pytest.raises(CostModelError, match=r"no exported model under .* has a measured host latency"):
        add_exports_and_save("host", tmp_path / "empty", directory=devices)
