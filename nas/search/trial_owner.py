"""Which process ran a trial: every trial records its worker (``host:pid``), so a resumed run can tell a trial
whose worker died on this machine from one another machine still runs."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import optuna
from optuna.trial import TrialState

WORKER_ATTR = "worker"


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
