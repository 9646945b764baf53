"""The registry of runtimes (``base.Runtime``): what runs an exported model file on this machine.

LiteRT is the first (``litert``: kernel sets ``xnnpack`` and ``builtin``). A device runs on the runtime whose
kernel sets include all of its own (``runtime_for``); a device no registered runtime runs (a microcontroller's
CMSIS-NN kernels, an Edge TPU) is costed from its profile alone. A new runtime (TFLite Micro, the Vela compiler)
is one module here and its entry in ``RUNTIMES``.
"""

from __future__ import annotations

from collections.abc import Iterable

from latency_models.device import DeviceProfile
from latency_models.errors import CostModelError
from latency_models.runtimes.base import Runtime
from latency_models.runtimes.litert import LiteRT

RUNTIMES: tuple[Runtime, ...] = (LiteRT(),)


def runtime_named(name: str) -> Runtime:
    """The registered runtime called ``name``; an unknown name lists the known ones."""
    for runtime in RUNTIMES:
        if runtime.name == name:
            return runtime
    raise CostModelError(f"unknown runtime {name!r}; use {', '.join(r.name for r in RUNTIMES)}")


def runtime_running(kernel_sets: Iterable[str]) -> Runtime:
    """The registered runtime that offers every one of ``kernel_sets``."""
    wanted = tuple(kernel_sets)
    for runtime in RUNTIMES:
        if set(wanted) <= set(runtime.kernel_sets):
            return runtime
    offered = "; ".join(f"{r.name}: {', '.join(r.kernel_sets)}" for r in RUNTIMES)
    raise CostModelError(f"no runtime here runs the kernel sets {', '.join(wanted)} (offered: {offered})")


def runtime_for(device: DeviceProfile) -> Runtime:
    """The runtime that runs ``device``'s files here (its kernel sets name it)."""
    try:
        return runtime_running(device.kernel_sets)
    except CostModelError as err:
        raise CostModelError(f"device {device.name!r}: {err}") from None
