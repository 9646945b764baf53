"""Whether a validation split can rank candidates by accuracy, said before a search starts.

Accuracy on n examples moves in steps of 1/n: with 28 validation rows a candidate gains or loses 3.6 points
per example, and a baseline already at 1.0 leaves every candidate that keeps each example right tied with it,
so the front degenerates to the cheapest such candidate whatever it loses on unseen data.
"""

from __future__ import annotations

MAX_STEP_POINTS = 1.0  # one example may move accuracy by at most this many points before the split is too small


def ranking_notices(baseline_val_accuracy: float, val_examples: int) -> list[str]:
    """One line per reason the validation split cannot rank candidates (empty when it can)."""
    notices = []
    step = 100.0 / max(val_examples, 1)
    if step > MAX_STEP_POINTS:
        notices.append(
            f"the validation split has {val_examples} examples: one example moves accuracy by {step:.1f} points, "
            "so candidates closer than that cannot be told apart; give more data (a larger split) or rank by "
            "another objective (README: when the data cannot rank)"
        )
    if baseline_val_accuracy >= 1.0:
        notices.append(
            f"the uncompressed model scores 1.000 on all {val_examples} validation examples: every candidate that "
            "keeps them right ties with it, and the front keeps the cheapest; use a larger or harder validation "
            "split, or a budget such as --max-class-drop (README: when the data cannot rank)"
        )
    return notices
