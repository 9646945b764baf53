"""The measured kind: a device with a latency table for the kernel set (``<device>.<kernel set>.csv`` and its
JSON sidecar, written by ``nas profile`` or imported from an on-device kit) is costed from it."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from latency_models.calibration import Calibration
from latency_models.device import DeviceProfile
from latency_models.kinds.base import CostModelKind, Resolve, TableSummary, calibration_note
from latency_models.kinds.measured.model import MeasuredCostModel
from latency_models.table import LatencyTable, load_table


class MeasuredKind(CostModelKind[LatencyTable]):
    """Costs from a measured table: table hits, fits between them, measured whole-model terms."""

    name: ClassVar[str] = "measured"
    section: ClassVar[str | None] = None
    reads: ClassVar[str] = "<device>.<kernel set>.csv"

    def available(self, device: DeviceProfile, kernel_set: str, directory: Path) -> bool:
        """Whether the kernel set's table file exists."""
        return device.table_path(kernel_set, directory).exists()

    def spec(self, device: DeviceProfile, kernel_set: str, directory: Path) -> LatencyTable:
        """The kernel set's table (its rows validated, its provenance read from the sidecar)."""
        return load_table(device.table_path(kernel_set, directory))

    def build(
        self,
        device: DeviceProfile,
        kernel_set: str,
        directory: Path,
        *,
        calibration: Calibration | None,
        resolve: Resolve,
    ) -> MeasuredCostModel:
        """A ``MeasuredCostModel`` of the kernel set's table."""
        return MeasuredCostModel(device, self.spec(device, kernel_set, directory), calibration)

    def summary(self, device: DeviceProfile, kernel_set: str, directory: Path) -> TableSummary:
        """The table's size, date, CPU and noise floor."""
        table = self.spec(device, kernel_set, directory)
        cpu = table.provenance.get("cpu", {})
        detail = (
            f"{table.provenance.get('date_utc', '?')}, {cpu.get('model', '?')}, "
            f"noise floor {table.provenance.get('noise_floor_pct', '?')}%"
            f"{calibration_note(device, kernel_set, directory)}"
        )
        return TableSummary(kernel_set=kernel_set, kind=self.name, entries=len(table.entries), detail=detail)
