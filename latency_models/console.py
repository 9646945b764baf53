"""A clean console: what third-party native code and progress bars print (absl and oneDNN start-up lines, the
interpreter's delegate notice, the quantizer's calibration bar) is silenced, unless ``NAS_VERBOSE=1``
(``nas --verbose``).

Those lines are written by C++ straight to file descriptor 2, below Python's ``sys.stderr``, so the block
points descriptor 2 at ``/dev/null`` and restores it after; Python exceptions still propagate as usual.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator

VERBOSE_ENV = "NAS_VERBOSE"


def verbose() -> bool:
    """Whether third-party output is shown (``NAS_VERBOSE=1``)."""
    return os.environ.get(VERBOSE_ENV) == "1"


@contextlib.contextmanager
def third_party_output_silenced() -> Iterator[None]:
    """Within the block, nothing reaches the process's stderr unless ``verbose()``."""
    if verbose():
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    os.close(devnull)
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
