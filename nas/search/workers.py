"""Several processes on one study: ``nas search --workers N`` here, or the same command on several machines
sharing one storage URL. Optuna's storage is the only coordinator (no scheduler of our own):

- each worker runs its own sampler, seeded apart, and stops when the study holds the requested number of
  finished trials (Optuna's ``MaxTrialsCallback``; up to N-1 more may finish while it stops);
- the baseline is built once, before any worker starts (and behind a lock for workers on several machines
  sharing a results directory, ``nas.training.train``);
- every trial records its worker (``host:pid``): a resumed run marks a RUNNING trial failed only when its
  worker is a dead process on this machine; a worker on another machine that died is found by Optuna's
  heartbeat (``nas.search.storage``);
- each process gets an equal share of the cores (CPU affinity, and single-threaded XLA with one core), so N
  workers do not oversubscribe the machine.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import optuna
from optuna.study import MaxTrialsCallback
from optuna.trial import TrialState

from nas.activity import searching
from nas.config import SearchConfig
from nas.errors import ConfigError, TrialFailed
from nas.paths import StudyPaths

WORKER_ATTR = "worker"
SEED_STRIDE = 7919  # worker k samples with seed + k * stride: apart from each other and from resumed runs


def worker_identity() -> str:
    """``host:pid`` of this process, recorded on each trial it runs."""
    return f"{socket.gethostname()}:{os.getpid()}"


def fail_dead_workers_trials(study: optuna.Study) -> list[int]:
    """Marks failed the RUNNING trials whose worker was a process on this machine that no longer runs, and
    those that never named a worker (a process killed in the instant between starting a trial and naming
    itself, the first thing every trial does)."""
    host = socket.gethostname()
    failed = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        worker = str(trial.user_attrs.get(WORKER_ATTR, ""))
        owner, _, pid = worker.rpartition(":")
        unnamed = not worker
        if unnamed or (owner == host and pid.isdigit() and not _alive(int(pid))):
            # Optuna's public route (fail_stale_trials) waits for a heartbeat to go stale; this one is known dead.
            study._storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)
            failed.append(trial.number)
    return failed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    cmdline = Path(f"/proc/{pid}/cmdline")
    # A recycled pid belongs to some other program: only a Python process can be one of our workers.
    return not cmdline.exists() or b"python" in cmdline.read_bytes() or b"nas" in cmdline.read_bytes()


@dataclass(frozen=True, kw_only=True)
class WorkerJob:
    """What one worker process needs: the study's settings and where it lives."""

    config: str  # SearchConfig as JSON
    name: str
    trials: int
    results_dir: str
    storage: str
    index: int
    seed_offset: int
    data_dir: str | None


def cores_of(index: int, workers: int) -> set[int]:
    """The CPUs worker ``index`` of ``workers`` may use: an equal, disjoint share (all of them for one)."""
    cpus = sorted(os.sched_getaffinity(0))
    share = max(1, len(cpus) // workers)
    start = (index * share) % len(cpus)
    return set(cpus[start : start + share]) or set(cpus)


def spawn(job: WorkerJob, workers: int, log: Path) -> subprocess.Popen:
    """Starts a worker process for ``job``; its output goes to ``log``."""
    cores = cores_of(job.index, workers)
    env = dict(os.environ)
    if len(cores) == 1:  # XLA's thread pool would otherwise size itself to the whole machine
        env["XLA_FLAGS"] = f"{env.get('XLA_FLAGS', '')} --xla_cpu_multi_thread_eigen=false".strip()
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as handle:
        return subprocess.Popen(
            [sys.executable, "-m", "nas.search.workers", json.dumps(job.__dict__)],
            env=env,
            stdout=handle,
            stderr=handle,
            preexec_fn=lambda: os.sched_setaffinity(0, cores),
        )


def wait_for(processes: list[subprocess.Popen], logs: list[Path], on_poll) -> None:
    """Waits for every worker, calling ``on_poll()`` every second; a worker that fails is reported."""
    while any(p.poll() is None for p in processes):
        on_poll()
        time.sleep(1.0)
    on_poll()
    failed = [(i, p.returncode) for i, p in enumerate(processes) if p.returncode != 0]
    if failed:
        index, code = failed[0]
        tail = logs[index].read_text(errors="replace").strip().splitlines()[-1:] or ["(no output)"]
        raise ConfigError(f"search worker {index} exited with code {code}: {tail[0]} (log: {logs[index]})")


def work(job: WorkerJob) -> None:
    """One worker: the study's objective until the study holds ``job.trials`` finished trials."""
    from nas.search.context import build_context, resolve_problem
    from nas.search.objective import make_objective
    from nas.search.study import open_study

    config = SearchConfig.from_json(job.config)
    problem = resolve_problem(config, data_dir=Path(job.data_dir) if job.data_dir else None)
    results_dir = Path(job.results_dir)
    context = build_context(problem, results_dir=results_dir)  # the baseline is cached by now
    study = open_study(config, job.name, job.storage, seed_offset=job.seed_offset)
    with searching():
        study.optimize(
            make_objective(context, StudyPaths(results_dir, job.name)),
            n_trials=job.trials,
            callbacks=[MaxTrialsCallback(job.trials, states=(TrialState.COMPLETE,))],
            catch=(TrialFailed,),
        )


if __name__ == "__main__":
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    work(WorkerJob(**json.loads(sys.argv[1])))
