"""An evenly spaced grid of knob values in [0, 1] (keep ratios, sparsities), as a space's JSON gives it."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from search_spaces.errors import SpecError

MAX_GRID_VALUES = 10_000  # a finer grid is a continuous knob in disguise, and enumerating it would stall


@dataclass(frozen=True, kw_only=True)
class Grid:
    """Evenly spaced values ``low, low + step, ..., high`` (a single value when low == high)."""

    low: float
    high: float
    step: float

    def __post_init__(self) -> None:
        if not (0.0 <= self.low <= self.high <= 1.0) or not self.step > 0 or not math.isfinite(self.step):
            raise SpecError(f"a grid needs 0 <= low <= high <= 1 and step > 0, got {self}")
        count = (self.high - self.low) / self.step
        if count > MAX_GRID_VALUES:
            raise SpecError(
                f"a grid from {self.low} to {self.high} by {self.step} has {count:.3g} values; "
                f"use a step of at least {(self.high - self.low) / MAX_GRID_VALUES:.2g}"
            )
        if self.low != self.high and abs(count - round(count)) > 1e-6:
            raise SpecError(f"grid step {self.step} does not divide [{self.low}, {self.high}]")

    def values(self) -> tuple[float, ...]:
        """All values of the grid, rounded to 6 decimals."""
        count = round((self.high - self.low) / self.step)
        return tuple(round(self.low + i * self.step, 6) for i in range(count + 1))

    @classmethod
    def fixed(cls, value: float) -> Grid:
        """The one-value grid ``value``."""
        return cls(low=value, high=value, step=1.0)

    @classmethod
    def parse(cls, value: Any) -> Grid:
        """A grid from a number (fixed value) or a ``{"low", "high", "step"}`` object."""
        if isinstance(value, int | float) and not isinstance(value, bool):
            return cls.fixed(float(value))
        numbers = isinstance(value, dict) and all(
            isinstance(value.get(k), int | float) and not isinstance(value.get(k), bool)
            for k in ("low", "high", "step")
        )
        if isinstance(value, dict) and set(value) == {"low", "high", "step"} and numbers:
            return cls(low=float(value["low"]), high=float(value["high"]), step=float(value["step"]))
        raise SpecError(f"expected a number or {{'low', 'high', 'step'}}, got {value!r}")
