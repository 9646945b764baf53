"""The analytic kind: a device whose profile has an ``analytic`` section is costed from its specifications."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from latency_models.calibration import Calibration
from latency_models.device import DeviceProfile
from latency_models.kinds.analytic.model import AnalyticCostModel
from latency_models.kinds.analytic.spec import AnalyticSpec, spec_from_dict
from latency_models.kinds.base import CostModelKind, Resolve, TableSummary, calibration_note


class AnalyticKind(CostModelKind[AnalyticSpec]):
    """A roofline per op from datasheet constants, every figure labelled ``analytic``."""

    name: ClassVar[str] = "analytic"
    section: ClassVar[str | None] = "analytic"
    reads: ClassVar[str] = "the profile's 'analytic' section"

    def available(self, device: DeviceProfile, kernel_set: str, directory: Path) -> bool:
        """Whether the profile has an ``analytic`` section."""
        return device.analytic is not None

    def spec(self, device: DeviceProfile, kernel_set: str, directory: Path) -> AnalyticSpec:
        """The section's constants, each with its source."""
        return spec_from_dict(device.analytic, device.name)

    def build(
        self,
        device: DeviceProfile,
        kernel_set: str,
        directory: Path,
        *,
        calibration: Calibration | None,
        resolve: Resolve,
    ) -> AnalyticCostModel:
        """An ``AnalyticCostModel`` of the profile."""
        return AnalyticCostModel(device, calibration)

    def summary(self, device: DeviceProfile, kernel_set: str, directory: Path) -> TableSummary:
        """``from specifications`` and the error the profile says to expect."""
        expected = (device.analytic or {}).get("expected_error", "")  # listed even when the section is bad
        detail = f"from specifications; {expected}{calibration_note(device, kernel_set, directory)}"
        return TableSummary(kernel_set=kernel_set, kind=self.name, entries=0, detail=detail)
