"""Whether a compressed model is far below the uncompressed one: the warning export, select and report give.

A front member can be non-dominated and still useless: a model at chance accuracy is the cheapest point of
every front it reaches. Exporting or accepting it without a word is how a collapsed model ships as "ok".
"""

from __future__ import annotations

MAX_DROP_POINTS = 5.0  # more accuracy lost than this against the uncompressed model is warned about
NEAR_CHANCE_POINTS = 10.0  # within this many points of always guessing one class counts as chance


def collapse_warning(accuracy: float, baseline_accuracy: float, num_classes: int) -> str | None:
    """A one-line warning when ``accuracy`` is near chance or more than ``MAX_DROP_POINTS`` below the
    baseline's (both on the same split), else None."""
    drop = 100.0 * (baseline_accuracy - accuracy)
    chance = 100.0 / max(num_classes, 1)
    if 100.0 * accuracy <= chance + NEAR_CHANCE_POINTS:
        return (
            f"accuracy {accuracy:.4f} is near chance ({chance / 100:.3f} for {num_classes} classes) against the "
            f"uncompressed {baseline_accuracy:.4f}: this model has collapsed"
        )
    if drop > MAX_DROP_POINTS:
        return (
            f"accuracy {accuracy:.4f} is {drop:.1f} points below the uncompressed {baseline_accuracy:.4f} "
            f"(more than {MAX_DROP_POINTS:g})"
        )
    return None
