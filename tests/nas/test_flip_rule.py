"""The verification rule in counts: of n predictions at most allowed_flips(n) may differ from JAX's, the flipped
examples are listed with their classes, and a record keeps them."""

from __future__ import annotations

import numpy as np
import pytest

from nas.deploy.export_record import KernelResult
from nas.runtime.verify import KernelCheck, Reference, allowed_flips, reference_bar


@pytest.mark.parametrize(("n", "allowed"), [(12, 1), (99, 1), (100, 1), (101, 2), (359, 4), (1000, 10), (10_000, 100)])
def test_the_allowed_flips_are_one_percent_rounded_up_and_at_least_one(n, allowed):
    assert allowed_flips(n) == allowed


def _reference(n: int, classes: int = 4) -> Reference:
    labels = np.arange(n) % classes
    logits = np.full((n, classes), -1.0)
    logits[np.arange(n), labels] = 1.0  # JAX right on every example
    return Reference(logits=logits, labels=labels)


def _check(reference: Reference, predictions: np.ndarray) -> KernelCheck:
    y = reference.labels
    return KernelCheck(
        delegate="builtin",
        accuracy=float((predictions == y).mean()),
        agreement=reference.agreement(predictions),
        kernel_agreement=None,
        bar=reference_bar(reference),
        latency=None,
        examples=len(y),
        flips=tuple(reference.flips(predictions)),
    )


@pytest.mark.parametrize(("flipped", "passed"), [(0, True), (3, True), (4, True), (5, False), (40, False)])
def test_a_file_passes_with_up_to_the_allowed_flips_and_fails_beyond(flipped, passed):
    reference = _reference(359)
    predictions = reference.labels.copy()
    predictions[:flipped] = (predictions[:flipped] + 1) % 4
    check = _check(reference, predictions)
    assert len(check.flips) == flipped and check.allowed_flips == 4
    assert check.passed is passed


def test_a_tie_in_the_jax_outputs_is_not_a_flip():
    reference = _reference(20)
    reference.logits[0, (reference.labels[0] + 1) % 4] = 1.0  # two classes tied for first
    predictions = reference.labels.copy()
    predictions[0] = (predictions[0] + 1) % 4
    assert _check(reference, predictions).flips == ()


def test_the_record_names_each_flipped_example_with_its_class_and_both_predictions():
    reference = _reference(359)
    predictions = reference.labels.copy()
    predictions[[5, 17, 200]] = [2, 0, 3]  # labels 1, 1, 0
    result = KernelResult.from_dict(KernelResult.of(_check(reference, predictions)).to_dict())
    assert result.flipped == 3 and result.allowed_flips == 4 and result.examples == 359 and result.passed
    assert result.describe_flips() == (
        "3 of 359 predictions flipped (allowed 4): #5 (class 1): 1 -> 2, #17 (class 1): 1 -> 0, #200 (class 0): 0 -> 3"
    )


def test_a_record_keeps_the_first_flips_and_counts_them_all():
    reference = _reference(359)
    predictions = (reference.labels + 1) % 4  # every prediction differs: a file that really differs
    result = KernelResult.of(_check(reference, predictions))
    assert not result.passed and result.flipped == 359 and len(result.flips) == 10
    assert result.describe_flips().endswith(", and 349 more")


def test_a_record_from_before_flips_were_counted_reads_back_without_them():
    old = {"delegate": "xnnpack", "accuracy": 0.9, "agreement": 1.0, "passed": True}
    result = KernelResult.from_dict(old)
    assert result.flipped is None and result.flips == () and result.describe_flips() == ""
