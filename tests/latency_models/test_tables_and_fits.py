"""Table files, device profiles, the timing statistics and the fitted predictor, on hand-made inputs."""

from __future__ import annotations

import json

import numpy as np
import pytest

from latency_models.cost import Figure, total, weakest
from latency_models.device import load_device, profile_from_dict
from latency_models.errors import CostModelError
from latency_models.predictor import FEATURES, FittedTable, features, interpolate_term, macs, output_size
from latency_models.runtimes.litert.timing import summarize
from latency_models.table import LatencyTable, LayerKey, Measurement, load_table, parse_rows, save_table, table_to_csv


def _m(ms: float) -> Measurement:
    return Measurement(median_ms=ms, p25_ms=ms * 0.9, p75_ms=ms * 1.1, runs=30)


def _dense_table() -> LatencyTable:
    entries = {
        LayerKey(op="dense", in_channels=i, out_channels=o): _m(0.001 + 2e-6 * i * o / 10)
        for i in (16, 64, 256)
        for o in (10, 64)
    }
    return LatencyTable(device="host", kernel_set="builtin", entries=entries, provenance={"date_utc": "x"})


def test_outlier_rounds_are_rejected_and_a_steady_wobble_is_not():
    steady = np.array([1.00, 1.01, 0.99, 1.00, 1.005, 1.02] * 5)
    assert summarize(steady).rejected == 0
    disturbed = np.concatenate([steady, [3.0, 5.0]])
    summary = summarize(disturbed)
    assert summary.rejected == 2 and summary.median_ms == pytest.approx(1.0025, abs=0.005)


def test_the_fit_is_monotone_in_work_and_says_when_it_extrapolates():
    fitted = FittedTable(_dense_table())
    inside = fitted.latency(LayerKey(op="dense", in_channels=128, out_channels=32))
    bigger = fitted.latency(LayerKey(op="dense", in_channels=128, out_channels=48))
    beyond = fitted.latency(LayerKey(op="dense", in_channels=1024, out_channels=64))
    assert inside[1:] == ("fitted", False) and beyond[1:] == ("fitted", True)
    assert inside[0] < bigger[0] < beyond[0]
    exact = fitted.latency(LayerKey(op="dense", in_channels=64, out_channels=10))
    assert exact == (
        _dense_table().entries[LayerKey(op="dense", in_channels=64, out_channels=10)].median_ms,
        "measured",
        False,
    )
    with pytest.raises(CostModelError, match="no conv entry at all"):
        fitted.latency(LayerKey(op="conv"))


def test_work_of_a_strided_channel_multiplier_conv_counts_its_outputs():
    key = LayerKey(op="dwconv_multiplier", height=8, width=8, in_channels=1, out_channels=16, kernel=3, stride=2)
    assert output_size(key) == (4, 4)
    assert macs(key) == 4 * 4 * 9 * 16
    assert features(key)[FEATURES.index("weight_bytes")] == 9 * 16 * 4  # float32 weights


def test_whole_model_terms_interpolate_and_never_go_negative():
    points = {100: 1.0, 1000: 2.0}
    assert interpolate_term(points, 550) == (1.5, False)
    assert interpolate_term(points, 2000) == (pytest.approx(1.0 + 1900 / 900), True)
    assert interpolate_term({100: 1.0, 200: 0.1}, 1000) == (0.0, True)


def test_a_table_file_round_trips_and_malformed_rows_name_their_line(tmp_path):
    table = _dense_table()
    save_table(table, tmp_path / "t.csv")
    assert load_table(tmp_path / "t.csv") == table
    lines = table_to_csv(table).splitlines()
    bad = "\n".join([lines[0], lines[1].replace(lines[1].split(",")[-5], "nan", 1), *lines[2:]])
    with pytest.raises(CostModelError, match=r"t.csv line 2"):
        parse_rows(bad, "t.csv")
    negative = "\n".join([lines[0], lines[1].replace(lines[1].split(",")[-5], "-1.0", 1)])
    with pytest.raises(CostModelError, match=r"line 2: .*finite latencies >= 0"):
        parse_rows(negative, "t.csv")
    with pytest.raises(CostModelError, match=r"line 3: duplicate entry dense"):
        parse_rows("\n".join([lines[0], lines[1], lines[1]]), "t.csv")
    with pytest.raises(CostModelError, match=r"missing columns \['median_ms'"):
        parse_rows(lines[0].replace("median_ms", "median"), "t.csv")
    (tmp_path / "t.json").unlink()
    with pytest.raises(CostModelError, match=r"t\.json is missing"):
        load_table(tmp_path / "t.csv")


def test_device_profiles_validate_and_the_host_runs_only_what_the_runtime_runs(tmp_path):
    host = load_device("host")
    assert host.runs("conv", 8, 8) and not host.runs("dwconv", 4, 8)  # int4 depthwise is never correct
    raw = host.to_dict()
    assert profile_from_dict(json.loads(json.dumps(raw))) == host
    with pytest.raises(CostModelError, match=r"unknown keys \['colour'\]"):
        profile_from_dict({**raw, "colour": "red"})
    with pytest.raises(CostModelError, match=r"unknown op kinds \['lstm'\]"):
        profile_from_dict({**raw, "precisions": {"lstm": [[8, 8]]}})
    with pytest.raises(CostModelError, match="a power figure needs watts >= 0 and a source"):
        profile_from_dict({**raw, "active_power": {"watts": 2.0, "source": " "}})
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(CostModelError, match=r"bad\.json is not valid JSON"):
        load_device("bad", tmp_path)


def test_provenance_of_combined_figures_is_the_weakest_part():
    assert weakest(["exact", "measured"]) == "measured" and weakest(["fitted", "analytic"]) == "analytic"
    summed = total(
        [Figure(value=1.0, provenance="measured"), Figure(value=2.0, provenance="fitted", extrapolated=True)]
    )
    assert summed == Figure(value=3.0, provenance="fitted", extrapolated=True)
    with pytest.raises(CostModelError, match="finite and >= 0"):
        Figure(value=-1.0, provenance="exact")
