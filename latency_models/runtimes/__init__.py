"""The registry of runtimes (``base.Runtime``): what runs an exported model file on this machine.

LiteRT (``litert``: kernel sets ``xnnpack`` and ``builtin``), TFLite Micro (``tflite_micro``: its reference
kernels) and the Vela compiler (``vela``: the Ethos-U55 and Ethos-U65 NPUs, which it estimates but cannot run). A
device runs on the runtime whose kernel sets include all of its own (``runtime_for``); a device no registered
runtime runs (a microcontroller's CMSIS-NN kernels, an Edge TPU) is costed from its profile alone, and where a
runtime stands in for its kernels (TFLite Micro for a microcontroller, ``runtime_standing_in``) its exports are
also run there for parity and memory, and its allocation gives the device's RAM figure (``memory_runtime``). A new
runtime is one module or package here and its entry in ``RUNTIMES``.
"""

from __future__ import annotations

from collections.abc import Iterable

from latency_models.device import DeviceProfile
from latency_models.errors import CostModelError
from latency_models.runtimes.base import Runtime
from latency_models.runtimes.litert import LiteRT
from latency_models.runtimes.tflite_micro import TFLiteMicro
from latency_models.runtimes.vela import Vela

RUNTIMES: tuple[Runtime, ...] = (LiteRT(), TFLiteMicro(), Vela())


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


def runtime_estimating(device: DeviceProfile) -> Runtime | None:
    """The runtime that estimates ``device``'s cost by compiling its files (Vela for an Ethos-U NPU); None where
    the device's runtime does not, or no runtime here runs it."""
    runtime = next((r for r in RUNTIMES if set(device.kernel_sets) <= set(r.kernel_sets)), None)
    return runtime if runtime is not None and runtime.can("estimate") else None


def runtime_standing_in(device: DeviceProfile) -> Runtime | None:
    """The runtime that runs ``device``'s files here with kernels standing in for the device's own (for parity
    and memory, never latency); None where the device's own runtime runs here, or nothing stands in."""
    if any(set(device.kernel_sets) <= set(runtime.kernel_sets) for runtime in RUNTIMES):
        return None
    return next((r for r in RUNTIMES if set(device.kernel_sets) <= set(r.stands_in_for)), None)


def memory_runtime(device: DeviceProfile) -> Runtime | None:
    """The runtime whose allocation gives ``device``'s RAM figure (``Runtime.ram_figure``): the one that runs
    its files here, else the one standing in for its kernels (TFLite Micro for a microcontroller); None where
    neither (LiteRT's layout rules then)."""
    running = next((r for r in RUNTIMES if set(device.kernel_sets) <= set(r.kernel_sets)), None)
    return running if running is not None else runtime_standing_in(device)


def runnable_precisions(device: DeviceProfile) -> dict[str, tuple[tuple[int, int], ...]]:
    """The device's precisions per op, less those the runtime standing in for it has no kernel for: a
    microcontroller profile cannot offer the search a precision TFLite Micro cannot prepare."""
    standing_in = runtime_standing_in(device)
    if standing_in is None:
        return dict(device.precisions)
    return {
        op: tuple(pair for pair in pairs if standing_in.support(op, *pair).runs)
        for op, pairs in device.precisions.items()
    }
