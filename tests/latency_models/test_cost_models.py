"""Cost models on a real (tiny) host profile: the shared contract, table files, errors, and the figures."""

from __future__ import annotations

import json
import shutil

import numpy as np
import optuna
import pytest

from latency_models.calibration import MIN_FULL_FIT
from latency_models.errors import CostModelError
from latency_models.layered import group_latencies
from latency_models.registry import cost_model, table_summaries
from latency_models.table import LayerKey, load_table, save_table
from search_spaces.graph import analyze
from search_spaces.space import Candidate, SearchSpace, suggest_candidate
from search_spaces.spec import load_model_spec
from tests.latency_models.contract import check_cost_model, check_monotone_in_channels

pytestmark = pytest.mark.slow  # a real profile: micro-models exported and timed in LiteRT


def _candidates(family: str, shape: tuple[int, ...], count: int) -> tuple:
    spec = load_model_spec(family)
    graph = analyze(spec, shape, 10)
    space = SearchSpace().with_model_rules(spec.rules)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    randoms = [suggest_candidate(study.ask(), graph, space) for _ in range(count)]
    uniform = [Candidate.uniform(graph, weight_bits=32, activation_bits=32)]
    return graph, [*uniform, Candidate.uniform(graph, weight_bits=8, activation_bits=8), *randoms]


@pytest.mark.parametrize("kernels", ["xnnpack", "builtin"])
@pytest.mark.parametrize(
    ("family", "shape"), [("cnn", (8, 8, 1)), ("resnet8", (16, 16, 3)), ("mobilenet_v1", (32, 32, 3))]
)
def test_every_cost_model_keeps_the_contract(profiled_devices, kernels, family, shape):
    directory, _ = profiled_devices
    model = cost_model("host", kernels, directory=directory)
    graph, candidates = _candidates(family, shape, 6)
    check_cost_model(model, graph, candidates)


def test_latency_does_not_fall_when_layers_keep_more_channels(profiled_devices):
    directory, _ = profiled_devices
    model = cost_model("host", "builtin", directory=directory)
    graph, candidates = _candidates("cnn", (16, 16, 1), 0)
    for candidate in candidates:  # every layer fitted (shapes off the grid): monotone by construction
        latencies = check_monotone_in_channels(model, graph, candidate, [0.25, 0.5, 0.75, 1.0], tolerance=0.0)
        assert latencies[-1] > latencies[0]


def test_table_files_round_trip_and_name_their_provenance(profiled_devices, tmp_path):
    directory, tables = profiled_devices
    table = tables["xnnpack"]
    assert table.provenance["kernel_set"] == "xnnpack" and table.provenance["threads"] == 1
    assert {"cpu", "runtime", "protocol", "noise_floor_pct", "date_utc"} <= set(table.provenance)
    assert load_table(directory / "host.xnnpack.csv") == table
    save_table(table, tmp_path / "copy.csv")
    assert load_table(tmp_path / "copy.csv") == table
    assert all(m.median_ms >= 0 for m in table.entries.values())
    summaries = table_summaries(cost_model("host", directory=directory).device, directory)
    assert [(s.kernel_set, s.kind) for s in summaries] == [("xnnpack", "measured"), ("builtin", "measured")]


def test_a_missing_key_names_the_key_and_its_nearest_entries(profiled_devices):
    _, tables = profiled_devices
    table = tables["builtin"]
    missing = LayerKey(op="conv", height=5, width=5, in_channels=3, out_channels=8, kernel=3, act="relu")
    with pytest.raises(
        CostModelError, match=r"no entry for conv 5x5x3->8 k3 s1 relu w32a32; nearest: conv \d+x\d+x\d+->\d+ k"
    ):
        table.lookup(missing)
    with pytest.raises(CostModelError, match="no lstm entry at all"):
        table.lookup(LayerKey(op="lstm"))


def test_predictions_say_measured_fitted_or_extrapolated(profiled_devices):
    directory, _tables = profiled_devices
    model = cost_model("host", "builtin", directory=directory)
    graph = analyze(load_model_spec("cnn"), (12, 12, 1), 10)  # the quick grid's family shapes are 8x8
    int8 = Candidate.uniform(graph, weight_bits=8, activation_bits=8)
    cost = model.cost(graph, int8)
    labels = {part.name: part.latency_ms.label for part in model.raw_parts(graph, int8)}
    assert labels["invoke"] == "measured"
    assert labels["conv2"].startswith("fitted")  # 12x12x32->64 is not on the tiny grid
    assert cost.latency_ms.provenance == "fitted"  # calibrated: every part passed through a fitted correction
    big = analyze(load_model_spec("cnn"), (64, 64, 1), 10)  # far beyond the grid's 8x8 inputs
    far = model.cost(big, Candidate.uniform(big, weight_bits=8, activation_bits=8))
    assert far.latency_ms.extrapolated and far.latency_ms.label == "fitted, extrapolated"
    assert cost.provenance()["ram_bytes"] == "exact" and cost.provenance()["energy_mj"].startswith("analytic")
    power = model.device.active_power.watts
    assert cost.energy_mj.value == pytest.approx(power * cost.latency_ms.value)


def test_the_profile_calibrates_its_tables_on_whole_reference_models(profiled_devices):
    directory, tables = profiled_devices
    for kernels, table in tables.items():
        model = cost_model("host", kernels, directory=directory)
        calibration = model.calibration
        assert calibration is not None and calibration.basis == f"the table of {table.provenance['date_utc']}"
        assert len(calibration.points) >= MIN_FULL_FIT and 0.3 < calibration.scale < 3.0
        graph = analyze(load_model_spec("resnet8"), (8, 8, 1), 10)
        int8 = Candidate.uniform(graph, weight_bits=8, activation_bits=8)
        raw = model.raw_parts(graph, int8)
        cost = model.cost(graph, int8)
        expected = calibration.corrected(group_latencies(raw), len(raw) - 1)
        assert cost.latency_ms.value == pytest.approx(expected)
        assert cost.layers[-1].name == "dispatch" and "calibration" in cost.layers[-1].note


def test_a_calibration_of_another_table_is_refused(profiled_devices, tmp_path):
    directory, _ = profiled_devices
    for path in directory.iterdir():
        shutil.copy(path, tmp_path / path.name)
    calibration_file = tmp_path / "host.builtin.calibration.json"
    stale = json.loads(calibration_file.read_text())
    stale["basis"] = "the table of 2020-01-01T00:00:00Z"
    calibration_file.write_text(json.dumps(stale))
    with pytest.raises(
        CostModelError, match=r"fitted to the table of 2020-01-01.*nas profile --device host --calibrate"
    ):
        cost_model("host", "builtin", directory=tmp_path)


def test_a_grid_key_is_an_exact_table_hit(profiled_devices):
    directory, tables = profiled_devices
    model = cost_model("host", "builtin", directory=directory)
    key = next(k for k in tables["builtin"].entries if k.op == "dense")
    value, provenance, extrapolated = model.fitted.latency(key)
    assert provenance == "measured" and not extrapolated
    assert value == tables["builtin"].entries[key].median_ms
    fitted = model.fitted.fits[("dense", key.weight_bits, key.activation_bits)]
    assert np.all(fitted.coefficients >= 0)  # monotone in work


def test_unknown_devices_and_kernel_sets_are_refused_with_the_options(profiled_devices):
    directory, _ = profiled_devices
    with pytest.raises(CostModelError, match=r"unknown device 'pi9'; known devices: host"):
        cost_model("pi9", directory=directory)
    with pytest.raises(CostModelError, match=r"no kernel set 'gpu'; use xnnpack, builtin"):
        cost_model("host", "gpu", directory=directory)
