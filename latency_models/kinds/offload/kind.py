"""The offload kind: an accelerator whose profile has an ``offload`` section (and an ``analytic`` one for the
accelerator itself) is costed as its ops up to the first it cannot run, then the host device's model."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from latency_models.calibration import Calibration
from latency_models.device import DeviceProfile
from latency_models.kinds.base import CostModelKind, Resolve, TableSummary, calibration_note
from latency_models.kinds.offload.model import OffloadCostModel
from latency_models.kinds.offload.spec import OffloadSpec, offload_spec_from_dict


class OffloadKind(CostModelKind[OffloadSpec]):
    """An accelerator (analytic) beside a host device (whatever kind costs the host)."""

    name: ClassVar[str] = "offload"
    section: ClassVar[str | None] = "offload"
    reads: ClassVar[str] = "the profile's 'offload' and 'analytic' sections"

    def available(self, device: DeviceProfile, kernel_set: str, directory: Path) -> bool:
        """Whether the profile has an ``offload`` section."""
        return device.offload is not None

    def spec(self, device: DeviceProfile, kernel_set: str, directory: Path) -> OffloadSpec:
        """What the accelerator runs, its host device and the link."""
        return offload_spec_from_dict(device.offload, device.name)

    def build(
        self,
        device: DeviceProfile,
        kernel_set: str,
        directory: Path,
        *,
        calibration: Calibration | None,
        resolve: Resolve,
    ) -> OffloadCostModel:
        """An ``OffloadCostModel`` with the host device's own cost model."""
        host = resolve(self.spec(device, kernel_set, directory).host_device)
        return OffloadCostModel(device, host, calibration)

    def summary(self, device: DeviceProfile, kernel_set: str, directory: Path) -> TableSummary:
        """Labelled ``analytic`` like its figures, naming the host that runs the rest."""
        host = (device.offload or {}).get("host_device", "?")
        expected = (device.analytic or {}).get("expected_error", "")
        detail = f"from specifications, the rest on {host}; {expected}{calibration_note(device, kernel_set, directory)}"
        return TableSummary(kernel_set=kernel_set, kind="analytic", entries=0, detail=detail)
