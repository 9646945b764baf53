"""Progress bars for long work (baseline training epochs), on stderr so tables on stdout stay clean."""

from __future__ import annotations

import sys
from collections.abc import Callable

from tqdm import tqdm


def epoch_progress(description: str = "baseline") -> Callable[[int, int], None]:
    """A ``progress(epoch, total)`` callback that draws a bar and closes it after the last epoch."""
    state: dict[str, tqdm] = {}

    def progress(epoch: int, total: int) -> None:
        if "bar" not in state:
            state["bar"] = tqdm(total=total, desc=description, unit="epoch", file=sys.stderr, dynamic_ncols=True)
        state["bar"].update(1)
        if epoch == total:
            state["bar"].close()

    return progress
