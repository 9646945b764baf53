"""The ``analytic`` section of a device profile, parsed into a typed spec: every constant with its source.

Its constants are the analytic model's (``latency_models.kinds.analytic.model``): clock, sustained MACs per
cycle per compute precision, bandwidths, fixed cycle costs. Every constant is ``{"value": ..., "source": "..."}``
in the profile, and a profile without a source for one is refused.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from latency_models.errors import CostModelError

COMPUTE_PRECISIONS = ("float32", "int8", "int16x8")


@dataclass(frozen=True, kw_only=True)
class Sourced:
    """A specification constant and where it comes from."""

    value: Any
    source: str


@dataclass(frozen=True, kw_only=True)
class AnalyticSpec:
    """The constants of a device's analytic model (each with its source)."""

    clock_hz: Sourced
    macs_per_cycle: Sourced  # {compute precision: sustained MACs per cycle}
    activation_bandwidth: Sourced  # bytes per second where activations live
    weight_bandwidth: Sourced  # bytes per second where weights live
    op_overhead_cycles: Sourced
    invoke_overhead_cycles: Sourced
    convert_cycles_per_element: Sourced  # QUANTIZE / DEQUANTIZE / requantize
    expected_error: str

    def __post_init__(self) -> None:
        rates = self.macs_per_cycle.value
        if not isinstance(rates, dict) or set(rates) - set(COMPUTE_PRECISIONS) or not rates:
            raise CostModelError(f"macs_per_cycle needs rates for some of {', '.join(COMPUTE_PRECISIONS)}")
        for name in ("clock_hz", "activation_bandwidth", "weight_bandwidth"):
            if not float(getattr(self, name).value) > 0:
                raise CostModelError(f"analytic constant {name} must be > 0")


SPEC_FIELDS = (
    "clock_hz",
    "macs_per_cycle",
    "activation_bandwidth",
    "weight_bandwidth",
    "op_overhead_cycles",
    "invoke_overhead_cycles",
    "convert_cycles_per_element",
)


def spec_from_dict(raw: Any, source: str) -> AnalyticSpec:
    """Validates the ``analytic`` section of a profile: every constant is ``{"value": ..., "source": "..."}``."""
    if not isinstance(raw, dict):
        raise CostModelError(f"{source}: 'analytic' must be an object")
    missing = [name for name in (*SPEC_FIELDS, "expected_error") if name not in raw]
    if missing:
        raise CostModelError(f"{source}: the analytic model lacks {', '.join(missing)}")
    constants = {}
    for name in SPEC_FIELDS:
        entry = raw[name]
        if not isinstance(entry, dict) or "value" not in entry or not str(entry.get("source", "")).strip():
            raise CostModelError(f"{source}: analytic constant {name} needs a value and a source")
        constants[name] = Sourced(value=entry["value"], source=str(entry["source"]))
    return AnalyticSpec(**constants, expected_error=str(raw["expected_error"]))


def analytic_basis(spec_raw: dict[str, Any]) -> str:
    """What a calibration of an analytic model is fitted to: a digest of its constants (not of its error note)."""
    constants = {name: value for name, value in spec_raw.items() if name != "expected_error"}
    digest = hashlib.sha256(json.dumps(constants, sort_keys=True).encode()).hexdigest()[:12]
    return f"the analytic constants {digest}"
