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
from latency_models.device import DEVICES_DIR
from latency_models.errors import CostModelError
from latency_models.host import cpu_facts
from latency_models.registry import cost_model
from latency_models.runtimes.litert.timing import TimingProtocol, time_invokes
from nas.deploy.export_record import Compared, ExportRecord, HostCostCheck, LatencyCheck, PredictedSize, merge_record
from nas.profiling.flash_fit import export_random
from nas.profiling.reference import reference_models
from nas.profiling.run import add_exports_and_save, calibrate_and_save, calibrate_from_csv
from search_spaces.graph import analyze
from search_spaces.space import Candidate
from search_spaces.spec import load_model_spec


def _points(scales: dict[str, float], per_op: float, count: int, seed: int = 0) -> list[CalibrationPoint]:
    """Models whose float32 and int8 parts and op counts vary, measured as ``scales`` and ``per_op`` say."""
    rng = np.random.default_rng(seed)
    points = []
    for index in range(count):
        groups = {g: float(rng.uniform(0.001, 2.0)) for g in scales}
        ops = int(rng.integers(3, 40))
        measured = sum(scales[g] * v for g, v in groups.items()) + per_op * ops
        points.append(CalibrationPoint(name=f"m{index}", groups=groups, ops=ops, measured_ms=measured))
    return points


def test_the_fit_recovers_known_group_scales_and_dispatch_cost():
    calibration = fit_calibration(_points({"float32": 1.1, "int8": 0.7}, 0.0002, 30), basis="d")
    assert calibration.group_scales == {"float32": pytest.approx(1.1, rel=0.03), "int8": pytest.approx(0.7, rel=0.05)}
    assert calibration.per_op_ms == pytest.approx(0.0002, rel=0.2)
    assert calibration.fit_error()["within_10pct"] == 1.0
    assert calibration.scale_of("int16x8") == calibration.scale  # a group the points never ran: the common scale
    corrected = calibration.corrected({"float32": 1.0, "int8": 1.0}, 10)
    assert corrected == pytest.approx(1.1 + 0.7 + 0.002, rel=0.03)


def test_one_badly_predicted_reference_model_does_not_drag_the_others():
    points = _points({"float32": 0.9}, 0.0, 20)
    points[0] = CalibrationPoint(name="outlier", groups={"float32": 0.035}, ops=29, measured_ms=0.0079)  # 4.4x over
    calibration = fit_calibration(points, basis="d")
    assert calibration.scale_of("float32") == pytest.approx(0.9, rel=0.02)
    assert calibration.fit_error()["within_10pct"] >= 0.95


def test_few_points_fit_only_the_common_scale_the_median_ratio():
    points = _points({"float32": 1.3, "int8": 0.5}, 0.0005, MIN_FULL_FIT - 1)
    calibration = fit_calibration(points, basis="d")
    assert calibration.per_op_ms == 0.0 and calibration.group_scales == {}
    assert calibration.scale == pytest.approx(float(np.median([p.measured_ms / p.raw_ms for p in points])))


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("measured_ms", 0.0, "measured_ms must be finite and > 0"),
        ("groups", math.nan, "raw latency must be finite"),
        ("ops", 0, "at least one op"),
    ],
)
def test_a_bad_point_is_refused_by_name(field, value, message):
    fields = {"name": "cnn@8/int8", "groups": {"int8": 0.01}, "ops": 5, "measured_ms": 0.012}
    fields[field] = {"int8": value} if field == "groups" else value
    with pytest.raises(CostModelError, match=f"'cnn@8/int8'.*{message}"):
        CalibrationPoint(**fields)


def test_no_points_is_a_clear_error():
    with pytest.raises(CostModelError, match="at least one measured reference model"):
        fit_calibration([], basis="d")


def test_files_round_trip_and_a_malformed_file_says_calibrate_again(tmp_path):
    calibration = fit_calibration(
        _points({"float32": 0.95}, 0.0001, 12), basis="the table of 2026-11-26T00:00:00Z", provenance={"a": 1}
    )
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
    for index, cpu in enumerate((cpu_facts(), {"model": "another CPU"})):
        model = tmp_path / "results" / "s1" / "models" / f"trial-{index}.tflite"
        model.parent.mkdir(parents=True, exist_ok=True)
        model.write_bytes(content)
        measured = {
            k: time_invokes(content, delegate=k, protocol=TimingProtocol(rounds=5)).median_ms
            for k in ("xnnpack", "builtin")
        }
        merge_record(model.parents[1] / "verification.json", _export_record(index, model, cpu, measured))

    for _ in range(2):  # folding in twice replaces the export points, never duplicates them
        folded = add_exports_and_save("host", tmp_path / "results", directory=devices)
        for _, calibration, used in folded.values():
            assert used == 1  # the record measured on another CPU is left out
            names = [p.name for p in calibration.points]
            assert len(names) == references + 1 and names[-1].endswith("trial-0.tflite")
    with pytest.raises(CostModelError, match=r"no exported model under .* has a measured host latency"):
        add_exports_and_save("host", tmp_path / "empty", directory=devices)


def _export_record(trial: int, model, cpu: dict, measured_ms: dict[str, float]) -> ExportRecord:
    """An export's record holding what the fold-in reads: its file and the latency measured on ``cpu``."""
    content = model.read_bytes()
    latency = {
        kernels: LatencyCheck(predicted_ms=ms, provenance="fitted", measured_ms=ms, error_pct=0.0)
        for kernels, ms in measured_ms.items()
    }
    check = HostCostCheck(
        device="host",
        cpu=cpu,
        latency=latency,
        energy_mj=None,
        ram_bytes=Compared(predicted=0, measured=0),
        flash_bytes=Compared(predicted=len(content), measured=len(content)),
        protocol=TimingProtocol(rounds=5).describe(),
    )
    return ExportRecord(
        trial=trial,
        dataset="digits",
        model=str(model),
        passed=True,
        candidate={},
        file_bytes=len(content),
        gzip_bytes=len(content),
        predicted=PredictedSize(stored_bytes=None, compressed_bytes=None),
        jax_test_accuracy=0.0,
        kernels=(),
        latency_provenance="measured on this host",
        cost_check=check,
    )


def _write_csv(path, rows: list[tuple[str, str]]) -> None:
    path.write_text("model,median_ms\n" + "".join(f"{name},{value}\n" for name, value in rows))


def test_an_analytic_device_calibrated_on_measurements_predicts_them_far_better(tmp_path):
    """Given device measurements (here made up, deterministic: the analytic figure 3.7x too fast with a per-model
    spread, as the published points show for the edge profiles), the calibrated profile predicts them far better.
    How well it does on real measurements is a benchmark figure (benchmarks/few_shot_calibration.py)."""
    devices = tmp_path / "devices"
    shutil.copytree(DEVICES_DIR, devices)
    references = reference_models()[::3]  # ten of the thirty, as a user with little time would measure
    before = cost_model("rpi4", directory=devices)
    spread = np.random.default_rng(0).uniform(0.85, 1.15, size=len(references))
    rows = [
        (r.name, repr(float(3.7 * factor * before.cost(r.graph, r.candidate).latency_ms.value)))
        for r, factor in zip(references, spread, strict=True)
    ]
    _write_csv(tmp_path / "measured.csv", rows)
    path, calibration = calibrate_from_csv("rpi4", tmp_path / "measured.csv", directory=devices)
    assert path == devices / "rpi4.xnnpack.calibration.json" and len(calibration.points) == len(references)
    after = cost_model("rpi4", directory=devices)
    assert after.calibration == calibration

    def mape(model) -> float:
        errors = [
            abs(model.cost(r.graph, r.candidate).latency_ms.value - float(ms)) / float(ms)
            for r, (_, ms) in zip(references, rows, strict=True)
        ]
        return float(np.mean(errors))

    assert mape(before) > 0.7  # 3.7x too fast: 73% off
    assert mape(after) < 0.15  # what is left is the made-up per-model spread
    assert after.cost(references[0].graph, references[0].candidate).latency_ms.provenance == "fitted"


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([("cnn@8/float", "0.01"), ("lenet@8/x", "0.02")], r"'lenet@8/x' is not a reference model"),
        ([("cnn@8/float", "0.01"), ("cnn@8/float", "0.02")], r"'cnn@8/float' appears twice"),
        ([("cnn@8/float", "nan")], r"median_ms 'nan' of cnn@8/float is not a latency"),
        ([("cnn@8/float", "-1")], r"median_ms '-1' of cnn@8/float is not a latency"),
        ([("cnn@8/float", "1e9")], r"must be > 0 and < 600000 ms"),
        ([("cnn@8/float", "fast")], r"median_ms 'fast'"),
    ],
)
def test_a_bad_measurement_csv_names_the_row_and_writes_nothing(tmp_path, rows, message):
    devices = tmp_path / "devices"
    shutil.copytree(DEVICES_DIR, devices)
    _write_csv(tmp_path / "bad.csv", rows)
    with pytest.raises(CostModelError, match=message):
        calibrate_from_csv("rpi4", tmp_path / "bad.csv", directory=devices)
    assert not (devices / "rpi4.xnnpack.calibration.json").exists()
    (tmp_path / "header.csv").write_text("name,ms\ncnn@8/float,0.1\n")
    with pytest.raises(CostModelError, match="needs a header with columns model and median_ms"):
        calibrate_from_csv("rpi4", tmp_path / "header.csv", directory=devices)


def test_another_device_cannot_be_profiled_here_and_is_told_how_to_calibrate():
    with pytest.raises(CostModelError, match=r"only 'host' can.*nas profile --device rpi4 --calibrate FILE\.csv"):
        calibrate_and_save("rpi4", show_progress=False)
