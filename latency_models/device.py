"""Device profiles: what a target runs, how fast, within which memory and at what power, with sources.

A profile is a JSON data file in ``latency_models/devices/<name>.json`` (never code, never pickle). Its
latency tables sit beside it as ``<name>.<kernel_set>.csv`` with a JSON sidecar of their own provenance.
Loading never touches the network.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from latency_models.errors import CostModelError
from search_spaces.graph import ModelGraph
from search_spaces.runtime_support import OPS, runs_correctly
from search_spaces.space import Candidate

DEVICES_DIR = Path(__file__).resolve().parent / "devices"
CPU_FALLBACK_SUFFIX = "+cpu"  # ``ethos_u55_128+cpu``: the profile with its CPU fallback precisions
MAX_CHANNEL_GRANULE = 256  # wider than any NPU's block of output channels: a larger figure is a typo


@dataclass(frozen=True, kw_only=True)
class PowerFigure:
    """A power figure in watts and where it comes from."""

    watts: float
    source: str

    def __post_init__(self) -> None:
        if not self.watts >= 0 or not self.source.strip():
            raise CostModelError(f"a power figure needs watts >= 0 and a source, got {self}")


@dataclass(frozen=True, kw_only=True)
class DeviceProfile:
    """A named deployment target.

    Attributes:
        name: the name ``--device`` takes.
        description: one line for ``nas devices``.
        runtime: the inference runtime and its version (``ai-edge-litert 2.3.0``, ``TFLite Micro + CMSIS-NN``).
        kernel_sets: the kernel sets the runtime offers here; the first is the default.
        threads: interpreter threads the figures assume.
        precisions: per op kind, the (weight bits, activation bits) pairs the device runs.
        ram_bytes / flash_bytes: memory limits (None: not a constraint on this device).
        active_power / idle_power: power while running inference and while idle, with sources.
        energy_convention: how energy is derived from power (which power, idle subtracted or not).
        analytic: the constants of the device's analytic model, each with its source
            (``latency_models.kinds.analytic``).
        offload: for an accelerator: the precisions it runs, the host device that runs the rest, the link's
            bandwidth and the rule that splits the graph (``latency_models.kinds.offload``).
        vela: for an Arm Ethos-U NPU: the configuration its files are compiled for by Vela (accelerator,
            system config, memory mode; ``latency_models.runtimes.vela.config``).
        cpu_fallback: for an accelerator beside a CPU that runs what it cannot (an Ethos-U system): the precisions
            that CPU adds, per op. The profile's own space stays the accelerator's; its ``NAME+cpu`` variant
            (``load_device``) searches both, the CPU's layers costed by the profile's float rate.
        channel_granule: the block of output channels the device computes together (1: none); a channel count
            short of a block costs about the whole block, so channel pruning keeps whole blocks
            (``search_spaces.space.SearchSpace.snapped_to``). Its source is ``provenance["channel_granule"]``.
        provenance: where the profile's facts come from.
        measurable_here: the device is this machine, so its latency can be measured here (profiling, the
            predicted-vs-measured check of every export); every other device is estimated or calibrated.
    """

    name: str
    description: str
    runtime: str
    kernel_sets: tuple[str, ...]
    threads: int
    precisions: dict[str, tuple[tuple[int, int], ...]]
    ram_bytes: int | None = None
    flash_bytes: int | None = None
    active_power: PowerFigure
    idle_power: PowerFigure | None = None
    energy_convention: str = "energy = active power x latency (idle power not subtracted)"
    analytic: dict[str, Any] | None = None
    offload: dict[str, Any] | None = None
    vela: dict[str, Any] | None = None
    cpu_fallback: dict[str, tuple[tuple[int, int], ...]] | None = None
    channel_granule: int = 1
    provenance: dict[str, Any] = field(default_factory=dict)
    measurable_here: bool = False

    def __post_init__(self) -> None:
        if not self.kernel_sets:
            raise CostModelError(f"device {self.name!r}: list at least one kernel set")
        if self.threads < 1:
            raise CostModelError(f"device {self.name!r}: threads must be >= 1")
        unknown = set(self.precisions) - set(OPS)
        if unknown:
            raise CostModelError(f"device {self.name!r}: unknown op kinds {sorted(unknown)}; use {', '.join(OPS)}")
        granule = self.channel_granule
        if isinstance(granule, bool) or not isinstance(granule, int) or not 1 <= granule <= MAX_CHANNEL_GRANULE:
            raise CostModelError(
                f"device {self.name!r}: channel_granule must be a whole number of channels from 1 (no granule) to "
                f"{MAX_CHANNEL_GRANULE}, got {granule!r}"
            )

    @property
    def default_kernel_set(self) -> str:
        """The kernel set figures refer to unless another is asked for."""
        return self.kernel_sets[0]

    def runs(self, op: str, weight_bits: int, activation_bits: int) -> bool:
        """Whether this device runs ``op`` at this precision (and the exporter emits it correctly)."""
        allowed = self.precisions.get(op, ())
        return (weight_bits, activation_bits) in allowed and runs_correctly(op, weight_bits, activation_bits)

    def unrunnable(self, graph: ModelGraph, candidate: Candidate) -> list[str]:
        """The layers of ``candidate`` whose precision this device does not run, as ``layer wXaY``."""
        policies = [(layer, candidate.policy(layer.name)) for layer in graph.compressible]
        return [
            f"{layer.name} w{policy.weight_bits}a{policy.activation_bits}"
            for layer, policy in policies
            if not self.runs(layer.runtime_op, policy.weight_bits, policy.activation_bits)
        ]

    def table_path(self, kernel_set: str, directory: Path = DEVICES_DIR) -> Path:
        """Where this device's latency table for ``kernel_set`` lives."""
        return directory / f"{self.name}.{kernel_set}.csv"

    def calibration_path(self, kernel_set: str, directory: Path = DEVICES_DIR) -> Path:
        """Where the whole-model calibration of this device's ``kernel_set`` table lives."""
        return directory / f"{self.name}.{kernel_set}.calibration.json"

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (inverse of ``profile_from_dict``)."""
        return {
            "name": self.name,
            "description": self.description,
            "runtime": self.runtime,
            "kernel_sets": list(self.kernel_sets),
            "threads": self.threads,
            "precisions": {op: [list(p) for p in pairs] for op, pairs in self.precisions.items()},
            "ram_bytes": self.ram_bytes,
            "flash_bytes": self.flash_bytes,
            "active_power": vars(self.active_power),
            "idle_power": None if self.idle_power is None else vars(self.idle_power),
            "energy_convention": self.energy_convention,
            **({"analytic": self.analytic} if self.analytic is not None else {}),
            **({"offload": self.offload} if self.offload is not None else {}),
            **({"vela": self.vela} if self.vela is not None else {}),
            **(
                {"cpu_fallback": {op: [list(p) for p in pairs] for op, pairs in self.cpu_fallback.items()}}
                if self.cpu_fallback is not None
                else {}
            ),
            **({"channel_granule": self.channel_granule} if self.channel_granule != 1 else {}),
            "provenance": self.provenance,
            **({"measurable_here": True} if self.measurable_here else {}),
        }


PROFILE_KEYS = {
    "name",
    "measurable_here",
    "description",
    "runtime",
    "kernel_sets",
    "threads",
    "precisions",
    "ram_bytes",
    "flash_bytes",
    "active_power",
    "idle_power",
    "energy_convention",
    "analytic",
    "offload",
    "vela",
    "cpu_fallback",
    "channel_granule",
    "provenance",
}


def profile_from_dict(raw: Any, source: str = "profile") -> DeviceProfile:
    """Validates a profile's JSON form; every problem names the file and the key."""
    if not isinstance(raw, dict):
        raise CostModelError(f"{source}: a device profile must be a JSON object")
    unknown = set(raw) - PROFILE_KEYS
    missing = {"name", "description", "runtime", "kernel_sets", "threads", "precisions", "active_power"} - set(raw)
    if unknown or missing:
        raise CostModelError(f"{source}: unknown keys {sorted(unknown)}, missing keys {sorted(missing)}")
    try:
        return DeviceProfile(
            name=str(raw["name"]),
            description=str(raw["description"]),
            runtime=str(raw["runtime"]),
            kernel_sets=tuple(str(k) for k in raw["kernel_sets"]),
            threads=int(raw["threads"]),
            precisions=_precisions(raw["precisions"]),
            ram_bytes=None if raw.get("ram_bytes") is None else int(raw["ram_bytes"]),
            flash_bytes=None if raw.get("flash_bytes") is None else int(raw["flash_bytes"]),
            active_power=PowerFigure(**raw["active_power"]),
            idle_power=None if raw.get("idle_power") is None else PowerFigure(**raw["idle_power"]),
            energy_convention=str(raw.get("energy_convention", DeviceProfile.energy_convention)),
            analytic=None if raw.get("analytic") is None else dict(raw["analytic"]),
            offload=None if raw.get("offload") is None else dict(raw["offload"]),
            vela=None if raw.get("vela") is None else dict(raw["vela"]),
            cpu_fallback=None if raw.get("cpu_fallback") is None else _precisions(raw["cpu_fallback"]),
            channel_granule=raw.get("channel_granule", 1),  # checked as given: 8.5 or "8" is refused, not cast
            provenance=dict(raw.get("provenance", {})),
            measurable_here=bool(raw.get("measurable_here", False)),
        )
    except (TypeError, ValueError, AttributeError) as err:
        raise CostModelError(f"{source}: malformed device profile ({err})") from None


def _precisions(raw: Any) -> dict[str, tuple[tuple[int, int], ...]]:
    return {str(op): tuple((int(w), int(a)) for w, a in pairs) for op, pairs in raw.items()}


def available_devices(directory: Path = DEVICES_DIR) -> list[str]:
    """Names of the profiles in ``directory``."""
    return sorted(path.stem for path in directory.glob("*.json") if "." not in path.stem)


def this_host(directory: Path = DEVICES_DIR) -> DeviceProfile:
    """The profile of this machine (``measurable_here``): the one device whose latency can be measured here."""
    hosts = [d for d in (load_device(n, directory) for n in available_devices(directory)) if d.measurable_here]
    if len(hosts) != 1:
        names = ", ".join(d.name for d in hosts) or "none"
        raise CostModelError(f"exactly one device profile must be measurable here (measurable_here), found {names}")
    return hosts[0]


def load_device(name: str, directory: Path = DEVICES_DIR) -> DeviceProfile:
    """The profile called ``name``; an unknown name lists the known ones. ``NAME+cpu`` is profile NAME with
    its ``cpu_fallback`` precisions added: what its accelerator cannot run falls back to the system's CPU."""
    if name.endswith(CPU_FALLBACK_SUFFIX):
        return with_cpu_fallback(load_device(name.removesuffix(CPU_FALLBACK_SUFFIX), directory))
    path = directory / f"{name}.json"
    if "/" in name or "\\" in name or not path.exists():
        known = ", ".join(available_devices(directory)) or "none"
        raise CostModelError(f"unknown device {name!r}; known devices: {known} (`nas devices` lists them)")
    try:
        raw = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise CostModelError(f"device profile {path.name} is not valid JSON ({err}); restore it from git") from None
    profile = profile_from_dict(raw, path.name)
    if profile.name != name:
        raise CostModelError(f"{path.name} names device {profile.name!r}; the file name and the name must agree")
    return profile


def with_cpu_fallback(device: DeviceProfile) -> DeviceProfile:
    """``device``'s ``+cpu`` variant: its precisions and its ``cpu_fallback`` ones, under the variant's name."""
    if device.cpu_fallback is None:
        offering = ", ".join(n for n in available_devices() if load_device(n).cpu_fallback) or "none"
        raise CostModelError(
            f"device {device.name!r} has no CPU fallback (an accelerator's CPU running what it cannot); "
            f"devices with one: {offering}"
        )
    precisions = dict(device.precisions)
    for op, pairs in device.cpu_fallback.items():
        precisions[op] = tuple(dict.fromkeys((*precisions.get(op, ()), *pairs)))
    return replace(
        device,
        name=device.name + CPU_FALLBACK_SUFFIX,
        description=f"{device.description}; what the NPU cannot run falls back to the CPU",
        precisions=precisions,
    )
