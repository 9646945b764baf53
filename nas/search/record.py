"""A finished trial's record, typed: what a trial stores on its Optuna trial and what later commands read.

The record is one user attribute (``metrics``; with SQLite every attribute is one commit). This module is the
only place that knows its keys: the trial writes ``TrialRecord.to_attr()``, and tables, re-scoring, exports
and reports read ``TrialRecord.of(trial)``. The JSON form is unchanged from the dicts studies already hold, and
keys that older studies lack (recovery, parity) read as absent.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import optuna

from nas.errors import ConfigError

METRICS_ATTR = "metrics"
_STRUCTURED = {
    "predicted",
    "val_per_class",
    "finetuned",
    "recovery",
    "calibrated_accuracy",
    "feasible",
    "parity",
    "infeasible_reason",
    "seconds",
    "layer_sizes",
    "device",
    "provenance",
    "latency_us",
}


@dataclass(frozen=True, kw_only=True)
class ParityRecord:
    """How the trial's export agreed with its JAX model in LiteRT on the validation split."""

    passed: bool
    agreement: dict[str, float]  # per kernel set: top-1 agreement with JAX
    accuracy: dict[str, float]  # per kernel set: validation accuracy in the runtime
    jax_accuracy: float
    export_error: str = ""  # why the candidate could not be exported at all (then nothing ran)

    def to_attr(self) -> dict[str, Any]:
        """The JSON form stored on the trial."""
        return {
            "passed": self.passed,
            "agreement": self.agreement,
            "accuracy": self.accuracy,
            "jax_accuracy": self.jax_accuracy,
            **({"export_error": self.export_error} if self.export_error else {}),
        }


@dataclass(frozen=True, kw_only=True)
class TrialRecord:
    """Everything a finished trial measured, with where its device figures come from."""

    figures: dict[str, float]  # what objective terms and budgets read: val_accuracy, stored_bytes, latency_ms, ...
    feasible: bool
    finetuned: bool
    seconds: dict[str, float]
    val_per_class: tuple[float | None, ...] = ()
    layer_sizes: dict[str, dict[str, int]] = field(default_factory=dict)
    recovery: str | None = None  # "fine-tuned", or "calibrated" when calibration alone scored higher
    calibrated_accuracy: float | None = None
    device: str | None = None  # the study's device, when it costed device figures
    provenance: dict[str, str] = field(default_factory=dict)  # per device figure: measured, fitted, analytic...
    latency_us: dict[str, float] = field(default_factory=dict)  # per layer and whole-model term
    parity: ParityRecord | None = None
    infeasible_reason: str | None = None
    # The device figures the cost model predicted, where the device's own toolchain then costed the exported file
    # (Vela for an Ethos-U NPU) and its figures replaced these in ``figures``.
    predicted: dict[str, float] = field(default_factory=dict)

    @property
    def diverged(self) -> bool:
        """Whether its export diverged from its JAX model in LiteRT (infeasible on every device)."""
        return self.parity is not None and not self.parity.passed

    def to_attr(self) -> dict[str, Any]:
        """The JSON form stored as the trial's ``metrics`` user attribute."""
        optional = {
            "device": self.device,
            "provenance": self.provenance or None,
            "latency_us": self.latency_us or None,
            "parity": None if self.parity is None else self.parity.to_attr(),
            "infeasible_reason": self.infeasible_reason,
            "predicted": self.predicted or None,
        }
        return {
            **self.figures,
            "val_per_class": list(self.val_per_class),
            "finetuned": self.finetuned,
            "recovery": self.recovery,
            "calibrated_accuracy": self.calibrated_accuracy,
            "feasible": self.feasible,
            "seconds": self.seconds,
            "layer_sizes": self.layer_sizes,
            **{key: value for key, value in optional.items() if value is not None},
        }

    @classmethod
    def from_attr(cls, raw: Any, *, trial_number: int | None = None) -> TrialRecord:
        """Inverse of ``to_attr``; a record that is not one is refused in one line naming what is wrong."""
        where = "a trial record" if trial_number is None else f"trial {trial_number}'s record"
        if not isinstance(raw, dict):
            raise ConfigError(f"{where} is not a JSON object (got {type(raw).__name__}); run the trial again")
        missing = [key for key in ("val_accuracy", "feasible", "finetuned") if key not in raw]
        if missing:
            raise ConfigError(f"{where} lacks {', '.join(missing)}; run the trial again")
        figures = {
            key: float(value)
            for key, value in raw.items()
            if key not in _STRUCTURED and isinstance(value, int | float) and not isinstance(value, bool)
        }
        parity = raw.get("parity")
        return cls(
            figures=figures,
            feasible=bool(raw["feasible"]),
            finetuned=bool(raw["finetuned"]),
            seconds=dict(raw.get("seconds", {})),
            val_per_class=tuple(raw.get("val_per_class", ())),
            layer_sizes=dict(raw.get("layer_sizes", {})),
            recovery=raw.get("recovery"),
            calibrated_accuracy=raw.get("calibrated_accuracy"),
            device=raw.get("device"),
            provenance=dict(raw.get("provenance", {})),
            latency_us=dict(raw.get("latency_us", {})),
            parity=None if not parity else _parity(parity, where),
            infeasible_reason=raw.get("infeasible_reason"),
            predicted={key: float(value) for key, value in dict(raw.get("predicted", {})).items()},
        )

    @classmethod
    def of(cls, trial: optuna.trial.FrozenTrial) -> TrialRecord | None:
        """The trial's record, or None when it recorded none (running, failed before scoring, or pruned)."""
        raw = trial.user_attrs.get(METRICS_ATTR)
        return None if raw is None else cls.from_attr(raw, trial_number=trial.number)


def _parity(raw: Any, where: str) -> ParityRecord:
    """The parity part of a record; one that is not one is refused naming the trial."""
    if not isinstance(raw, dict) or "passed" not in raw:
        raise ConfigError(f"{where} has a parity entry without 'passed'; run the trial again")
    return ParityRecord(
        passed=bool(raw["passed"]),
        agreement=dict(raw.get("agreement", {})),
        accuracy=dict(raw.get("accuracy", {})),
        jax_accuracy=float(raw.get("jax_accuracy", float("nan"))),
        export_error=str(raw.get("export_error", "")),
    )
