"""Running an exported model in its runtime (``latency_models.runtimes``; LiteRT unless told otherwise):
predictions, agreement with JAX, latency.

Every kernel set of the runtime is checked, because they disagree in practice: for LiteRT the default (XNNPACK
delegate where it applies) and the builtin kernels only. Latency is measured on this host (batch 1) with the
runtime's one timing protocol, the cost tables' own, once per file and kernel set, and labelled as measured; it
says nothing about another device.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from latency_models.runtimes import runtime_named
from latency_models.runtimes.base import Runtime
from latency_models.table import Measurement

# The rule, in counts a user can check: of n predictions, an export may flip (predict a class the JAX model
# does not rank first) at most ``allowed_flips(n)``: 1% of n rounded up, and at least one. Integer kernels
# round where JAX's fake quantization does not, and an example near a decision boundary then changes class;
# legitimate exports flip a few in a thousand, a file that really differs flips far more. One flip is always
# allowed: on a small split a single rounding would otherwise be 1% or more on its own.
FLIP_SHARE = 0.01
FLIPS_SHOWN = 10  # the flipped examples a record keeps and prints (their count is always complete)


def allowed_flips(n: int) -> int:
    """How many of ``n`` predictions an export may flip: 1% rounded up, at least one."""
    return max(1, math.ceil(FLIP_SHARE * n))


def accuracy_tolerance(n: int) -> float:
    """k flipped predictions move accuracy by at most k/n: an accuracy bar tighter than the allowed flips would
    judge an export by the direction its admitted flips happen to take, which on a few hundred examples is
    chance (a trial that passed on validation then failed on test by two images of 359)."""
    return allowed_flips(n) / n if n else 0.0


@dataclass(frozen=True, kw_only=True)
class Flip:
    """One example the exported model classifies differently from its reference."""

    index: int  # the example's position in the split
    label: int  # its true class
    expected: int  # the reference's class (JAX's top class, or the first kernel set's prediction)
    predicted: int  # the exported model's class

    def describe(self) -> str:
        """``#12 (class 3): 3 -> 8``."""
        return f"#{self.index} (class {self.label}): {self.expected} -> {self.predicted}"


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

    def flips(self, predictions: np.ndarray) -> list[Flip]:
        """The examples whose exported prediction is none of the JAX top classes."""
        agreed = self.top[np.arange(len(predictions)), predictions]
        expected = self.logits.argmax(axis=1)
        return [
            Flip(index=int(i), label=int(self.labels[i]), expected=int(expected[i]), predicted=int(predictions[i]))
            for i in np.flatnonzero(~agreed)
        ]


@dataclass(frozen=True, kw_only=True)
class AccuracyBar:
    """The accuracy interval an exported model is judged against, and where it comes from."""

    low: float
    high: float
    source: str
    tolerance: float = 0.0

    def admits(self, accuracy: float) -> bool:
        """Whether ``accuracy`` lies within the interval, widened by the tolerance."""
        return self.low - self.tolerance <= accuracy <= self.high + self.tolerance


def reference_bar(reference: Reference) -> AccuracyBar:
    """The JAX model's accuracy interval (ties resolved against and in favour of the label)."""
    low, high = reference.accuracy_bounds
    return AccuracyBar(
        low=low,
        high=high,
        source="JAX fake-quant accuracy of the same candidate",
        tolerance=accuracy_tolerance(len(reference.labels)),
    )


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
    examples: int = 0  # how many predictions were compared
    flips: tuple[Flip, ...] = ()  # those that differ from JAX's (from the first kernel set's without JAX)

    @property
    def allowed_flips(self) -> int:
        """How many of its predictions may flip (``allowed_flips``)."""
        return allowed_flips(self.examples)

    @property
    def passed(self) -> bool:
        """Accuracy admitted by the bar, and at most ``allowed_flips`` of the predictions flipped against JAX
        (against the first kernel set without JAX)."""
        if self.bar is None or not self.bar.admits(self.accuracy):
            return False
        return len(self.flips) <= self.allowed_flips


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
                examples=len(y),
                flips=tuple(_flips(predictions, y, reference, first)),
            )
        )
        first = predictions if first is None else first
    return checks


def _flips(predictions: np.ndarray, y: np.ndarray, reference: Reference | None, first: np.ndarray | None) -> list[Flip]:
    """The examples that differ from JAX, or from the first kernel set where there is no JAX reference."""
    if reference is not None:
        return reference.flips(predictions)
    if first is None:
        return []
    return [
        Flip(index=int(i), label=int(y[i]), expected=int(first[i]), predicted=int(predictions[i]))
        for i in np.flatnonzero(predictions != first)
    ]
