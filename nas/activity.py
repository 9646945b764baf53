"""Which searches run on this machine: each search process holds a lock file while it runs, so a latency
measurement (``nas profile``, an export's timings) can tell that the cores are busy, and the timings would
measure the contention instead of the model.

The files live in the temporary directory, one per process; the operating system drops a dead process's
lock, so a stale file never counts. ``NAS_SEARCH_REGISTRY`` names another directory: a test session uses its
own, so the searches of another session (or a benchmark) on the same machine neither block its exports nor
are blocked by them.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from nas.errors import ConfigError
from nas.locks import exclusive

REGISTRY_VARIABLE = "NAS_SEARCH_REGISTRY"


def _registry() -> Path:
    chosen = os.environ.get(REGISTRY_VARIABLE)
    return Path(chosen) if chosen else Path(tempfile.gettempdir()) / f"nas-searches-{os.getuid()}"


@contextlib.contextmanager
def searching() -> Iterator[None]:
    """Marks this process as running a search for the duration of the block."""
    path = _registry() / f"{os.getpid()}.lock"
    try:
        with exclusive(path):
            yield
    finally:
        path.unlink(missing_ok=True)


def other_searches() -> list[int]:
    """The pids of the searches running on this machine, this process excepted."""
    running = []
    for path in sorted(_registry().glob("*.lock")) if _registry().exists() else []:
        if path.stem == str(os.getpid()):
            continue
        try:
            with path.open("r") as handle:
                fcntl.flock(handle.fileno(), fcntl.LOCK_SH | fcntl.LOCK_NB)  # free: its process is gone
            path.unlink(missing_ok=True)
        except BlockingIOError:
            running.append(int(path.stem))
        except FileNotFoundError:
            continue
    return running


def require_quiet_machine(what: str, *, under_load: bool) -> None:
    """Refuses to time the host while searches load it (``under_load`` overrides): the timings would carry the
    other processes' contention into tables and verification records as if it were the model's."""
    busy = other_searches()
    if busy and not under_load:
        raise ConfigError(
            f"{len(busy)} search(es) are running on this machine (pid {', '.join(map(str, busy))}); {what} times "
            "the host and their load would make every timing wrong: wait for them, or pass --under-load"
        )
