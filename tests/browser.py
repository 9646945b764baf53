"""Headless Chromium for tests that look at a page as a person would (Debian's package, which
``scripts/setup_system.sh`` installs; ``scripts/test.sh`` runs it first)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
from matplotlib import image as mpimg

FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


def chromium() -> str:
    """The Chromium binary (the project's setup installs it; a test never installs a system package)."""
    found = shutil.which("chromium")
    assert found is not None, "no chromium on this machine: run `bash scripts/setup_system.sh` as root"
    return found


def screenshot(page: Path, out: Path, size: tuple[int, int] = (1200, 4000)) -> np.ndarray:
    """A screenshot of ``page`` (a local file) as an RGB(A) array."""
    profile = out.parent / f".{out.stem}-profile"
    command = [
        chromium(),
        *FLAGS,
        f"--user-data-dir={profile}",
        f"--screenshot={out}",
        f"--window-size={size[0]},{size[1]}",
        page.resolve().as_uri(),
    ]
    subprocess.run(command, check=True, capture_output=True, timeout=180)
    shutil.rmtree(profile, ignore_errors=True)
    return mpimg.imread(out)
