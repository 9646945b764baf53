"""The configuration of a search, validated once and stored with the study so runs can resume and be reproduced."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from nas.errors import ConfigError
from nas.finetune import FinetuneConfig
from nas.objectives import OBJECTIVE_TERMS, SIZE_TERMS
from nas.train import TrainConfig

SAMPLERS = ("tpe", "nsga2", "random", "gp")
DEFAULT_SAMPLER = "tpe"


@dataclass(frozen=True, kw_only=True)
class SearchConfig:
    """Everything that determines a study's results (the trial count excepted: it may grow on resume)."""

    model: str = "cnn"
    width_multiplier: float | None = None
    dataset: str = "digits"
    space: dict[str, Any] | None = None
    objectives: tuple[str, ...] = ("accuracy", "stored_bytes")
    max_size_kb: float | None = None
    channel_norm: str = "l2"
    sampler: str = DEFAULT_SAMPLER
    seed: int = 0
    train: TrainConfig = field(default_factory=TrainConfig)
    finetune: FinetuneConfig = field(default_factory=FinetuneConfig)

    def __post_init__(self) -> None:
        unknown = [o for o in self.objectives if o not in OBJECTIVE_TERMS]
        if unknown:
            raise ConfigError(f"unknown objective {unknown[0]!r}; use {', '.join(OBJECTIVE_TERMS)}")
        if "accuracy" not in self.objectives or len(self.objectives) < 2:
            raise ConfigError("objectives must include accuracy and at least one cost term, e.g. accuracy,stored_bytes")
        if self.sampler not in SAMPLERS:
            raise ConfigError(f"unknown sampler {self.sampler!r}; use one of {', '.join(SAMPLERS)}")
        if self.max_size_kb is not None and self.max_size_kb <= 0:
            raise ConfigError(f"--max-size-kb must be positive, got {self.max_size_kb}")

    @property
    def size_term(self) -> str:
        """The size objective the budget applies to (the first size term among the objectives)."""
        return next((o for o in self.objectives if o in SIZE_TERMS), "stored_bytes")

    def to_json(self) -> str:
        """Canonical JSON form, stored as a study attribute."""
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> SearchConfig:
        """Inverse of ``to_json``."""
        raw = json.loads(text)
        raw["objectives"] = tuple(raw["objectives"])
        raw["train"] = TrainConfig(**raw["train"])
        raw["finetune"] = FinetuneConfig(**raw["finetune"])
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in raw.items() if k in known})

    def differences(self, other: SearchConfig) -> list[str]:
        """Names of the settings in which two configs differ."""
        mine, theirs = asdict(self), asdict(other)
        return [key for key in mine if mine[key] != theirs[key]]


def load_space_file(path: str | Path) -> dict[str, Any]:
    """Reads a search-space JSON file into the dict stored in the config (validated by ``SearchSpace``)."""
    try:
        raw = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise ConfigError(f"search space file {str(path)!r} does not exist") from None
    except (OSError, json.JSONDecodeError) as err:
        raise ConfigError(f"search space file {str(path)!r} is not valid JSON: {err}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"search space file {str(path)!r} must hold a JSON object")
    return raw
