"""One search worker process (``python -m nas.search.worker_process JOB``), started by ``nas.search.workers``: the
study's objective until the study holds the requested number of finished trials."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import optuna
from optuna.study import MaxTrialsCallback
from optuna.trial import TrialState

from nas.activity import searching
from nas.config import SearchConfig
from nas.errors import TrialFailed
from nas.paths import StudyPaths
from nas.search.context import build_context, resolve_problem, with_host_timing
from nas.search.objective import make_objective
from nas.search.study import HOST_TIMING_ATTR, open_study, recorded_rate
from nas.search.workers import WorkerJob, pin_to_given_cores


def work(job: WorkerJob) -> None:
    """One worker: the study's objective until the study holds ``job.trials`` finished trials."""
    config = SearchConfig.from_json(job.config)
    problem = resolve_problem(config, data_dir=Path(job.data_dir) if job.data_dir else None)
    results_dir = Path(job.results_dir)
    study = open_study(config, job.name, job.storage, seed_offset=job.seed_offset)
    # The baseline is cached by now, and the study records the rate the main process chose.
    context = build_context(problem, results_dir=results_dir, finetune_rate=recorded_rate(study))
    # The main process timed the reference at this run's start: every worker's figures are at that speed.
    started = study.user_attrs.get(HOST_TIMING_ATTR)
    context = with_host_timing(context, reference_ms=None if started is None else float(started["reference_ms"]))
    with searching():
        study.optimize(
            make_objective(context, StudyPaths(results_dir, job.name)),
            n_trials=job.trials,
            callbacks=[MaxTrialsCallback(job.trials, states=(TrialState.COMPLETE,))],
            catch=(TrialFailed,),
        )


if __name__ == "__main__":
    pin_to_given_cores()  # before XLA sizes its thread pool on the first computation
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    work(WorkerJob(**json.loads(sys.argv[1])))
