"""What a candidate costs on a device, and how far each figure can be trusted.

Every figure carries its provenance:

- ``exact``: computed from the candidate with no model of the hardware (stored bytes, the memory plan);
- ``measured``: timed or read on the device itself (a table hit, a power counter);
- ``estimated``: the device vendor's own model of it, run on the exported file (Vela's performance estimate for
  an Ethos-U NPU), named by its ``source``: ``estimated by Vela 5.2.0 (<system config>, <memory mode>)``;
- ``fitted``: predicted by a model fitted to measurements of the device (a shape that was not measured);
- ``analytic``: derived from specifications only (datasheet clock, MACs per cycle, stated power).

A figure combined from several parts takes the weakest provenance among them, in that order, and a fitted
figure says whether it extrapolated beyond the measured range.
"""

from __future__ import annotations

import abc
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from latency_models.errors import CostModelError

if TYPE_CHECKING:
    from latency_models.device import DeviceProfile
    from search_spaces.graph import ModelGraph
    from search_spaces.space import Candidate

Provenance = Literal["exact", "measured", "estimated", "fitted", "analytic"]
PROVENANCES: tuple[Provenance, ...] = ("exact", "measured", "estimated", "fitted", "analytic")  # strongest first


def weakest(provenances: Iterable[Provenance]) -> Provenance:
    """The least trustworthy provenance among ``provenances`` (``exact`` when there are none)."""
    return max(provenances, key=PROVENANCES.index, default="exact")


@dataclass(frozen=True, kw_only=True)
class Figure:
    """A non-negative cost figure with its provenance; ``extrapolated`` marks a fit used outside its data;
    ``source`` names what gave it where the provenance alone does not (the estimator and its configuration)."""

    value: float
    provenance: Provenance
    extrapolated: bool = False
    source: str = ""

    def __post_init__(self) -> None:
        if self.provenance not in PROVENANCES:
            raise CostModelError(f"unknown provenance {self.provenance!r}; use one of {', '.join(PROVENANCES)}")
        if not math.isfinite(self.value) or self.value < 0:
            raise CostModelError(f"a cost figure must be finite and >= 0, got {self.value}")

    @property
    def label(self) -> str:
        """``"fitted, extrapolated"``-style text for tables and plot axes; with a source, ``"estimated by Vela
        5.2.0 (...)"`` (or ``"analytic (...)"`` for a sum whose weakest part was analytic)."""
        text: str = self.provenance
        if self.source:
            text = f"estimated by {self.source}" if self.provenance == "estimated" else f"{text} ({self.source})"
        return f"{text}, extrapolated" if self.extrapolated else text

    @property
    def kind_label(self) -> str:
        """The provenance alone (``"estimated"``, ``"fitted, extrapolated"``), for narrow columns."""
        return f"{self.provenance}, extrapolated" if self.extrapolated else self.provenance

    def __add__(self, other: Figure) -> Figure:
        return Figure(
            value=self.value + other.value,
            provenance=weakest((self.provenance, other.provenance)),
            extrapolated=self.extrapolated or other.extrapolated,
            source=self.source if self.source == other.source else "",
        )

    def scaled(self, factor: float, provenance: Provenance | None = None) -> Figure:
        """This figure times ``factor`` (for instance latency x power), optionally weakening its provenance (with
        another figure's provenance it drops its source: it is no longer the estimator's alone)."""
        kind = self.provenance if provenance is None else weakest((self.provenance, provenance))
        source = self.source if provenance is None else ""
        return Figure(value=self.value * factor, provenance=kind, extrapolated=self.extrapolated, source=source)


ZERO = Figure(value=0.0, provenance="exact")


def headline(label: str) -> str:
    """A figure's label without its parenthesized detail, for column headers and plot axes: ``"estimated by
    Vela 5.2.0"``, ``"analytic"``, ``"fitted, extrapolated"`` (records keep the whole label)."""
    return label.split(" (", 1)[0]


def total(figures: Iterable[Figure]) -> Figure:
    """Sum of figures (weakest provenance, extrapolated if any part is; their source if they share one)."""
    result: Figure | None = None
    for figure in figures:
        result = figure if result is None else result + figure
    return ZERO if result is None else result


@dataclass(frozen=True, kw_only=True)
class LayerCost:
    """One layer's (or one whole-model term's) share of the latency; ``group`` is what a calibration scales it
    with (the arithmetic of a layer: ``float32``, ``int8``, ``int16x8``; ``fixed`` for whole-model terms), ``op``
    the layer's op kind (what a learned correction tells layers apart by)."""

    name: str
    latency_ms: Figure
    note: str = ""
    group: str = "fixed"
    op: str = ""  # a layer's op kind (``LayerKey.op``); empty for whole-model terms


COST_FIGURES = ("latency_ms", "energy_mj", "flash_bytes", "ram_bytes")


@dataclass(frozen=True, kw_only=True)
class Cost:
    """A candidate's cost on one device: the four figures, and the latency broken down by layer and term."""

    device: str
    latency_ms: Figure
    energy_mj: Figure
    flash_bytes: Figure
    ram_bytes: Figure
    layers: tuple[LayerCost, ...] = ()

    def metrics(self) -> dict[str, float]:
        """The four figures by name (the keys objective terms read)."""
        return {name: getattr(self, name).value for name in COST_FIGURES}

    def provenance(self) -> dict[str, str]:
        """The provenance label of each figure by name."""
        return {name: getattr(self, name).label for name in COST_FIGURES}


class CostModel(abc.ABC):
    """How much a candidate costs on one device. Every implementation passes ``tests/latency_models/contract``."""

    @property
    @abc.abstractmethod
    def device(self) -> DeviceProfile:
        """The device this model describes."""

    @abc.abstractmethod
    def cost(self, graph: ModelGraph, candidate: Candidate) -> Cost:
        """The cost of ``candidate`` (a compression of ``graph``) on this device."""
