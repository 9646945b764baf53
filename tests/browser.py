"""Headless Chromium for tests that look at a page as a person would (Debian's package, installed when absent)."""

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
    """The Chromium binary, installing Debian's package first when the machine has none."""
    found = shutil.which("chromium")
    if found is None:
        subprocess.run(["apt-get", "update", "-qq"], check=True, capture_output=True)
        subprocess.run(["apt-get", "install", "-y", "-qq", "chromium"], check=True, capture_output=True)
        found = shutil.which("chromium")
    assert found is not None, "Debian's chromium package did not install"
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
