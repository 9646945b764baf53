"""Saving nested dicts of arrays as ``.npz`` (no pickle), atomically, so a crash never leaves half a file."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

SEPARATOR = "|"


def flatten_tree(tree: dict[str, Any], prefix: str = "") -> dict[str, np.ndarray]:
    """``{"a": {"b": x}}`` -> ``{"a|b": x}`` (``|`` cannot clash with layer or quantization-point names)."""
    flat: dict[str, np.ndarray] = {}
    for key, value in tree.items():
        name = f"{prefix}{SEPARATOR}{key}" if prefix else str(key)
        if isinstance(value, dict):
            flat.update(flatten_tree(value, name))
        else:
            flat[name] = np.asarray(value)
    return flat


def unflatten_tree(flat: dict[str, np.ndarray]) -> dict[str, Any]:
    """Inverse of ``flatten_tree``."""
    tree: dict[str, Any] = {}
    for name, value in flat.items():
        node = tree
        *parents, leaf = name.split(SEPARATOR)
        for parent in parents:
            node = node.setdefault(parent, {})
        node[leaf] = value
    return tree


def atomic_write_bytes(path: Path, write: Any) -> None:
    """Calls ``write(handle)`` on a temporary file beside ``path`` and renames it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_tree(path: Path, tree: dict[str, Any]) -> None:
    """Writes a nested dict of arrays to ``path`` (.npz) atomically."""
    flat = flatten_tree(tree)
    atomic_write_bytes(path, lambda handle: np.savez(handle, **flat))


def load_tree(path: Path) -> dict[str, Any]:
    """Reads a tree written by ``save_tree``."""
    with np.load(path, allow_pickle=False) as archive:
        return unflatten_tree({name: archive[name] for name in archive.files})
