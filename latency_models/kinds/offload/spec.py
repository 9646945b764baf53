"""The ``offload`` section of a device profile, parsed into a typed spec: an accelerator beside a host device.

``{"accelerates": [[weight bits, activation bits], ...], "host_device": "<device>", "transfer_bandwidth":
{"value": bytes per second, "source": "..."}, "rule": "..."}``: the precisions the accelerator runs, the device
that runs everything else, the link between them, and the documented rule that splits the graph.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from latency_models.errors import CostModelError
from latency_models.kinds.analytic.spec import Sourced

FIELDS = ("accelerates", "host_device", "transfer_bandwidth")


@dataclass(frozen=True, kw_only=True)
class OffloadSpec:
    """What an accelerator runs, which device runs the rest and how fast tensors cross the link."""

    accelerates: frozenset[tuple[int, int]]
    host_device: str
    link: Sourced  # bytes per second
    rule: str = ""


def offload_spec_from_dict(raw: Any, source: str) -> OffloadSpec:
    """Validates the ``offload`` section of a profile; a bad section is refused in one line naming the field."""
    if not isinstance(raw, dict):
        raise CostModelError(f"{source}: 'offload' must be an object")
    missing = [name for name in FIELDS if name not in raw]
    if missing:
        raise CostModelError(f"{source}: the offload section lacks {', '.join(missing)}")
    try:
        accelerates = frozenset((int(w), int(a)) for w, a in raw["accelerates"])
        bandwidth = raw["transfer_bandwidth"]
        link = Sourced(value=float(bandwidth["value"]), source=str(bandwidth["source"]))
    except (TypeError, ValueError, KeyError) as err:
        raise CostModelError(
            f"{source}: malformed offload section ({type(err).__name__}: {err}); 'accelerates' lists "
            '[weight bits, activation bits] pairs and \'transfer_bandwidth\' is {"value": ..., "source": ...}'
        ) from None
    if not link.value > 0 or not link.source.strip():
        raise CostModelError(f"{source}: the offload transfer_bandwidth needs a value > 0 and a source")
    return OffloadSpec(
        accelerates=accelerates, host_device=str(raw["host_device"]), link=link, rule=str(raw.get("rule", ""))
    )
