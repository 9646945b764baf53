"""The registry of cost-model kinds (``base.CostModelKind``), one folder each, in priority order.

A device's kernel set is costed by the first kind whose source it has: its measured table, else its accelerator
offload section, else its analytic section (``latency_models.registry.cost_model`` iterates ``KINDS``; ``nas
devices`` lists the same choice). A new kind is one folder here (its model, its spec, its ``CostModelKind``
subclass in ``kind.py``) and its place in ``KINDS``; every kind passes the cost-model contract
(``tests/latency_models/contract.py``) on every device it costs.
"""

from __future__ import annotations

from latency_models.errors import CostModelError
from latency_models.kinds.analytic.kind import AnalyticKind
from latency_models.kinds.base import CostModelKind
from latency_models.kinds.measured.kind import MeasuredKind
from latency_models.kinds.offload.kind import OffloadKind

# Measurements of the device beat any specification; an accelerator's offload section includes its analytic one.
KINDS: tuple[CostModelKind, ...] = (MeasuredKind(), OffloadKind(), AnalyticKind())


def kind_named(name: str) -> CostModelKind:
    """The registered kind called ``name``; an unknown name lists the known ones."""
    for kind in KINDS:
        if kind.name == name:
            return kind
    raise CostModelError(f"unknown cost-model kind {name!r}; use {', '.join(k.name for k in KINDS)}")
