"""Provenance of a figure: which code, which packages, which machine, when. Recorded in every benchmark
result (and, later, every model card) so a figure can be traced and rerun."""

from __future__ import annotations

import datetime
import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

from latency_models.host import cpu_facts, runtime_version

PACKAGES = ("jax", "jaxlib", "flax", "optax", "optuna", "numpy", "scikit-learn", "ai-edge-litert", "litert-converter")
ROOT = Path(__file__).resolve().parents[1]


def git_commit(root: Path = ROOT) -> dict[str, Any]:
    """The checked-out commit and whether the work tree differs from it (None outside a git checkout)."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True
        ).stdout.strip()
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=root, capture_output=True, text=True
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return {"commit": None, "dirty": None}
    return {"commit": commit, "dirty": bool(status.strip())}


def package_versions(names: tuple[str, ...] = PACKAGES) -> dict[str, str | None]:
    """Installed versions of the packages that shape the figures."""
    versions: dict[str, str | None] = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def run_provenance() -> dict[str, Any]:
    """Commit, package versions, Python, CPU, runtime and the UTC time of a run."""
    return {
        **git_commit(),
        "date_utc": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "packages": package_versions(),
        "runtime": runtime_version(),
        "cpu": cpu_facts(),
    }
