"""Where everything a run writes lives: one place for every path under ``results/``.

``results/<study>/`` holds one study (storage, trial weights, tables, plots, exported models);
``results/baselines/<hash>/`` holds the cached uncompressed baselines shared by every study.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from nas.errors import ConfigError

_STUDY_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def check_study_name(name: str) -> str:
    """Study names become directory names: letters, digits, ``_ . -`` (no separators, no ``..``)."""
    if not _STUDY_NAME.match(name) or ".." in name:
        raise ConfigError(f"study name {name!r} must be 1-64 letters, digits, '_', '.' or '-' (no slashes, no '..')")
    return name


def baseline_dir(results_dir: Path, key: str) -> Path:
    """Cache directory of the baseline identified by ``key`` (a content hash)."""
    return results_dir / "baselines" / key


def reference_path(model_path: Path) -> Path:
    """Where the JAX test-split outputs of an exported model are kept (for ``nas verify``)."""
    return model_path.with_suffix(".jax_logits.npy")


@dataclass(frozen=True)
class StudyPaths:
    """The files of one study under ``results_dir / name``."""

    results_dir: Path
    name: str

    def __post_init__(self) -> None:
        check_study_name(self.name)

    @property
    def root(self) -> Path:
        """``results/<study>/``."""
        return self.results_dir / self.name

    @property
    def database(self) -> Path:
        """The default SQLite storage file."""
        return self.root / "study.db"

    @property
    def default_storage(self) -> str:
        """Optuna storage URL of the default SQLite file."""
        return f"sqlite:///{self.database.resolve()}"

    def trial_weights(self, number: int) -> Path:
        """Fine-tuned weights and calibrated ranges of trial ``number`` (``.npz``)."""
        return self.root / "trials" / f"trial-{number}.npz"

    def model(self, number: int) -> Path:
        """The exported ``.tflite`` of trial ``number``."""
        return self.root / "models" / f"trial-{number}.tflite"

    @property
    def verification(self) -> Path:
        """Records of every export of this study."""
        return self.root / "verification.json"

    @property
    def trials_csv(self) -> Path:
        """All trials as a table."""
        return self.root / "trials.csv"

    @property
    def front_csv(self) -> Path:
        """The Pareto front with test accuracy."""
        return self.root / "front.csv"

    @property
    def baselines(self) -> Path:
        """The study's baseline points (``nas baselines``)."""
        return self.root / "baselines.json"

    @property
    def robustness(self) -> Path:
        """Accuracy of the front members and the baseline on degraded test inputs."""
        return self.root / "robustness.json"

    @property
    def audit(self) -> Path:
        """The per-class audits of the front members, by trial number."""
        return self.root / "audit.json"

    def plot(self, name: str) -> Path:
        """A plot of the study (``pareto``, ``layers``, ...) as PNG."""
        return self.root / f"{name}.png"


def verification_of(model_path: Path) -> Path:
    """The ``verification.json`` of the study an exported model belongs to (``<study>/models/x.tflite``)."""
    return model_path.parent.parent / "verification.json"
