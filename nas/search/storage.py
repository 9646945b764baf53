"""Where a study lives: an Optuna RDB URL (``sqlite:///...`` by default, ``postgresql://user:pw@host/db`` for
several machines) or Optuna's journal file (``journal:///path/to/study.log``), opened the one way every
command shares; and the URL as it may be shown, without its password.

Searching workers open RDB storages with Optuna's heartbeat, so a trial whose worker died on another machine
is marked failed once its heartbeat is ``GRACE_PERIOD_S`` old (workers on this machine are checked directly,
``nas.search.workers``).
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Sequence
from pathlib import Path

import optuna
from optuna.storages import BaseStorage, JournalStorage, RDBStorage
from optuna.storages.journal import JournalFileBackend
from optuna.trial import TrialState

from nas.errors import ConfigError
from nas.locks import exclusive

JOURNAL_PREFIX = "journal://"
HEARTBEAT_INTERVAL_S = 30
GRACE_PERIOD_S = 120
SQLITE_LOCK_TIMEOUT_S = 60


def optuna_storage(url: str, *, heartbeat: bool = False) -> BaseStorage:
    """The Optuna storage of ``url``; refuses a malformed or unreachable one in one line."""
    if url.startswith(JOURNAL_PREFIX):
        path = url.removeprefix(JOURNAL_PREFIX)
        if not path:
            raise ConfigError(f"storage {url!r}: name the journal file, e.g. journal:///path/to/study.log")
        return JournalStorage(JournalFileBackend(path))
    if "://" not in url:
        raise ConfigError(
            f"storage {redacted(url)!r} is not a URL; use sqlite:///file.db, postgresql://user@host/db "
            "or journal:///file.log"
        )
    beat = {"heartbeat_interval": HEARTBEAT_INTERVAL_S, "grace_period": GRACE_PERIOD_S} if heartbeat else {}
    sqlite = url.startswith("sqlite")
    # Several workers on one SQLite file wait for its lock instead of failing at once.
    engine = {"connect_args": {"timeout": SQLITE_LOCK_TIMEOUT_S}} if sqlite else None
    kind = SqliteStorage if sqlite else RDBStorage
    try:
        with warnings.catch_warnings():  # the heartbeat is "experimental" in Optuna 5; it is what we rely on
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return kind(url, engine_kwargs=engine, **beat)  # type: ignore[arg-type]
    except Exception as err:  # SQLAlchemy raises many types for bad URLs, missing drivers, refused connections
        raise ConfigError(f"cannot open storage {redacted(url)}: {safe_message(err, url)}") from None


class SqliteStorage(RDBStorage):
    """Optuna's RDB storage on a SQLite file, with one fix for several processes on it: a trial is taken (WAITING
    to RUNNING) under a lock file beside the database.

    Optuna takes a waiting trial (an enqueued one: every new study's uniform int8 seed) by reading its state and
    writing RUNNING if it still waits. PostgreSQL locks the row it read (``SELECT ... FOR UPDATE``); SQLite
    ignores that, so two workers could both read WAITING and both run the trial, and the second to finish
    failed on "Cannot tell a COMPLETE trial" (seen with ``--workers 2`` on four quick trials).
    """

    def set_trial_state_values(self, trial_id: int, state: TrialState, values: Sequence[float] | None = None) -> bool:
        """As Optuna's, with taking a trial serialized across the processes of this machine."""
        database = self.engine.url.database
        if state != TrialState.RUNNING or not database or database == ":memory:":
            return super().set_trial_state_values(trial_id, state, values)
        with exclusive(Path(f"{database}.take-lock")):
            return super().set_trial_state_values(trial_id, state, values)


def redacted(url: str) -> str:
    """``url`` with any password replaced by ``***`` (``postgresql://user:***@host/db``)."""
    return re.sub(r"(://[^:/@]+:)[^@]*@", r"\1***@", url)


def safe_message(err: BaseException, url: str) -> str:
    """The first line of ``err`` with ``url``'s password removed wherever it appears."""
    text = _first_line(err)
    password = re.search(r"://[^:/@]+:([^@]*)@", url)
    return text.replace(password.group(1), "***") if password and password.group(1) else text


def _first_line(err: BaseException) -> str:
    lines = str(err).strip().splitlines()
    return lines[0] if lines else type(err).__name__
