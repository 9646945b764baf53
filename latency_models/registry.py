"""Which cost model serves a device: its profile plus whatever tables it has, and a summary for ``nas devices``.

The cost-model kinds (``latency_models.kinds.KINDS``) are tried in priority order and the first one the device
provides builds its model: a measured table for the chosen kernel set (``MeasuredCostModel``), else an
accelerator's offload section (``OffloadCostModel``), else the analytic section (``AnalyticCostModel``), the last
two clearly labelled analytic; a device with none cannot be costed and says how to measure it.
"""

from __future__ import annotations

from pathlib import Path

from latency_models.calibration import Calibration, load_calibration
from latency_models.correction import MIN_POINTS, learned_correction, load_measured_models, measured_models_path
from latency_models.device import DEVICES_DIR, DeviceProfile, available_devices, load_device
from latency_models.errors import CostModelError
from latency_models.host import cpu_facts
from latency_models.kinds import KINDS, CostModelKind
from latency_models.kinds.base import TableSummary
from latency_models.layered import LayeredCostModel
from latency_models.table import LatencyTable, load_table


def costing_kind(device: DeviceProfile, kernel_set: str, directory: Path = DEVICES_DIR) -> CostModelKind | None:
    """The first registered kind whose source ``device`` has for ``kernel_set`` (None: it cannot be costed)."""
    return next((kind for kind in KINDS if kind.available(device, kernel_set, directory)), None)


def table_summaries(device: DeviceProfile, directory: Path = DEVICES_DIR) -> list[TableSummary]:
    """The tables a device has, per kernel set (``none`` where it has no table yet)."""
    summaries = []
    for kernels in device.kernel_sets:
        kind = costing_kind(device, kernels, directory)
        if kind is None:
            summaries.append(TableSummary(kernel_set=kernels, kind="none", entries=0, detail="not profiled"))
        else:
            summaries.append(kind.summary(device, kernels, directory))
    return summaries


def cpu_difference(table: LatencyTable) -> str | None:
    """Why a host table may not describe this machine: its CPU model or kernel flags differ (None: same CPU)."""
    recorded, here = table.provenance.get("cpu", {}), cpu_facts()
    for field in ("model", "machine", "flags"):
        if recorded.get(field) != here.get(field):
            return f"its {field} was {recorded.get(field)!r}, this machine's is {here.get(field)!r}"
    return None


def host_tables_current(directory: Path = DEVICES_DIR) -> str | None:
    """None when every host table was measured on this CPU; otherwise what differs (or what is missing)."""
    device = load_device("host", directory)
    for kernels in device.kernel_sets:
        path = device.table_path(kernels, directory)
        if not path.exists():
            return f"there is no {kernels} table"
        difference = cpu_difference(load_table(path))
        if difference is not None:
            return f"the {kernels} table was measured on another CPU ({difference})"
    return None


def cost_model(
    name: str, kernel_set: str | None = None, directory: Path = DEVICES_DIR, *, calibrated: bool = True
) -> LayeredCostModel:
    """The cost model of device ``name`` for ``kernel_set`` (the device's default when None): its measured table
    where it has one, its analytic model otherwise (an accelerator's with its host's model), each with the
    device's calibration when one was fitted and the correction learned from models measured here when one earns
    its place (unless ``calibrated`` is False: the raw prior)."""
    device = load_device(name, directory)
    kernels = kernel_set or device.default_kernel_set
    if kernels not in device.kernel_sets:
        raise CostModelError(f"device {name!r} has no kernel set {kernels!r}; use {', '.join(device.kernel_sets)}")
    kind = costing_kind(device, kernels, directory)
    if kind is not None:
        calibration_path = device.calibration_path(kernels, directory)
        calibration = load_calibration(calibration_path) if calibrated and calibration_path.exists() else None
        model = kind.build(
            device,
            kernels,
            directory,
            calibration=calibration,
            resolve=lambda other: cost_model(other, directory=directory),  # an accelerator's host device
        )
        if calibrated:
            path = measured_models_path(name, kernels, model.calibration_basis(device, kernels))
            model.correction = learned_correction(path, model.calibrated_ms, predictor_key(calibration))
        return model
    raise CostModelError(
        f"device {name!r} has no {kernels} latency table and no analytic model; measure it with "
        f"`nas profile --device {name}`"
    )


def learned_summary(name: str, kernel_set: str, directory: Path = DEVICES_DIR) -> str | None:
    """One line on the models measured here for a device's kernel set and the correction learned from them (None
    when none was measured)."""
    model = cost_model(name, kernel_set, directory)
    path = measured_models_path(name, kernel_set, model.calibration_basis(model.device, kernel_set))
    if model.correction is not None:
        return f"{model.correction.describe()}, in use"
    count = len(load_measured_models(path))
    if not count:
        return None
    return (
        f"{count} models measured here, no correction in use (it needs {MIN_POINTS} and must beat the tables "
        "in cross-validation)"
    )


def predictor_key(calibration: Calibration | None) -> str:
    """What identifies the prediction a learned correction corrects: the calibration's fitted figures."""
    if calibration is None:
        return "uncalibrated"
    return f"{calibration.basis}|{calibration.scale}|{sorted(calibration.group_scales.items())}|{calibration.per_op_ms}"


__all__ = [
    "TableSummary",
    "available_devices",
    "cost_model",
    "costing_kind",
    "cpu_difference",
    "host_tables_current",
    "learned_summary",
    "load_device",
    "table_summaries",
]
