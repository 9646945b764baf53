"""An exclusive lock between processes (``fcntl.flock`` on a lock file): what one worker builds (a baseline, a
device table), the others wait for and then reuse, instead of building it again. The operating system
releases the lock when its holder dies, so a killed worker never leaves it taken.
"""

from __future__ import annotations

import contextlib
import fcntl
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def exclusive(path: Path) -> Iterator[None]:
    """Holds the lock ``path`` (created if needed) for the block; waits while another process holds it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
