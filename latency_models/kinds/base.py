"""What a cost-model kind is: one way of costing a device, chosen by what the device's profile provides.

A kind reads one source: a section of the profile (``analytic``, ``offload``) or files beside it (the measured
tables, ``<device>.<kernel set>.csv``). It parses that source into its own typed spec (a bad source is refused
in one line naming the file and the field), says whether a device has it (``available``), builds the device's
cost model from it (``build``), and describes it for ``nas devices`` (``summary``). The registry
(``latency_models.kinds.KINDS``) lists the kinds in priority order: the first available kind costs the device.
A new kind (a vendor estimator such as Vela, say) is one folder in ``latency_models/kinds/`` with its model,
its spec and its ``CostModelKind`` subclass, plus its entry in ``KINDS``.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Generic, TypeVar

from latency_models.calibration import Calibration, load_calibration
from latency_models.device import DeviceProfile
from latency_models.layered import LayeredCostModel

Spec = TypeVar("Spec")
# Another device's cost model by name (its default kernel set, calibrated): an accelerator's host, for instance.
Resolve = Callable[[str], LayeredCostModel]


@dataclass(frozen=True, kw_only=True)
class TableSummary:
    """One kernel set's table of a device: its kind and where it came from."""

    kernel_set: str
    kind: str
    entries: int
    detail: str


class CostModelKind(abc.ABC, Generic[Spec]):
    """One kind of cost model (see the module docstring)."""

    name: ClassVar[str]
    # The profile section the kind reads (None: it reads files beside the profile instead, named in ``reads``).
    section: ClassVar[str | None]
    reads: ClassVar[str]

    @abc.abstractmethod
    def available(self, device: DeviceProfile, kernel_set: str, directory: Path) -> bool:
        """Whether ``device`` provides this kind's source for ``kernel_set`` (not whether it is valid)."""

    @abc.abstractmethod
    def spec(self, device: DeviceProfile, kernel_set: str, directory: Path) -> Spec:
        """The kind's typed spec, parsed from its source; raises ``CostModelError`` in one line when it is bad."""

    @abc.abstractmethod
    def build(
        self,
        device: DeviceProfile,
        kernel_set: str,
        directory: Path,
        *,
        calibration: Calibration | None,
        resolve: Resolve,
    ) -> LayeredCostModel:
        """The cost model of ``device`` for ``kernel_set``, corrected by ``calibration`` when one is given."""

    @abc.abstractmethod
    def summary(self, device: DeviceProfile, kernel_set: str, directory: Path) -> TableSummary:
        """What ``nas devices`` says about this kernel set of ``device`` when this kind costs it."""


def calibration_note(device: DeviceProfile, kernel_set: str, directory: Path) -> str:
    """``; calibrated on N whole models (xS)`` when the kernel set has a calibration, else empty."""
    path = device.calibration_path(kernel_set, directory)
    if not path.exists():
        return ""
    calibration = load_calibration(path)
    return f"; calibrated on {len(calibration.points)} whole models (x{calibration.scale:.3f})"
