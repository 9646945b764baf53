"""Objective terms: the named figures a study can optimize or bound, each with a direction, a unit and a provenance.

This registry is the one place that knows which figures exist. Studies, budgets, the trials table, the
progress bar, plots and the knee point all iterate over it, so a new cost term (device latency, energy, RAM,
flash) is one more entry here plus the code that computes its metric.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from nas.errors import ConfigError

Direction = Literal["maximize", "minimize"]


@dataclass(frozen=True, kw_only=True)
class ObjectiveTerm:
    """One figure of a trial: where it is read from, which way is better, how it is shown and bounded.

    Attributes:
        name: the term's name in configs, flags and tables.
        metric: the key of the trial's metrics that holds the raw value (bytes, ms, mJ, a fraction).
        direction: ``"maximize"`` or ``"minimize"``.
        label: axis and column label, without the unit.
        unit: unit of the displayed value.
        scale: displayed value = raw value x ``scale`` (bytes -> KB is 1e-3).
        provenance: how the figure is obtained when a trial does not record its own (measured / exact / ...).
        budget_flag: the ``nas search`` option that bounds it (``--max-...``), if any.
        budget_unit / budget_scale: the unit of that option and its scale from raw (default: the displayed ones).
    """

    name: str
    metric: str
    direction: Direction
    label: str
    unit: str
    scale: float = 1.0
    provenance: str
    budget_flag: str | None = None
    budget_unit: str | None = None
    budget_scale: float | None = None

    @property
    def axis_label(self) -> str:
        """Label with its unit, for plots and tables."""
        return f"{self.label} ({self.unit})" if self.unit else self.label

    def display(self, raw: float) -> float:
        """The raw value in displayed units."""
        return raw * self.scale

    def to_raw(self, shown: float) -> float:
        """A budget flag's value (in the budget unit) in raw units."""
        return shown / (self.scale if self.budget_scale is None else self.budget_scale)

    def budget_display(self, raw: float) -> float:
        """A raw value in the budget flag's unit."""
        return raw * (self.scale if self.budget_scale is None else self.budget_scale)

    def format(self, raw: float) -> str:
        """``"12.3 KB"``-style text of a raw value."""
        if self.unit == "":
            return f"{raw:.3f}"
        return f"{self.display(raw):.4g} {self.unit}"

    def better(self, a: float, b: float) -> bool:
        """Whether ``a`` is strictly better than ``b``."""
        return a > b if self.direction == "maximize" else a < b


ACCURACY = "accuracy"

OBJECTIVE_TERMS: dict[str, ObjectiveTerm] = {
    term.name: term
    for term in (
        ObjectiveTerm(
            name=ACCURACY,
            metric="val_accuracy",
            direction="maximize",
            label="validation accuracy",
            unit="",
            provenance="measured",
        ),
        ObjectiveTerm(
            name="stored_bytes",
            metric="stored_bytes",
            direction="minimize",
            label="stored size",
            unit="KB",
            scale=1e-3,
            provenance="exact",
            budget_flag="--max-size-kb",
        ),
        ObjectiveTerm(
            name="compressed_bytes",
            metric="compressed_bytes",
            direction="minimize",
            label="entropy-coded size",
            unit="KB",
            scale=1e-3,
            provenance="exact",
            budget_flag="--max-size-kb",
        ),
        ObjectiveTerm(
            name="latency_ms",
            metric="latency_ms",
            direction="minimize",
            label="latency on the device",
            unit="us",
            scale=1e3,
            provenance="measured or fitted (device table)",
            budget_flag="--max-latency-ms",
            budget_unit="ms",
            budget_scale=1.0,
        ),
        ObjectiveTerm(
            name="energy_mj",
            metric="energy_mj",
            direction="minimize",
            label="energy per inference",
            unit="uJ",
            scale=1e3,
            provenance="analytic (power x latency) unless a power counter measured it",
            budget_flag="--max-energy-mj",
            budget_unit="mJ",
            budget_scale=1.0,
        ),
        ObjectiveTerm(
            name="ram_bytes",
            metric="ram_bytes",
            direction="minimize",
            label="RAM (tensor arena + load-time copies)",
            unit="KB",
            scale=1e-3,
            provenance="exact (the runtime's memory plan)",
            budget_flag="--max-ram-kb",
        ),
        ObjectiveTerm(
            name="flash_bytes",
            metric="flash_bytes",
            direction="minimize",
            label=".tflite file size",
            unit="KB",
            scale=1e-3,
            provenance="fitted (exact constants + fitted graph overhead)",
            budget_flag="--max-flash-kb",
        ),
        ObjectiveTerm(
            name="class_drop",
            metric="max_class_drop",
            direction="minimize",
            label="worst-class accuracy drop (validation)",
            unit="",
            provenance="measured (validation split, against the uncompressed baseline)",
            budget_flag="--max-class-drop",
            budget_unit="fraction",
        ),
        ObjectiveTerm(
            name="robust_drop",
            metric="robust_drop",
            direction="minimize",
            label="accuracy lost on degraded inputs (validation)",
            unit="",
            provenance="measured (validation split, seeded corruptions of nas.training.robustness)",
            budget_flag="--max-robust-drop",
            budget_unit="fraction",
        ),
    )
}
AFTER_TRAINING_TERMS = (
    "class_drop",
    "robust_drop",
    # The entropy of the fine-tuned weights, which fine-tuning changes: an estimate from the baseline's weights
    # refused candidates that met the budget once trained.
    "compressed_bytes",
)  # known only once a candidate is fine-tuned: never a reason to skip training
SIZE_TERMS = ("stored_bytes", "compressed_bytes")
DEVICE_TERMS = ("latency_ms", "energy_mj", "ram_bytes", "flash_bytes")  # figures of a device's cost model
SPARSITY_TERMS = ("compressed_bytes",)  # the only figure unstructured sparsity improves (zeros are stored densely)


def term(name: str) -> ObjectiveTerm:
    """The term called ``name``; an unknown name lists the known ones."""
    try:
        return OBJECTIVE_TERMS[name]
    except KeyError:
        raise ConfigError(f"unknown objective {name!r}; use {', '.join(OBJECTIVE_TERMS)}") from None


def cost_terms(names: Sequence[str]) -> tuple[str, ...]:
    """The cost terms among ``names`` (every term but accuracy), in order."""
    return tuple(name for name in names if name != ACCURACY)


def directions(names: Sequence[str]) -> list[Direction]:
    """Optuna study directions for the named terms."""
    return [term(name).direction for name in names]


def objective_values(names: Sequence[str], metrics: Mapping[str, float]) -> tuple[float, ...]:
    """The values a trial returns to Optuna, in the order of ``names``."""
    return tuple(float(metrics[term(name).metric]) for name in names)


def budget_violations(budgets: Mapping[str, float], metrics: Mapping[str, float]) -> dict[str, float]:
    """Per budgeted term, how far the metric exceeds its limit as a fraction of the limit (<= 0: within).

    Relative violations keep terms of different units comparable inside Optuna's constraint handling.
    """
    return {name: (float(metrics[term(name).metric]) - limit) / limit for name, limit in sorted(budgets.items())}
