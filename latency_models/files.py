"""Atomic file writes: a temporary file beside the target, flushed to disk, then renamed over it, so a crash
never leaves a half-written table, model or report that a later command would trust."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO

from latency_models.errors import CostModelError


def atomic_write_bytes(path: Path, write: Callable[[IO[bytes]], object]) -> None:
    """Calls ``write(handle)`` on a temporary file beside ``path``, fsyncs it and renames it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; the file should get the usual permissions
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    """Writes ``text`` (UTF-8) to ``path`` atomically."""
    atomic_write_bytes(path, lambda handle: handle.write(text.encode()))


def fitted_coefficients(path: Path, features: Sequence[str], refit: str) -> tuple[float, ...]:
    """The coefficients of a committed linear fit (``{"features": [...], "coefficients": [...]}``), in the
    order of ``features``; a missing file or one fitted on other features is refused, naming ``refit``."""
    try:
        raw = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise CostModelError(f"{path.name} is missing or unreadable ({err}); run {refit}") from None
    if raw.get("features") != list(features):
        raise CostModelError(f"{path.name} was fitted on other features; run {refit}")
    return tuple(float(c) for c in raw["coefficients"])
