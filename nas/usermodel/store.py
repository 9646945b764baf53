"""Discovered models on disk, addressed by content: ``results/models/<hash>/`` holds the spec, the folded
weights and where they came from, so every later command (pareto, export, report) reads the study's model
without the user's code, and a changed model or weights file gets a new address instead of overwriting.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nas.checkpoint import atomic_write_bytes, save_tree
from nas.compress.float_regions import write_regions
from nas.usermodel.discover import DiscoveredModel
from nas.usermodel.source import UserModel


@dataclass(frozen=True, kw_only=True)
class StoredModel:
    """Where a discovered model lives: the spec the search loads and the weights its baseline is."""

    spec_path: Path
    weights_path: Path


def models_dir(results_dir: Path) -> Path:
    """Where discovered models are kept."""
    return results_dir / "models"


def model_digest(discovered: DiscoveredModel) -> str:
    """Content hash of a discovered model: its canonical spec and every weight, in a fixed order."""
    digest = hashlib.sha256(discovered.spec.to_json().encode())
    for name in sorted(discovered.params):
        for key in ("kernel", "bias"):
            array = np.ascontiguousarray(discovered.params[name][key], np.float32)
            digest.update(f"{name}/{key}{array.shape}".encode())
            digest.update(array.tobytes())
    return digest.hexdigest()[:16]


def store_model(discovered: DiscoveredModel, source: UserModel, *, origin: str, results_dir: Path) -> StoredModel:
    """Writes the discovered model under its content hash (once; an existing copy is reused)."""
    root = models_dir(results_dir) / model_digest(discovered)
    stored = StoredModel(spec_path=root / "spec.json", weights_path=root / "weights.npz")
    if stored.spec_path.exists() and stored.weights_path.exists():
        return stored
    root.mkdir(parents=True, exist_ok=True)
    save_tree(stored.weights_path, discovered.params)
    write_regions(root, discovered.regions)
    spec = {**json.loads(discovered.spec.to_json()), "description": discovered.spec.description}
    provenance = {
        "origin": origin,
        "model": source.name,
        "framework": source.framework,
        "layers": len(discovered.graph.compressible),
        "parity_error": discovered.parity_error,
        "float_regions": dict(discovered.float_regions),
    }
    atomic_write_bytes(root / "model.json", lambda h: h.write(json.dumps(provenance, indent=1).encode()))
    # The spec goes last: its presence is what marks the directory complete.
    atomic_write_bytes(stored.spec_path, lambda h: h.write(json.dumps(spec, indent=1).encode()))
    return stored
