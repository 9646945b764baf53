"""Accepted models, versioned: ``results/<study>/releases/v<k>/`` never changes once written, and
``current.json`` names the version a deployment should run, so it can always roll back.

A new version is written into a hidden staging directory and renamed into place; ``history.json`` records
every acceptance and rollback; ``current.json`` is replaced atomically. Nothing here ever deletes or rewrites a
version directory.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from nas.checkpoint import atomic_write_bytes
from nas.errors import ConfigError


def releases_dir(study_root: Path) -> Path:
    """Where a study's accepted models live."""
    return study_root / "releases"


def history(root: Path) -> list[dict[str, Any]]:
    """Every acceptance and rollback, oldest first."""
    path = root / "history.json"
    return json.loads(path.read_text()) if path.exists() else []


def current_version(root: Path) -> int | None:
    """The version a deployment should run (None before the first acceptance)."""
    path = root / "current.json"
    return int(json.loads(path.read_text())["version"]) if path.exists() else None


def accept(root: Path, files_for: Callable[[int], dict[str, bytes]], summary: dict[str, Any]) -> tuple[int, Path]:
    """Writes the files ``files_for(version)`` gives as the next version and makes it current; returns (version,
    its directory)."""
    root.mkdir(parents=True, exist_ok=True)
    version = 1 + max((int(p.name[1:]) for p in root.glob("v*") if p.name[1:].isdigit()), default=0)
    target = root / f"v{version}"
    staging = Path(tempfile.mkdtemp(dir=root, prefix=f".v{version}."))
    try:
        for name, content in files_for(version).items():
            (staging / name).write_bytes(content)
        staging.rename(target)  # fails rather than overwrite, should another process have taken this version
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    _record(root, {"event": "accepted", "version": version, **summary})
    return version, target


def rollback(root: Path) -> int:
    """Makes the version accepted before the current one current again; returns it."""
    accepted = [event["version"] for event in history(root) if event["event"] == "accepted"]
    current = current_version(root)
    earlier = [v for v in accepted if current is not None and v < current]
    if not earlier:
        raise ConfigError(f"no accepted version before v{current} under {root}; nothing to roll back to")
    _record(root, {"event": "rollback", "version": earlier[-1], "from": current})
    return earlier[-1]


def _record(root: Path, event: dict[str, Any]) -> None:
    event = {**event, "utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    events = [*history(root), event]
    atomic_write_bytes(root / "history.json", lambda handle: handle.write(json.dumps(events, indent=1).encode()))
    pointer = {"version": event["version"], "directory": f"v{event['version']}", "since": event["utc"]}
    atomic_write_bytes(root / "current.json", lambda handle: handle.write(json.dumps(pointer, indent=1).encode()))
