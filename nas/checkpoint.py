"""Saving nested dicts of arrays as ``.npz`` (no pickle), atomically, so a crash never leaves half a file.

``atomic_write_bytes`` is re-exported for the pipeline's other writers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from latency_models.files import atomic_write_bytes

__all__ = ["atomic_write_bytes", "flatten_tree", "load_tree", "save_tree", "unflatten_tree"]

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


def save_tree(path: Path, tree: dict[str, Any]) -> None:
    """Writes a nested dict of arrays to ``path`` (.npz) atomically."""
    flat = flatten_tree(tree)
    atomic_write_bytes(path, lambda handle: np.savez(handle, **flat))  # type: ignore[arg-type]  # numpy's stub


def load_tree(path: Path) -> dict[str, Any]:
    """Reads a tree written by ``save_tree``."""
    # Our own handle: numpy leaves its file open when the archive turns out to be truncated.
    with path.open("rb") as handle, np.load(handle, allow_pickle=False) as archive:
        return unflatten_tree({name: archive[name] for name in archive.files})
