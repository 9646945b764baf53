"""What the test processes build once and share: a directory built by the first process that asks for it (the
others wait on its lock), then copied for each process that uses it, so tests that write into it never race.

With ``pytest -n 2`` each process used to build its own quick-grid profile and kit (half a minute each): the
exporter's conversions dominate, and their result does not depend on which process made them.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest

from nas.locks import exclusive

DONE = ".built"


def shared_root(factory: pytest.TempPathFactory) -> Path:
    """The directory every process of this test run can see (the workers' common temporary root)."""
    base = factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


def built_once(factory: pytest.TempPathFactory, name: str, build: Callable[[Path], None]) -> Path:
    """A private copy of the directory ``name``, built by ``build(directory)`` once per test run."""
    root = shared_root(factory) / f"shared-{name}"
    with exclusive(root.with_name(root.name + ".lock")):
        if not (root / DONE).exists():
            shutil.rmtree(root, ignore_errors=True)
            staging = Path(tempfile.mkdtemp(dir=root.parent, prefix=f".{root.name}."))
            build(staging)
            (staging / DONE).touch()
            staging.rename(root)
    copy = factory.mktemp(name)
    shutil.copytree(root, copy, dirs_exist_ok=True)
    (copy / DONE).unlink()
    return copy
