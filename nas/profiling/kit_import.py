"""``nas profile --device NAME --import results.csv``: a kit's measurements become the device's measured table.

The runner's CSV is validated row by row (unknown files, missing rows, NaN, negative or absurd latencies each
get an error naming the row and the fix), checked against the kit it came from (the manifest's digest), and
the table is derived from it by the very code that derives the host's table from its own timings
(``nas.profiling.profile.derive_entries``). The reference rows calibrate the new table. Nothing is written
unless everything checks out.
"""

from __future__ import annotations

import csv
import io
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from latency_models.calibration import Calibration, save_calibration
from latency_models.device import DEVICES_DIR, DeviceProfile, load_device
from latency_models.errors import CostModelError
from latency_models.kinds.measured.model import MeasuredCostModel
from latency_models.kit_runner import CSV_COLUMNS, ROLES
from latency_models.runtimes.litert.timing import relative_difference
from latency_models.table import LatencyTable, LayerKey, Measurement, save_table
from nas.profiling.kit import KIT_VERSION, MANIFEST, grid_from_dict, models_digest
from nas.profiling.micro import MicroModel
from nas.profiling.profile import derive_entries, micro_identity, required_micro_models
from nas.profiling.reference import MAX_PLAUSIBLE_MS, calibrate, calibration_points, reference_models


@dataclass(frozen=True, kw_only=True)
class KitRow:
    """One timing of the runner's CSV."""

    file: str
    role: str
    model: str
    kernel_set: str
    measurement: Measurement


@dataclass(frozen=True, kw_only=True)
class ImportedTable:
    """A table made from a kit's results, its calibration, and where they were written."""

    path: Path
    table: LatencyTable
    calibration: Calibration


def load_manifest(kit: Path) -> dict[str, Any]:
    """The kit's manifest, checked for its version and its model list's digest."""
    path = kit / MANIFEST
    try:
        manifest = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise CostModelError(f"cannot read the kit's {path} ({err}); pass --kit with the kit's directory") from None
    digest = models_digest(manifest.get("models", []))
    if manifest.get("kit_version") != KIT_VERSION or digest != manifest.get("digest"):
        raise CostModelError(f"{path} is not a kit manifest of this version of nas (or was edited); write a new kit")
    return manifest


def read_kit_csv(path: Path, manifest: dict[str, Any]) -> list[KitRow]:
    """The runner's rows, each checked: a file of the kit in its role, a known kernel set, a plausible latency."""
    try:
        rows = list(csv.DictReader(io.StringIO(path.read_text())))
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise CostModelError(f"cannot read {path} ({err}); pass the CSV the kit's runner wrote") from None
    if not rows or set(CSV_COLUMNS) - set(rows[0]):
        raise CostModelError(f"{path}: needs the header {','.join(CSV_COLUMNS)} (the kit's runner writes it)")
    roles = {model["file"]: model["role"] for model in manifest["models"]}
    checked = [_row(path, line, row, roles, manifest["kernel_sets"]) for line, row in enumerate(rows, start=2)]
    seen: set[tuple[str, str]] = set()
    for line, row in enumerate(checked, start=2):
        if row.role in ("micro", "reference"):
            if (row.file, row.kernel_set) in seen:
                raise CostModelError(f"{path}:{line}: {row.file} ({row.kernel_set}) appears twice; keep one timing")
            seen.add((row.file, row.kernel_set))
    return checked


def _row(path: Path, line: int, row: dict[str, str], roles: dict[str, str], kernel_sets: list[str]) -> KitRow:
    where = f"{path}:{line}"
    file, role, kernels = row["file"] or "", row["role"] or "", row["kernel_set"] or ""
    if file not in roles:
        raise CostModelError(f"{where}: {file!r} is not a file of this kit; import the CSV of this kit's runner")
    allowed = ("invoke", "micro", "noise") if roles[file] == "micro" else ("reference",)
    if role not in ROLES or role not in allowed:
        raise CostModelError(f"{where}: role {role!r} does not fit {file} (one of {', '.join(allowed)})")
    if kernels not in kernel_sets:
        raise CostModelError(f"{where}: kernel set {kernels!r} is not the kit's ({', '.join(kernel_sets)})")
    values = {name: _number(row.get(name)) for name in ("median_ms", "p25_ms", "p75_ms", "runs")}
    if not all(0 < values[n] < MAX_PLAUSIBLE_MS for n in ("median_ms", "p25_ms", "p75_ms")):
        raise CostModelError(
            f"{where}: {file} has latencies {row['p25_ms']!r} / {row['median_ms']!r} / {row['p75_ms']!r} ms; each "
            f"must be > 0 and < {MAX_PLAUSIBLE_MS:g} (a number in milliseconds); time it again"
        )
    if not values["p25_ms"] <= values["median_ms"] <= values["p75_ms"] or not values["runs"] >= 1:
        raise CostModelError(f"{where}: {file} needs p25 <= median <= p75 and runs >= 1; time it again")
    measurement = Measurement(
        median_ms=values["median_ms"], p25_ms=values["p25_ms"], p75_ms=values["p75_ms"], runs=int(values["runs"])
    )
    return KitRow(file=file, role=role, model=row["model"] or "", kernel_set=kernels, measurement=measurement)


def _number(text: str | None) -> float:
    try:
        value = float(text or "nan")
    except ValueError:
        return math.nan
    return value if math.isfinite(value) else math.nan


class ReplayTimings:
    """A kit's micro-model timings for one kernel set, served to the profile's derivation."""

    def __init__(self, kernel_set: str, by_identity: dict[str, Measurement], files: dict[str, str]) -> None:
        self.kernel_sets: tuple[str, ...] = (kernel_set,)
        self.by_identity = by_identity
        self.files = files

    def __call__(self, micro: MicroModel) -> dict[str, Measurement]:
        identity = micro_identity(micro)
        if identity not in self.by_identity:
            raise CostModelError(
                f"the results have no {self.kernel_sets[0]} timing of {self.files.get(identity, identity)}; "
                "run the kit's runner to the end"
            )
        return {self.kernel_sets[0]: self.by_identity[identity]}


def import_kit_results(
    name: str, csv_path: Path, *, kit: Path | None = None, directory: Path = DEVICES_DIR
) -> list[ImportedTable]:
    """Reads a kit runner's CSV for device ``name``, derives a measured table per kernel set it timed, calibrates
    each with the reference rows, and writes both beside the device's profile."""
    kit = kit or csv_path.parent
    manifest = load_manifest(kit)
    if manifest["device"] != name:
        raise CostModelError(f"the kit in {kit} was written for {manifest['device']!r}, not {name!r}")
    device = load_device(name, directory)
    rows = read_kit_csv(csv_path, manifest)
    meta = _runner_meta(csv_path, manifest)
    grid = grid_from_dict(manifest["grid"])
    keys, micros = required_micro_models(device, grid)
    files = {m["name"]: m["file"] for m in manifest["models"] if m["role"] == "micro"}
    if {micro_identity(m) for m in micros} != set(files):
        raise CostModelError(
            f"the kit in {kit} lists other micro-models than {name}'s profile needs now (another version of nas, "
            "or the profile changed); write a new kit with `nas profile --kit`"
        )
    timed = sorted({row.kernel_set for row in rows if row.role == "micro"})
    if not timed:
        raise CostModelError(
            f"{csv_path} has no micro-model timings; for reference models alone use "
            f"`nas profile --device {name} --calibrate {csv_path}`"
        )
    imported = []
    for kernels in timed:
        ours = [row for row in rows if row.kernel_set == kernels]
        table = _table(device, kernels, keys, grid.boundary_shapes, ours, files, meta)
        calibration = _calibration(device, table, ours, csv_path)
        imported.append(ImportedTable(path=device.table_path(kernels, directory), table=table, calibration=calibration))
    for item in imported:
        save_table(item.table, item.path)
        save_calibration(item.calibration, device.calibration_path(item.table.kernel_set, directory))
    return imported


def _table(
    device: DeviceProfile,
    kernels: str,
    keys: list[LayerKey],
    boundary_shapes: tuple[tuple[int, int, int], ...],
    rows: list[KitRow],
    files: dict[str, str],
    meta: dict[str, Any],
) -> LatencyTable:
    by_identity = {row.model: row.measurement for row in rows if row.role == "micro"}
    invoke = [row.measurement.median_ms for row in rows if row.role == "invoke"]
    if len(invoke) < 2:
        raise CostModelError(f"the results have {len(invoke)} {kernels} timings of the invoke model; need >= 2")
    timings = ReplayTimings(kernels, by_identity, files)
    # The first invoke timing also warmed the device up (as in a host profile): the rest give the overhead.
    entries = derive_entries(keys, timings, boundary_shapes, {kernels: float(np.median(invoke[1:]))})
    noise = [relative_difference(by_identity[row.model], row.measurement) for row in rows if row.role == "noise"]
    provenance = {
        "device": device.name,
        "kernel_set": kernels,
        "threads": device.threads,
        "noise_floor_pct": round(100 * float(np.median(noise)), 3) if noise else None,
        "micro_models": len(by_identity),
        "method": "measured on the device with the on-device kit (nas profile --kit), imported",
        **meta,
    }
    return LatencyTable(device=device.name, kernel_set=kernels, entries=entries[kernels], provenance=provenance)


def _calibration(device: DeviceProfile, table: LatencyTable, rows: list[KitRow], csv_path: Path) -> Calibration:
    measured = {row.model: row.measurement.median_ms for row in rows if row.role == "reference"}
    if not measured:
        raise CostModelError(
            f"{csv_path} has no {table.kernel_set} reference model timings to calibrate the table; run the kit's "
            "runner without --only"
        )
    model = MeasuredCostModel(device, table)
    points = calibration_points(model, reference_models(), measured)
    return calibrate(model, points, f"{len(points)} reference models measured on the device ({csv_path.name})")


def _runner_meta(csv_path: Path, manifest: dict[str, Any]) -> dict[str, Any]:
    """Where and when the runner measured (its ``.meta.json``; a TFLite Micro harness writes none)."""
    imported = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    path = csv_path.with_suffix(".meta.json")
    if not path.exists():
        return {"date_utc": imported, "imported_utc": imported, "runner": "not recorded (no .meta.json)"}
    try:
        meta = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise CostModelError(f"cannot read {path} ({err}); bring back the runner's .meta.json unchanged") from None
    if meta.get("kit_digest") != manifest["digest"]:
        raise CostModelError(f"{csv_path} was measured with another kit than {manifest['digest']}; import its own kit")
    facts = meta.get("device_facts", {})
    return {
        "date_utc": facts.get("date_utc", imported),
        "imported_utc": imported,
        "runtime": facts.get("interpreter", "?"),
        "cpu": {"model": facts.get("cpu", "?"), "machine": facts.get("machine", "?")},
        "platform": facts.get("platform", "?"),
        "protocol": meta.get("protocol", {}),
    }
