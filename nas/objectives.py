"""Objective terms: named figures of a trial's result, each with a direction and a provenance.

A study optimizes a list of term names (``accuracy`` plus one or more cost terms). Device latency and energy
terms plug in here as more entries of ``OBJECTIVE_TERMS``; nothing else in the search changes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass


@dataclass(frozen=True, kw_only=True)
class ObjectiveTerm:
    """One objective: how to read it from a trial's metrics, which way is better, and how it was obtained."""

    name: str
    direction: str
    label: str
    provenance: str
    read: Callable[[Mapping[str, float]], float]


OBJECTIVE_TERMS: dict[str, ObjectiveTerm] = {
    "accuracy": ObjectiveTerm(
        name="accuracy",
        direction="maximize",
        label="validation accuracy",
        provenance="measured",
        read=lambda m: m["val_accuracy"],
    ),
    "stored_bytes": ObjectiveTerm(
        name="stored_bytes",
        direction="minimize",
        label="stored size (KB)",
        provenance="exact",
        read=lambda m: m["stored_bytes"],
    ),
    "compressed_bytes": ObjectiveTerm(
        name="compressed_bytes",
        direction="minimize",
        label="entropy-coded size (KB)",
        provenance="exact",
        read=lambda m: m["compressed_bytes"],
    ),
}
SIZE_TERMS = ("stored_bytes", "compressed_bytes")


def directions(names: tuple[str, ...]) -> list[str]:
    """Optuna study directions for the named terms."""
    return [OBJECTIVE_TERMS[name].direction for name in names]


def objective_values(names: tuple[str, ...], metrics: Mapping[str, float]) -> tuple[float, ...]:
    """The values a trial returns to Optuna, in the order of ``names``."""
    return tuple(float(OBJECTIVE_TERMS[name].read(metrics)) for name in names)
