"""Which cost model serves a device: its profile plus whatever tables it has, and a summary for ``nas devices``.

A device with a measured table for the chosen kernel set gets a ``MeasuredCostModel``; a device without one gets
its analytic model (``AnalyticCostModel``, or ``OffloadCostModel`` for an accelerator beside a host), clearly
labelled analytic; a device with neither cannot be costed and says how to measure it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from latency_models.analytic import AnalyticCostModel
from latency_models.calibration import load_calibration
from latency_models.device import DEVICES_DIR, DeviceProfile, available_devices, load_device
from latency_models.errors import CostModelError
from latency_models.host import cpu_facts
from latency_models.layered import LayeredCostModel
from latency_models.measured import MeasuredCostModel
from latency_models.offload import OffloadCostModel
from latency_models.table import LatencyTable, load_table


@dataclass(frozen=True, kw_only=True)
class TableSummary:
    """One kernel set's table of a device: its kind and where it came from."""

    kernel_set: str
    kind: str
    entries: int
    detail: str


def table_summaries(device: DeviceProfile, directory: Path = DEVICES_DIR) -> list[TableSummary]:
    """The tables a device has, per kernel set (``none`` where it has no table yet)."""
    summaries = []
    for kernels in device.kernel_sets:
        path = device.table_path(kernels, directory)
        calibration = _calibration_note(device.calibration_path(kernels, directory))
        if path.exists():
            table = load_table(path)
            cpu = table.provenance.get("cpu", {})
            detail = (
                f"{table.provenance.get('date_utc', '?')}, {cpu.get('model', '?')}, "
                f"noise floor {table.provenance.get('noise_floor_pct', '?')}%{calibration}"
            )
            summaries.append(
                TableSummary(kernel_set=kernels, kind="measured", entries=len(table.entries), detail=detail)
            )
        elif device.analytic is not None:
            host = f", the rest on {device.offload['host_device']}" if device.offload else ""
            detail = f"from specifications{host}; {device.analytic.get('expected_error', '')}{calibration}"
            summaries.append(TableSummary(kernel_set=kernels, kind="analytic", entries=0, detail=detail))
        else:
            summaries.append(TableSummary(kernel_set=kernels, kind="none", entries=0, detail="not profiled"))
    return summaries


def _calibration_note(path: Path) -> str:
    if not path.exists():
        return ""
    calibration = load_calibration(path)
    return f"; calibrated on {len(calibration.points)} whole models (x{calibration.scale:.3f})"


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
    device's calibration when one was fitted (unless ``calibrated`` is False: the raw prior)."""
    device = load_device(name, directory)
    kernels = kernel_set or device.default_kernel_set
    if kernels not in device.kernel_sets:
        raise CostModelError(f"device {name!r} has no kernel set {kernels!r}; use {', '.join(device.kernel_sets)}")
    calibration_path = device.calibration_path(kernels, directory)
    calibration = load_calibration(calibration_path) if calibrated and calibration_path.exists() else None
    path = device.table_path(kernels, directory)
    if path.exists():
        return MeasuredCostModel(device, load_table(path), calibration)
    if device.offload is not None:
        return OffloadCostModel(device, cost_model(device.offload["host_device"], directory=directory), calibration)
    if device.analytic is not None:
        return AnalyticCostModel(device, calibration)
    raise CostModelError(
        f"device {name!r} has no {kernels} latency table and no analytic model; measure it with "
        f"`nas profile --device {name}`"
    )


__all__ = [
    "TableSummary",
    "available_devices",
    "cost_model",
    "cpu_difference",
    "host_tables_current",
    "load_device",
    "table_summaries",
]
