"""A study ``nas search`` made, opened for reading: what every post-search command starts from.

Opening one checks that the study exists before any storage is touched (opening a SQLite file would create it),
reads the settings it was created with, and knows where its files live and how to load a trial's weights.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna

from nas.compress.models import Compression
from nas.config import SearchConfig
from nas.paths import StudyPaths
from nas.search.context import Problem, resolve_problem
from nas.search.objective import load_trial_weights
from nas.search.study import open_existing, study_config


@dataclass(frozen=True, kw_only=True)
class SavedStudy:
    """An existing study: its Optuna study, the configuration it was created with and its paths."""

    study: optuna.Study
    config: SearchConfig
    paths: StudyPaths

    @classmethod
    def open(cls, name: str, results_dir: Path, storage: str | None = None) -> SavedStudy:
        """The study ``name`` (default storage ``results/<name>/study.db``); a missing one is refused in one line."""
        study = open_existing(name, results_dir, storage)
        return cls(study=study, config=study_config(study), paths=StudyPaths(results_dir, name))

    @property
    def name(self) -> str:
        """The study's name."""
        return self.study.study_name

    def problem(self) -> Problem:
        """The study's problem (model, data, space and device) as its settings describe it."""
        return resolve_problem(self.config)

    def trial_weights(self, number: int) -> tuple[dict[str, Any], Compression]:
        """A trial's fine-tuned parameters and compression arrays (refused in one line when missing or damaged)."""
        return load_trial_weights(self.paths.trial_weights(number))
