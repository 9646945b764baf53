"""Running an exported model in its runtime (``latency_models.runtimes``; LiteRT unless told otherwise):
predictions, agreement with JAX, latency.

Every kernel set of the runtime is checked, because they disagree in practice: for LiteRT the default (XNNPACK
delegate where it applies) and the builtin kernels only. Latency is measured on this host (batch 1) with the
runtime's one timing protocol, the cost tables' own, once per file and kernel set, and labelled as measured; it
says nothing about another device.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from latency_models.runtimes import runtime_named
from latency_models.runtimes.base import Runtime
from latency_models.table import Measurement

AGREEMENT_MINIMUM = 0.99
# k flipped predictions move accuracy by at most k/n, and the agreement rule admits 1% of flips: a tighter
# accuracy bar would judge an export by the direction its admitted flips happen to take, which on a split of a
# few hundred examples is chance (a trial that passed on validation then failed on test by two images of 359).
ACCURACY_TOLERANCE = 1 - AGREEMENT_MINIMUM


@dataclass(frozen=True, kw_only=True)
class Reference:
    """What the JAX model says about the test split: its outputs, hence its top classes (ties included)."""

    logits: np.ndarray
    labels: np.ndarray

    @property
    def top(self) -> np.ndarray:
        """Boolean (examples x classes): the classes tied for the largest output. Quantized logits tie often,
        and which of two equal outputs argmax picks is arbitrary, so a tie is not a disagreement."""
        return self.logits >= self.logits.max(axis=1, keepdims=True)

    @property
    def accuracy_bounds(self) -> tuple[float, float]:
        """JAX accuracy with every tie resolved against, and in favour of, the true label."""
        top = self.top
        hit = top[np.arange(len(self.labels)), self.labels]
        return float((hit & (top.sum(1) == 1)).mean()), float(hit.mean())

    def agreement(self, predictions: np.ndarray) -> float:
        """Share of examples whose exported prediction is (one of) the JAX top classes."""
        return float(self.top[np.arange(len(predictions)), predictions].mean())


@dataclass(frozen=True, kw_only=True)
class AccuracyBar:
    """The accuracy interval an exported model is judged against, and where it comes from."""

    low: float
    high: float
    source: str
    tolerance: float = ACCURACY_TOLERANCE

    def admits(self, accuracy: float) -> bool:
        """Whether ``accuracy`` lies within the interval, widened by the tolerance."""
        return self.low - self.tolerance <= accuracy <= self.high + self.tolerance


def reference_bar(reference: Reference) -> AccuracyBar:
    """The JAX model's accuracy interval (ties resolved against and in favour of the label)."""
    low, high = reference.accuracy_bounds
    return AccuracyBar(low=low, high=high, source="JAX fake-quant accuracy of the same candidate")


def minimum_bar(minimum: float, source: str) -> AccuracyBar:
    """A one-sided bar: at least ``minimum`` (no tolerance)."""
    return AccuracyBar(low=minimum, high=1.0, source=source, tolerance=0.0)


@dataclass(frozen=True, kw_only=True)
class KernelCheck:
    """One kernel set's run of an exported model on a split (the test split for an export, validation for a trial).

    ``agreement`` is top-1 agreement with the JAX reference (None without one); ``kernel_agreement`` is
    agreement with the first kernel set's predictions (None for the first); ``bar`` is what the accuracy was
    judged against (None: accuracy was not judged, so the check cannot pass).
    """

    delegate: str
    accuracy: float
    agreement: float | None
    kernel_agreement: float | None
    bar: AccuracyBar | None
    # Per-invoke latency by the cost tables' own protocol, the one figure measured per file and kernel set (None
    # when the check was not timed: a trial's parity check times nothing).
    latency: Measurement | None

    @property
    def passed(self) -> bool:
        """Accuracy admitted by the bar, and top-1 agreement >= 99% with JAX (with the other kernels without JAX)."""
        if self.bar is None or not self.bar.admits(self.accuracy):
            return False
        agreement = self.agreement if self.agreement is not None else self.kernel_agreement
        return agreement is None or agreement >= AGREEMENT_MINIMUM


def check_kernels(
    content: bytes,
    x: np.ndarray,
    y: np.ndarray,
    reference: Reference | None,
    *,
    threads: int = 1,
    bar: AccuracyBar | None = None,
    timed: bool = True,
    runtime: Runtime | None = None,
) -> list[KernelCheck]:
    """Accuracy, agreement with the JAX reference, and latency, with every kernel set of ``runtime`` (LiteRT by
    default: XNNPACK and builtin kernels).

    The accuracy is judged against ``bar``, by default the reference's JAX accuracy interval. Without
    ``timed`` nothing is timed (``latency`` is None): the check is then safe on a busy machine.
    """
    runtime = runtime or runtime_named("litert")
    if bar is None and reference is not None:
        bar = reference_bar(reference)
    checks, first = [], None
    protocol = runtime.timing_protocol(threads) if timed else None
    for kernels in runtime.kernel_sets:
        predictions = runtime.predict(content, x, kernel_set=kernels, threads=threads)
        checks.append(
            KernelCheck(
                delegate=kernels,
                accuracy=float((predictions == y).mean()),
                agreement=None if reference is None else reference.agreement(predictions),
                kernel_agreement=None if first is None else float((predictions == first).mean()),
                bar=bar,
                latency=None if protocol is None else runtime.time(content, kernel_set=kernels, protocol=protocol),
            )
        )
        first = predictions if first is None else first
    return checks
