"""The published calibration set (MLPerf Tiny v0.7-v1.2, closed division): the committed CSV loads, covers what
the fit will need, keeps v1.3 out, and a malformed row is refused in one line naming file, line and field."""

import csv
import json

import pytest

from latency_models.published import (
    BENCHMARK_MODELS,
    MLPERF_TINY_CSV,
    PUBLISHED_DIR,
    PublishedDataError,
    load_published,
)


@pytest.fixture(scope="module")
def points():
    return load_published()


def test_the_committed_set_loads_with_every_version_benchmark_and_a_source(points):
    assert {p.version for p in points} == {"0.7", "1.0", "1.1", "1.2"}  # v1.3 is held out for the check
    assert {p.benchmark for p in points} == set(BENCHMARK_MODELS)
    assert len({p.board for p in points}) >= 25  # 28 boards in the data; a floor, not the exact count
    assert len(points) >= 280
    assert all(p.source.startswith("mlcommons/tiny_results_v" + p.version + "@") for p in points)
    assert all(p.system_source for p in points)
    assert all(p.latency_ms > 0 for p in points)
    assert sum(p.energy_uj is not None for p in points) >= 100  # energy mode where the submitters measured it


def test_a_known_row_matches_its_results_file(points):
    # v1.0 STMicroelectronics NUCLEO-H7A3ZI-Q, kws: "Median throughput is 88.xxx inf./sec." -> ~11 ms
    row = next(
        p
        for p in points
        if p.version == "1.0"
        and p.submitter == "STMicroelectronics"
        and p.benchmark == "kws"
        and p.board == "NUCLEO-H7A3ZI-Q"
    )
    assert row.clock_mhz == 280 and row.stack == "X-CUBE-AI" and row.precision == "int8"
    assert 5 < row.latency_ms < 20
    assert row.source.endswith("closed/STMicroelectronics/results/NUCLEO-H7A3ZI-Q/kws/performance/results.txt")


def test_the_provenance_names_its_commits_counts_and_the_v13_exclusion():
    meta = json.loads((PUBLISHED_DIR / "mlperf_tiny.json").read_text())
    assert [s["version"] for s in meta["sources"]] == ["0.7", "1.0", "1.1", "1.2"]
    assert all(len(s["commit"]) == 40 for s in meta["sources"])
    assert any("v1.3" in reason for reason in meta["excluded"])
    assert meta["counts"]["rows"] == len(load_published())
    assert set(meta["summary"]["distinct_board_stack_points"]) == set(BENCHMARK_MODELS)


def _write_with(tmp_path, **changes):
    """The committed CSV's header and first row, with some fields changed."""
    with MLPERF_TINY_CSV.open(newline="") as handle:
        reader = csv.DictReader(handle)
        row = {**next(reader), **changes}
        path = tmp_path / "bad.csv"
        with path.open("w", newline="") as out:
            writer = csv.DictWriter(out, fieldnames=reader.fieldnames or [])
            writer.writeheader()
            writer.writerow(row)
    return path


@pytest.mark.parametrize(
    ("changes", "field", "words"),
    [
        ({"latency_ms": "-3.2"}, "latency_ms", "positive"),
        ({"latency_ms": "nan"}, "latency_ms", "positive"),
        ({"latency_ms": "fast"}, "latency_ms", "not a number"),
        ({"benchmark": "imagenet"}, "benchmark", "unknown benchmark"),
        ({"clock_mhz": "480000000"}, "clock_mhz", "implausible"),
        ({"energy_uj": "0"}, "energy_uj", "positive"),
        ({"precision": "int4"}, "precision", "not one of"),
        ({"source": ""}, "source", "empty"),
    ],
)
def test_a_malformed_row_is_refused_in_one_line_naming_file_line_and_field(tmp_path, changes, field, words):
    path = _write_with(tmp_path, **changes)
    with pytest.raises(PublishedDataError) as raised:
        load_published(path)
    message = str(raised.value)
    assert message.startswith(f"{path}:2: {field}: ") and words in message
    assert "\n" not in message


def test_an_absent_clock_or_energy_is_allowed(tmp_path):
    [point] = load_published(_write_with(tmp_path, clock_mhz="", energy_uj=""))
    assert point.clock_mhz is None and point.energy_uj is None


def test_a_repeated_row_and_a_missing_file_are_refused(tmp_path):
    path = _write_with(tmp_path)
    lines = path.read_text().splitlines()
    path.write_text("\n".join([*lines, lines[1]]) + "\n")
    with pytest.raises(PublishedDataError, match=r":3: benchmark: .* repeats line 2"):
        load_published(path)
    with pytest.raises(PublishedDataError, match="no such"):
        load_published(tmp_path / "absent.csv")
