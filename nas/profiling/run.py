"""``nas profile``: measure a device's tables and their whole-model calibration, and write them beside its
profile, atomically."""

from __future__ import annotations

import time
from pathlib import Path

from latency_models.calibration import Calibration, CalibrationPoint, save_calibration
from latency_models.device import DEVICES_DIR, DeviceProfile, load_device, this_host
from latency_models.errors import CostModelError
from latency_models.host import cpu_facts
from latency_models.kinds.measured.model import MeasuredCostModel
from latency_models.layered import LayeredCostModel
from latency_models.registry import cost_model
from latency_models.table import LatencyTable, load_table, save_table
from latency_models.tflite_keys import file_keys
from nas.deploy.export_record import read_records
from nas.profiling.profile import Grid, profile_device
from nas.profiling.reference import (
    calibrate,
    calibration_points,
    measure_references,
    read_reference_csv,
    reference_models,
    reference_protocol,
)

QUICK_GRID = Grid(
    per_precision=3,
    spatial=(4, 8),
    conv_in=(3, 8),
    conv_out=(8, 16),
    depthwise=(8, 16),
    dense_in=(16, 64),
    dense_out=(10, 16),
    boundary_shapes=((1, 1, 8), (4, 4, 8), (8, 8, 16)),
    family_per_precision=3,
    family_input_sizes=(8,),
    family_candidates=2,
)


def _measurable(name: str, directory: Path) -> DeviceProfile:
    device = load_device(name, directory)
    if not device.measurable_here:
        raise CostModelError(
            f"device {name!r} cannot be measured on this machine; only {this_host(directory).name!r} can. "
            "Time the reference models on "
            f"the device and run `nas profile --device {name} --calibrate FILE.csv`"
        )
    return device


def profile_and_save(
    name: str,
    *,
    quick: bool = False,
    show_progress: bool = True,
    directory: Path = DEVICES_DIR,
    grid: Grid | None = None,
) -> list[tuple[Path, LatencyTable]]:
    """Profiles device ``name`` on this machine, calibrates the new tables with the reference models, and writes
    both; returns (path, table) pairs.

    Everything is measured before anything is written, and each file is replaced atomically: a profile that is
    interrupted leaves the old tables and calibrations intact.
    """
    device = _measurable(name, directory)
    result = profile_device(device, grid=grid or (QUICK_GRID if quick else None), show_progress=show_progress)
    calibrations = measure_calibrations(device, result.tables, show_progress=show_progress)
    written = []
    for kernels, table in result.tables.items():
        path = device.table_path(kernels, directory)
        save_table(table, path)
        save_calibration(calibrations[kernels], device.calibration_path(kernels, directory))
        written.append((path, table))
    return written


def calibrate_and_save(
    name: str, *, show_progress: bool = True, directory: Path = DEVICES_DIR
) -> dict[str, tuple[Path, Calibration]]:
    """Times the reference models on this machine now and refits the calibration of each of ``name``'s tables."""
    device = _measurable(name, directory)
    tables = {}
    for kernels in device.kernel_sets:
        path = device.table_path(kernels, directory)
        if not path.exists():
            raise CostModelError(
                f"device {name!r} has no {kernels} table to calibrate; run `nas profile --device {name}`"
            )
        tables[kernels] = load_table(path)
    written = {}
    for kernels, calibration in measure_calibrations(device, tables, show_progress=show_progress).items():
        path = device.calibration_path(kernels, directory)
        save_calibration(calibration, path)
        written[kernels] = (path, calibration)
    return written


def calibrate_from_csv(
    name: str, path: Path, *, kernel_set: str | None = None, directory: Path = DEVICES_DIR
) -> tuple[Path, Calibration]:
    """Fits the calibration of device ``name``'s cost model (its table, or its analytic model) to reference models
    measured on the device (a CSV of ``model,median_ms``), and writes it."""
    model = cost_model(name, kernel_set, directory)
    references = reference_models()
    measured = read_reference_csv(path, references, model.kernel_set)
    points = calibration_points(model, references, measured)
    calibration = calibrate(model, points, f"{len(points)} reference models measured on the device ({path.name})")
    target = model.device.calibration_path(model.kernel_set, directory)
    save_calibration(calibration, target)
    return target, calibration


def measure_calibrations(
    device: DeviceProfile, tables: dict[str, LatencyTable], *, show_progress: bool
) -> dict[str, Calibration]:
    """The reference models timed whole on this machine, and each table's calibration fitted to them."""
    references = reference_models()
    measured = measure_references(references, tuple(tables), reference_protocol(device.threads), show_progress)
    date = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    source = f"{len(references)} reference models timed whole on this host, {date}"
    models = {kernels: MeasuredCostModel(device, table) for kernels, table in tables.items()}
    return {
        kernels: calibrate(model, calibration_points(model, references, measured[kernels]), source)
        for kernels, model in models.items()
    }


EXPORT_PREFIX = "export:"


def add_exports_and_save(
    name: str, results_dir: Path, *, directory: Path = DEVICES_DIR
) -> dict[str, tuple[Path, Calibration, int]]:
    """Refits each calibration of ``name`` with every export under ``results_dir`` whose record holds a latency
    measured on this host, beside the reference models already in it; returns (path, calibration, exports used).
    """
    device = _measurable(name, directory)
    exports = measured_exports(results_dir)
    if not exports:
        raise CostModelError(
            f"no exported model under {results_dir} has a measured host latency; export one with `nas export` first"
        )
    written = {}
    for kernels in device.kernel_sets:
        model = cost_model(name, kernels, directory)
        if model.calibration is None:
            raise CostModelError(
                f"the {kernels} table has no calibration yet; run `nas profile --device {name} --calibrate`"
            )
        kept = [p for p in model.calibration.points if not p.name.startswith(EXPORT_PREFIX)]
        added = [export_point(model, path, latency[kernels]) for path, latency in exports if kernels in latency]
        source = f"{model.calibration.provenance.get('source', 'reference models')}; {len(added)} exports"
        calibration = calibrate(model, kept + added, source)
        path = device.calibration_path(kernels, directory)
        save_calibration(calibration, path)
        written[kernels] = (path, calibration, len(added))
    return written


def measured_exports(results_dir: Path) -> list[tuple[Path, dict[str, float]]]:
    """(model file, measured ms per kernel set) of every export record under ``results_dir`` measured here."""
    found = []
    for verification in sorted(results_dir.glob("*/verification.json")):
        for record in read_records(verification).values():
            check, model = record.host_check, Path(record.model)
            if check is None or check.device != this_host().name or not model.is_file():
                continue
            if check.cpu not in (None, cpu_facts()):  # measured on another CPU: not this host's figure
                continue
            found.append((model, {kernels: figures.measured_ms for kernels, figures in check.latency.items()}))
    return found


def export_point(model: LayeredCostModel, path: Path, measured_ms: float) -> CalibrationPoint:
    """One exported model as a calibration point: its file's uncalibrated prediction beside its measured latency."""
    keys = file_keys(path.read_bytes())
    parts = model.parts_of_keys(keys.layers, keys.boundaries)
    return model.calibration_point(f"{EXPORT_PREFIX}{path}", parts, measured_ms)
