"""The per-class audit's arithmetic: changes, bootstrap intervals against the binomial answer, flags."""

from __future__ import annotations

import math

import numpy as np
import pytest

from nas.analysis.audit import audit_classes
from nas.training.evaluate import worst_class_drop


def _outcomes(per_class: dict[int, tuple[int, int, int]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Labels and per-example outcomes: per class (examples, baseline correct, candidate correct); the
    candidate's errors are a subset of the examples the baseline got right, after the baseline's own errors."""
    labels, base, cand = [], [], []
    for label, (n, base_right, cand_right) in per_class.items():
        labels += [label] * n
        base += [True] * base_right + [False] * (n - base_right)
        cand += [True] * cand_right + [False] * (n - cand_right)
    return np.array(labels), np.array(base), np.array(cand)


def test_changes_worst_class_and_flags_are_exact():
    # Class 2 loses 12 of 40, class 1 loses 2 of 40, class 0 nothing: mean drop (0 + 0.05 + 0.3) / 3.
    labels, base, cand = _outcomes({0: (40, 40, 40), 1: (40, 40, 38), 2: (40, 40, 28)})
    audit = audit_classes(labels, base, cand)
    changes = {c.label: c.change for c in audit.classes}
    assert changes == {0: 0.0, 1: pytest.approx(-0.05), 2: pytest.approx(-0.3)}
    assert audit.mean_drop == pytest.approx(0.35 / 3)
    assert audit.worst.label == 2 and audit.worst.drop == pytest.approx(0.3)
    assert audit.flagged == (2,)  # 0.3 > 2 x 0.117; 0.05 is not
    assert audit.overall_change == pytest.approx(-14 / 120)
    unchanged = next(c for c in audit.classes if c.label == 0)
    assert (unchanged.low, unchanged.high) == (0.0, 0.0)  # no example changed: no interval to speak of


def test_bootstrap_interval_matches_the_binomial_answer():
    # The baseline is right everywhere, the candidate on 70% of 400 examples: the change is -0.3 with a standard
    # error of sqrt(0.7 x 0.3 / 400), so a 95% interval of about +-1.96 of it.
    labels, base, cand = _outcomes({0: (400, 400, 280)})
    audit = audit_classes(labels, base, cand, resamples=4000)
    (only,) = audit.classes
    half_width = 1.96 * math.sqrt(0.7 * 0.3 / 400)
    assert only.low == pytest.approx(-0.3 - half_width, abs=0.25 * half_width)
    assert only.high == pytest.approx(-0.3 + half_width, abs=0.25 * half_width)
    assert audit.to_dict()["worst_drop_interval"] == [pytest.approx(-only.high), pytest.approx(-only.low)]


def test_the_interval_is_paired_gains_and_losses_on_other_examples_do_not_cancel():
    # The candidate fixes 10 of the baseline's errors and makes 10 new ones: change 0, but a real spread.
    labels = np.zeros(100, int)
    base = np.array([False] * 10 + [True] * 90)
    cand = np.array([True] * 10 + [False] * 10 + [True] * 80)
    (only,) = audit_classes(labels, base, cand).classes
    assert only.change == 0.0 and only.low < -0.05 and only.high > 0.05


def test_no_mean_drop_flags_nothing_nor_does_one_example_and_bad_input_is_refused():
    labels, base, cand = _outcomes({0: (20, 18, 20), 1: (20, 20, 20)})
    assert audit_classes(labels, base, cand).flagged == ()
    # Class 1 loses one example of 36: more than twice the mean drop, but its interval reaches zero.
    labels, base, cand = _outcomes({0: (36, 36, 36), 1: (36, 36, 35), 2: (36, 36, 36)})
    audit = audit_classes(labels, base, cand)
    assert audit.worst.label == 1 and audit.flagged == ()
    with pytest.raises(ValueError, match="one length"):
        audit_classes(labels, base, cand[:-1])


def test_worst_class_drop_skips_absent_classes():
    assert worst_class_drop((0.9, 1.0, float("nan")), (0.8, 1.0, 0.5)) == pytest.approx(0.1)
    assert worst_class_drop((0.9, 0.8), (0.95, 0.9)) == pytest.approx(-0.05)


def test_a_collapse_that_hits_every_class_is_flagged_whatever_the_mean():
    # Four classes lose 94% each, six lose 50%: twice the mean drop (2 x 0.676) is above any possible drop,
    # so the relative rule alone flags nothing; the absolute bound flags every class that lost over 20 points.
    spec = {label: (50, 50, 3) for label in range(4)} | {label: (50, 50, 25) for label in range(4, 10)}
    labels, base, cand = _outcomes(spec)
    audit = audit_classes(labels, base, cand)
    assert audit.mean_drop > 0.5
    assert audit.flagged == tuple(range(10))
