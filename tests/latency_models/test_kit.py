"""The on-device kit round trip: write a kit, run its standalone runner in another process on this machine (the
stand-in device), import its CSV as a measured table; and the import's validation of bad results."""

from __future__ import annotations

import csv
import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from latency_models.device import DEVICES_DIR, load_device
from latency_models.errors import CostModelError
from latency_models.kinds.measured.model import MeasuredCostModel
from latency_models.registry import cost_model
from latency_models.table import LatencyTable, load_table
from nas.profiling.kit import MANIFEST, RUNNER, write_kit
from nas.profiling.kit_import import import_kit_results
from nas.profiling.reference import read_reference_csv, reference_models
from nas.profiling.run import QUICK_GRID, calibrate_from_csv
from tests.once import built_once

pytestmark = pytest.mark.slow


def _time_a_kit(root: Path) -> None:
    devices = root / "devices"
    devices.mkdir()
    shutil.copy(DEVICES_DIR / "host.json", devices / "host.json")
    kit = root / "host-kit"
    write_kit("host", kit, grid=QUICK_GRID, directory=devices, show_progress=False)
    runner = [sys.executable, str(kit / RUNNER), "--kernel-sets", "xnnpack"]
    subprocess.run(runner, check=True, capture_output=True, cwd=root)


@pytest.fixture(scope="module")
def kit_results(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A quick-grid kit of the host, timed by its runner in a separate process: (kit directory, devices dir),
    written and timed once per test run, a copy per test process."""
    root = built_once(tmp_path_factory, "kit", _time_a_kit)
    return root / "host-kit", root / "devices"


def _imported(kit: Path, devices: Path, csv_path: Path | None = None) -> LatencyTable:
    (imported,) = import_kit_results("host", csv_path or kit / "results.csv", kit=kit, directory=devices)
    return imported.table


def _rows(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(path.read_text())))


def _write_rows(path: Path, rows: list[dict[str, str]]) -> None:
    with path.open("w", newline="") as stream:
        writer = csv.DictWriter(stream, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def test_a_kit_holds_its_models_a_manifest_the_runner_and_the_harness_description(kit_results):
    kit, _ = kit_results
    manifest = json.loads((kit / MANIFEST).read_text())
    assert manifest["device"] == "host" and manifest["kernel_sets"] == ["xnnpack", "builtin"]
    assert all((kit / model["file"]).stat().st_size > 0 for model in manifest["models"])
    assert sum(m["role"] == "reference" for m in manifest["models"]) == len(reference_models())
    readme = (kit / "README.md").read_text()
    assert "MicroMutableOpResolver" in readme and "CONV_2D" in readme and "DEPTHWISE_CONV_2D" in readme
    assert "ai_edge_litert" not in (kit / RUNNER).read_text().split("def interpreter_module")[0]  # imported lazily


def test_the_runner_times_every_model_of_the_kit(kit_results):
    """One xnnpack row per model of the manifest, each a positive timing with ordered quartiles. How close the
    runner comes to the host profile is a timing figure (this machine drifts by a median 25% over minutes): it
    is measured by benchmarks/cost_model_accuracy.py, never asserted here."""
    kit, _ = kit_results
    manifest = json.loads((kit / MANIFEST).read_text())
    rows = {row["file"]: row for row in _rows(kit / "results.csv")}
    assert set(rows) == {model["file"] for model in manifest["models"]}
    for row in rows.values():
        p25, median, p75 = (float(row[name]) for name in ("p25_ms", "median_ms", "p75_ms"))
        assert row["kernel_set"] == "xnnpack" and int(row["runs"]) > 0
        assert 0 < p25 <= median <= p75 < 1000


def test_an_imported_table_keys_and_predicts_as_the_host_profile_does(kit_results, profiled_devices):
    """The imported table holds exactly the keys the profile of the same grid holds, and predicts every reference
    model of that grid from measured entries (positive, finite). Agreement between the two is a timing figure:
    not asserted (the machine drifts between the two measurements)."""
    kit, devices = kit_results
    table = _imported(kit, devices)
    _, tables = profiled_devices
    assert set(table.entries) == set(tables["xnnpack"].entries)
    imported = MeasuredCostModel(load_device("host", devices), table)
    small = [r for r in reference_models() if "@8/" in r.name]  # the quick grid's shapes: no extrapolation
    for reference in small:
        latency = imported.cost(reference.graph, reference.candidate).latency_ms
        assert np.isfinite(latency.value) and latency.value > 0, reference.name
        assert latency.provenance in ("measured", "fitted"), (reference.name, latency.label)  # never analytic
    model = cost_model("host", "xnnpack", devices)
    assert model.calibration is not None and len(model.calibration.points) == len(reference_models())
    table = load_table(devices / "host.xnnpack.csv")
    assert table.provenance["method"].startswith("measured on the device with the on-device kit")
    assert table.provenance["runtime"].startswith("ai-edge-litert")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda rows, i: rows.pop(i), "no xnnpack timing of micro/"),
        (lambda rows, i: rows[i].update(median_ms="nan"), "must be > 0"),
        (lambda rows, i: rows[i].update(median_ms="-0.01", p25_ms="-0.02"), "must be > 0"),
        (lambda rows, i: rows[i].update(median_ms="1e9", p75_ms="2e9"), "must be > 0 and < 600000"),
        (lambda rows, i: rows[i].update(file="micro/9999.tflite"), "is not a file of this kit"),
        (lambda rows, i: rows[i].update(kernel_set="gpu"), "is not the kit's"),
        (lambda rows, i: rows.append(dict(rows[i])), "appears twice"),
    ],
)
def test_bad_results_are_refused_with_the_row_and_nothing_is_written(kit_results, tmp_path, change, message):
    kit, devices = kit_results
    rows = _rows(kit / "results.csv")
    micro = [i for i, row in enumerate(rows) if row["role"] == "micro"][10]
    change(rows, micro)
    bad = tmp_path / "results.csv"
    _write_rows(bad, rows)
    shutil.copy(kit / "results.meta.json", tmp_path / "results.meta.json")
    before = {p.name: p.read_bytes() for p in devices.iterdir()}
    with pytest.raises(CostModelError, match=message):
        _imported(kit, devices, bad)
    assert {p.name: p.read_bytes() for p in devices.iterdir()} == before


def test_results_of_another_kit_or_device_are_refused(kit_results, tmp_path):
    kit, devices = kit_results
    meta = json.loads((kit / "results.meta.json").read_text())
    shutil.copy(kit / "results.csv", tmp_path / "results.csv")
    (tmp_path / "results.meta.json").write_text(json.dumps({**meta, "kit_digest": "0" * 16}))
    with pytest.raises(CostModelError, match="another kit"):
        _imported(kit, devices, tmp_path / "results.csv")
    with pytest.raises(CostModelError, match="written for 'host', not 'rpi4'"):
        import_kit_results("rpi4", kit / "results.csv", kit=kit, directory=DEVICES_DIR)
    with pytest.raises(CostModelError, match="already exists"):
        write_kit("host", kit, grid=QUICK_GRID, directory=devices, show_progress=False)


def test_the_runners_reference_rows_alone_calibrate_a_device(kit_results, tmp_path):
    kit, _ = kit_results
    out = tmp_path / "reference.csv"
    command = [sys.executable, str(kit / RUNNER), "--only", "reference", "--kernel-sets", "xnnpack", "--out", str(out)]
    subprocess.run(command, check=True, capture_output=True)
    rows = _rows(out)
    assert {row["role"] for row in rows} == {"reference"} and len(rows) == len(reference_models())
    devices = tmp_path / "devices"
    devices.mkdir()
    shutil.copy(DEVICES_DIR / "rpi4.json", devices / "rpi4.json")
    path, calibration = calibrate_from_csv("rpi4", out, directory=devices)
    assert path.exists() and len(calibration.points) == len(reference_models())
    with pytest.raises(CostModelError, match="no builtin reference model timings"):
        read_reference_csv(out, reference_models(), "builtin")
