"""The Optuna study: seeded sampler, persistent storage, resume, and the search loop with progress."""

from __future__ import annotations

import hashlib
import os
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState
from tqdm import tqdm

from latency_models.size import stored_bytes
from nas.activity import searching
from nas.compile_cache import enable_compilation_cache
from nas.config import SearchConfig
from nas.errors import ConfigError, TrialFailed
from nas.objectives import directions, term
from nas.paths import StudyPaths
from nas.progress import epoch_progress
from nas.search.allocation import uniform_int8_params, warm_start_params
from nas.search.context import Problem, SearchContext, build_context, with_host_timing
from nas.search.objective import make_objective
from nas.search.ranking import ranking_notices
from nas.search.record import TrialRecord
from nas.search.storage import optuna_storage, redacted
from nas.search.trial_owner import fail_dead_workers_trials
from nas.search.workers import SEED_STRIDE, WorkerJob, spawn, wait_for
from nas.training.learning_rate import RateChoice
from search_spaces.space import Candidate

CONFIG_ATTR = "search_config"
CONTENT_ATTR = "content"
NSGA2_POPULATION = 10


def make_sampler(name: str, seed: int) -> optuna.samplers.BaseSampler:
    """A seeded sampler by name (``tpe``, ``nsga2``, ``random``, ``gp``)."""
    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed, multivariate=True)
    if name == "nsga2":
        # Optuna's default population (50) makes the first 50 trials random sampling; with searches of about
        # 100 trials, generations of 10 let selection and crossover act from trial 11 on.
        return optuna.samplers.NSGAIISampler(seed=seed, population_size=NSGA2_POPULATION)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if name == "gp":
        try:
            import scipy  # noqa: F401
            import torch  # noqa: F401
        except ImportError:
            raise ConfigError("the gp sampler needs PyTorch: pip install -e '.[gp]' (or use tpe)") from None
        return optuna.samplers.GPSampler(seed=seed)
    raise ConfigError(f"unknown sampler {name!r}; use tpe, nsga2, random or gp")


def load_study(name: str, storage: str) -> optuna.Study:
    """Loads an existing study, with a clear error when it does not exist."""
    try:
        return optuna.load_study(study_name=name, storage=optuna_storage(storage))
    except KeyError:
        raise ConfigError(f"no study {name!r} in {redacted(storage)}; run `nas search --study {name}` first") from None


def open_existing(name: str, results_dir: Path, storage: str | None) -> optuna.Study:
    """Loads a study created by ``nas search`` (default storage under ``results/<study>/``)."""
    paths = StudyPaths(results_dir, name)
    if storage is None and not paths.database.exists():
        raise ConfigError(f"no study {name!r} under {results_dir}; run `nas search --study {name}` first")
    return load_study(name, storage or paths.default_storage)


def study_config(study: optuna.Study) -> SearchConfig:
    """The configuration a study was created with."""
    raw = study.user_attrs.get(CONFIG_ATTR)
    if raw is None:
        raise ConfigError(f"study {study.study_name!r} was not created by `nas search` (no stored configuration)")
    return SearchConfig.from_json(raw)


def open_study(config: SearchConfig, name: str, storage: str, seed_offset: int = 0) -> optuna.Study:
    """Creates the study or loads it (``load_if_exists``); the sampler seed moves on by ``seed_offset``."""
    study = optuna.create_study(
        study_name=name,
        storage=optuna_storage(storage, heartbeat=True),
        directions=directions(config.objectives),
        sampler=make_sampler(config.sampler, config.seed + seed_offset),
        load_if_exists=True,
    )
    if CONFIG_ATTR not in study.user_attrs:
        study.set_user_attr(CONFIG_ATTR, config.to_json())
    return study


@dataclass(frozen=True, kw_only=True)
class SearchSummary:
    """What a search run did."""

    study: optuna.Study
    context: SearchContext
    trials_run: int
    resumed_from: int


def run_search(
    problem: Problem,
    *,
    name: str,
    trials: int,
    results_dir: Path,
    storage: str | None = None,
    show_progress: bool = True,
    warm_start: bool = False,
    workers: int = 1,
    data_dir: Path | None = None,
) -> SearchSummary:
    """Runs (or resumes) the study until it holds ``trials`` finished trials.

    A study that exists with other settings is refused before anything is trained or written. A new study's
    first trial is uniform int8 (``nas.search.allocation.uniform_int8_params``). With
    ``warm_start`` its next trials are the sensitivity-based allocations
    (``nas.search.allocation.warm_start_params``); the sampler takes over after them. With ``workers`` > 1
    the trials run in that many processes (``nas.search.workers``), the baseline built once before them.
    """
    if workers < 1:
        raise ConfigError(f"--workers must be at least 1, got {workers}")
    enable_compilation_cache()
    paths = StudyPaths(results_dir, name)
    if paths.root.exists() and not paths.root.is_dir():
        raise ConfigError(f"{paths.root} is a file, not a study directory; move it or choose another --study name")
    existing = _existing_study(paths, storage)
    if existing is not None and CONFIG_ATTR not in existing.user_attrs and not existing.trials:
        existing = None  # a run killed between creating the study and storing its settings: start it afresh
    stored = None if existing is None else study_config(existing)
    problem = replace(problem, config=problem.config.settled(problem.device.measurable_here, stored))
    if existing is not None:
        assert stored is not None
        changed = stored.differences(problem.config)
        if changed:
            raise ConfigError(
                f"study {name!r} exists with different settings ({', '.join(changed)}); "
                "use a new --study name or the original settings"
            )
        _check_same_content(existing, problem)
    context = build_context(
        problem,
        results_dir=results_dir,
        progress=epoch_progress() if show_progress else None,
        finetune_rate=None if existing is None else recorded_rate(existing),
    )
    for notice in [context.finetune_rate.describe(), *search_notices(context)]:
        print(f"note: {notice}", file=sys.stderr)
    paths.root.mkdir(parents=True, exist_ok=True)
    remove_orphans(paths.root)
    done = len(_finished(existing))
    if existing is not None:
        fail_dead_workers_trials(existing)  # a killed run's trial is not a concurrent worker
    # Another process already searching this study samples with the same seed: move away from it.
    concurrent = existing is not None and bool(existing.get_trials(deepcopy=False, states=(TrialState.RUNNING,)))
    offset = done + (SEED_STRIDE * (os.getpid() % 997 + 1) if concurrent else 0)
    study = open_study(problem.config, name, storage or paths.default_storage, seed_offset=offset)
    _record_baseline(study, context)
    if CONTENT_ATTR not in study.user_attrs:
        study.set_user_attr(CONTENT_ATTR, content_fingerprint(problem))
    if done == 0 and not study.trials:
        for params in _seed_params(context, warm_start)[:trials]:  # never more than run: none left waiting
            study.enqueue_trial(params)
    remaining = max(0, trials - done)
    bar = tqdm(
        total=trials,
        initial=done,
        desc=f"search {name}",
        unit="trial",
        disable=not show_progress,
        file=sys.stderr,
        dynamic_ncols=True,
    )
    try:
        # The reference is timed once per run; workers express their figures at the same starting speed.
        timed = with_host_timing(context) if remaining else context
        if timed.host_timing is not None:
            study.set_user_attr(HOST_TIMING_ATTR, timed.host_timing.describe())
        if workers == 1:
            with searching():
                _optimize(study, timed, paths, remaining, bar, problem.config.objectives)
        elif remaining:
            storage_url = storage or paths.default_storage
            _run_workers(problem.config, study, paths, storage_url, trials, workers, done, bar, data_dir)
    finally:
        bar.close()
    return SearchSummary(study=study, context=context, trials_run=remaining, resumed_from=done)


HOST_TIMING_ATTR = "host_timing"  # the reference's timing at the last run's start (host measured in the loop)


def _seed_params(context: SearchContext, warm_start: bool) -> list[dict[str, Any]]:
    """A new study's first trials, distinct: uniform int8, then (``warm_start``) the sensitivity allocations."""
    seeds = [uniform_int8_params(context)]
    for params in warm_start_params(context) if warm_start else ():
        if params not in seeds:
            seeds.append(params)
    return seeds


def _optimize(
    study: optuna.Study, context: SearchContext, paths: StudyPaths, remaining: int, bar: tqdm, objectives: tuple
) -> None:
    """Runs ``remaining`` trials in this process."""
    study.optimize(
        make_objective(context, paths),
        n_trials=remaining,
        callbacks=[_progress_callback(bar, objectives)],
        catch=(TrialFailed,),  # recorded as FAIL with its reason (user attribute fail_reason)
    )


def _run_workers(
    config: SearchConfig,
    study: optuna.Study,
    paths: StudyPaths,
    storage: str,
    trials: int,
    workers: int,
    done: int,
    bar: tqdm,
    data_dir: Path | None,
) -> None:
    """Runs the study's remaining trials in ``workers`` processes, showing their progress on ``bar``."""
    jobs = [
        WorkerJob(
            config=config.to_json(),
            name=paths.name,
            trials=trials,
            results_dir=str(paths.results_dir),
            storage=storage,
            index=index,
            seed_offset=done + SEED_STRIDE * (index + 1),
            data_dir=None if data_dir is None else str(data_dir),
        )
        for index in range(workers)
    ]
    logs = [paths.root / "workers" / f"worker-{index}.log" for index in range(workers)]
    processes = [spawn(job, workers, log) for job, log in zip(jobs, logs, strict=True)]

    def show() -> None:
        complete = len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))
        bar.update(max(0, min(complete, bar.total) - bar.n))
        bar.set_postfix_str(front_summary(study, config.objectives), refresh=True)

    wait_for(processes, logs, show)


ORPHAN_AGE_S = 600  # a temporary file this old belongs to no live writer (a write takes well under a second)


def remove_orphans(directory: Path) -> list[Path]:
    """Deletes the temporary files a killed run left under ``directory`` (``atomic_write_bytes`` names them
    ``.<name>.<random>.tmp``); recent ones may be another worker's writes in progress and are kept."""
    cutoff = time.time() - ORPHAN_AGE_S
    removed = []
    for path in directory.rglob(".*.tmp"):
        try:
            if path.stat().st_mtime < cutoff:
                path.unlink()
                removed.append(path)
        except FileNotFoundError:  # its writer finished (renamed it) meanwhile
            continue
    return removed


def _existing_study(paths: StudyPaths, storage: str | None) -> optuna.Study | None:
    """The study if it already exists; never creates a storage file just to look."""
    if storage is None:
        if not paths.database.exists():
            return None
        storage = paths.default_storage
    try:
        return optuna.load_study(study_name=paths.name, storage=optuna_storage(storage))
    except KeyError:
        return None


def _finished(study: optuna.Study | None) -> list[optuna.trial.FrozenTrial]:
    if study is None:
        return []
    return study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))


def content_fingerprint(problem: Problem) -> dict[str, str]:
    """What the study's model and data files hold (not where they are): a spec edited in place or a dataset
    file replaced under the same path is a different study."""
    spec = hashlib.sha256(problem.graph.spec.to_json().encode()).hexdigest()[:16]
    return {"model": spec, "data": problem.dataset.fingerprint()[:16]}


def _check_same_content(study: optuna.Study, problem: Problem) -> None:
    recorded = study.user_attrs.get(CONTENT_ATTR)
    if recorded is None:  # a study from before contents were recorded
        return
    changed = [what for what, digest in content_fingerprint(problem).items() if recorded.get(what) != digest]
    if changed:
        raise ConfigError(
            f"study {study.study_name!r}: the {' and '.join(changed)} changed since it began (same names, other "
            "contents); use a new --study name, or restore the original files"
        )


def search_notices(context: SearchContext) -> list[str]:
    """What the user should know before the trials start: whether the validation split can rank them."""
    return ranking_notices(context.baseline.val_accuracy, len(context.problem.dataset.y_val))


def recorded_rate(study: optuna.Study) -> RateChoice | None:
    """The fine-tuning rate a study's trials ran at (None before its first run): a resumed study keeps it, even
    where a newer sweep rule would choose another, so all its trials are fine-tuned alike."""
    recorded = study.user_attrs.get("baseline", {}).get("finetune_learning_rate")
    try:
        return None if recorded is None else RateChoice(**recorded)
    except TypeError:  # written by another version with other fields: the sweep chooses again
        return None


def _record_baseline(study: optuna.Study, context: SearchContext) -> None:
    uncompressed = Candidate.uncompressed(context.graph)
    model = context.problem.cost_model
    device: dict[str, Any] = {}
    # A float model the device does not run (an int8-only NPU without its CPU fallback) has no device cost.
    if model is not None and not model.device.unrunnable(context.graph, uncompressed):
        device = model.cost(context.graph, uncompressed).metrics()
    study.set_user_attr(
        "baseline",
        {
            "val_accuracy": context.baseline.val_accuracy,
            "test_accuracy": context.baseline.test_accuracy,
            "stored_bytes": stored_bytes(context.graph, uncompressed),
            **device,
            "cache_dir": str(context.baseline.cache_dir),
            "finetune_learning_rate": asdict(context.finetune_rate),
        },
    )


def _progress_callback(bar: tqdm, objectives: tuple[str, ...]):
    def callback(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        bar.update(1)
        bar.set_postfix_str(front_summary(study, objectives), refresh=True)

    return callback


def front_summary(study: optuna.Study, objectives: tuple[str, ...]) -> str:
    """The current front in one line: its size, the most accurate member and the cheapest in each cost term."""
    front = [t for t in study.best_trials if _feasible(t)]
    if not front:
        return "no feasible trial yet"
    terms = [term(name) for name in objectives]
    best = max(front, key=lambda t: t.values[0])
    parts = [f"front {len(front)}", f"best acc {best.values[0]:.3f} @ " + _costs(terms, best)]
    for index, cost in enumerate(terms[1:], start=1):
        cheapest = min(front, key=lambda t: t.values[index])
        parts.append(f"cheapest {cost.format(cheapest.values[index])} @ {cheapest.values[0]:.3f}")
    return " | ".join(parts)


def _feasible(trial: optuna.trial.FrozenTrial) -> bool:
    record = TrialRecord.of(trial)
    return record is None or record.feasible


def _costs(terms: list, trial: optuna.trial.FrozenTrial) -> str:
    return ", ".join(cost.format(value) for cost, value in zip(terms[1:], trial.values[1:], strict=True))
