"""A private PostgreSQL server on loopback for tests: Debian's package (``scripts/setup_system.sh`` installs it),
started in a temporary directory on a free port with a password-protected user, stopped afterwards."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

USER = "nas"
PASSWORD = "s3cret-pw-that-must-not-leak"
DATABASE = "nas_test"


def binaries() -> Path | None:
    """The directory of ``initdb`` / ``pg_ctl`` (None when the project's setup has not installed PostgreSQL)."""
    return _find()


def _find() -> Path | None:
    on_path = shutil.which("pg_ctl")
    if on_path and shutil.which("initdb"):
        return Path(on_path).resolve().parent
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))
    return versions[-1].parent if versions else None


@contextlib.contextmanager
def server(bin_dir: Path) -> Iterator[str]:
    """Runs a server for the block; yields its URL (``postgresql://nas:<password>@127.0.0.1:<port>/nas_test``)."""
    root = Path(tempfile.mkdtemp(prefix="nas-pg-"))
    as_postgres = os.geteuid() == 0  # the server refuses to run as root
    if as_postgres:
        shutil.chown(root, "postgres", "postgres")
    data, port = root / "data", _free_port()
    (root / "pw").write_text(PASSWORD)
    if as_postgres:
        shutil.chown(root / "pw", "postgres", "postgres")
    run = _runner(as_postgres)
    try:
        run([bin_dir / "initdb", "-D", data, "-U", USER, "--auth=scram-sha-256", f"--pwfile={root / 'pw'}"])
        options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1"
        run([bin_dir / "pg_ctl", "-D", data, "-o", options, "-l", root / "log", "-w", "start"])
        env = {"PGPASSWORD": PASSWORD}
        run([bin_dir / "createdb", "-h", "127.0.0.1", "-p", str(port), "-U", USER, DATABASE], env)
        yield f"postgresql://{USER}:{PASSWORD}@127.0.0.1:{port}/{DATABASE}"
    finally:
        run([bin_dir / "pg_ctl", "-D", data, "-m", "immediate", "stop"], check=False)
        shutil.rmtree(root, ignore_errors=True)


def _runner(as_postgres: bool):
    def run(command, env=None, check=True):
        argv = [str(part) for part in command]
        if as_postgres:
            argv = ["runuser", "-u", "postgres", "--", *argv]
        return subprocess.run(
            argv, env={**os.environ, **(env or {})}, capture_output=True, text=True, timeout=120, check=check
        )

    return run


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
