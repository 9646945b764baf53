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
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from nas.errors import ConfigError

CORES_VARIABLE = "NAS_WORKER_CORES"
SEED_STRIDE = 7919  # worker k samples with seed + k * stride: apart from each other and from resumed runs


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
    """Starts a worker process for ``job``; its output goes to ``log``. The worker pins itself to its cores
    (``CORES_VARIABLE``) before it computes anything: a ``preexec_fn`` would run in the forked child of this
    multithreaded process, which JAX warns about on the user's console, and rightly (it can deadlock)."""
    cores = cores_of(job.index, workers)
    env = dict(os.environ, **{CORES_VARIABLE: ",".join(map(str, sorted(cores)))})
    if len(cores) == 1:  # XLA's thread pool would otherwise size itself to the whole machine
        env["XLA_FLAGS"] = f"{env.get('XLA_FLAGS', '')} --xla_cpu_multi_thread_eigen=false".strip()
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as handle:
        return subprocess.Popen(
            [sys.executable, "-m", "nas.search.worker_process", json.dumps(job.__dict__)],
            env=env,
            stdout=handle,
            stderr=handle,
        )


def pin_to_given_cores() -> None:
    """Restricts this worker process to the cores ``spawn`` gave it (nothing when none were given)."""
    given = os.environ.get(CORES_VARIABLE, "")
    if given:
        os.sched_setaffinity(0, {int(core) for core in given.split(",")})


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
