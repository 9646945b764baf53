"""One Vela compile of a ``.tflite``, in a process of its own and a temporary folder, read into a ``VelaEstimate``.

Vela runs as ``python -m ethosu.vela`` rather than through its Python API: its C++ core (regor) ends the process
on some inputs (a segmentation fault on a truncated file, a floating-point exception on INT4 tensors), which
must cost a failed compile, not the caller. Its own defaults are never used: the accelerator, the config file,
the system config and the memory mode are always passed (``VelaConfig.arguments``).
"""

from __future__ import annotations

import signal
import subprocess
import sys
import tempfile
from importlib import metadata
from pathlib import Path

from latency_models.errors import CostModelError
from latency_models.runtimes.vela.config import VelaConfig
from latency_models.runtimes.vela.report import VelaEstimate, read_report
from latency_models.tflite_keys import tensor_layers

TIMEOUT_S = 600
PACKAGE = "ethos-u-vela"


def vela_version() -> str:
    """The installed Vela's version (``5.2.0``)."""
    try:
        return metadata.version(PACKAGE)
    except metadata.PackageNotFoundError:
        raise CostModelError(
            f"Vela is not installed; pip install {PACKAGE}==5.2.0 (pinned in pyproject.toml)"
        ) from None


def compile_model(content: bytes, config: VelaConfig) -> VelaEstimate:
    """Vela's estimate of ``content`` compiled for ``config``; a compile Vela refuses or crashes on raises
    ``CostModelError`` in one line with Vela's reason."""
    version = vela_version()
    with tempfile.TemporaryDirectory(prefix="vela-") as folder:
        model, output = Path(folder) / "model.tflite", Path(folder) / "output"
        model.write_bytes(bytes(content))
        argv = [sys.executable, "-m", "ethosu.vela", str(model), *config.arguments()]
        argv += ["--output-dir", str(output), "--verbose-performance"]  # the per-layer CSV needs the last one
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=TIMEOUT_S, cwd=folder)
        except subprocess.TimeoutExpired:
            raise CostModelError(f"Vela {version} did not finish compiling in {TIMEOUT_S} s") from None
        if done.returncode != 0:
            where = f"{config.accelerator}, {config.system_config}, {config.memory_mode}"
            raise CostModelError(f"Vela {version} cannot compile the model ({where}): {failure(done)}")
        compiled = output / "model_vela.tflite"
        outputs = frozenset(tensor_layers(content))
        written = compiled.read_bytes() if compiled.exists() else b""
        return read_report(output, vela_version=version, compiled=written, outputs=outputs)


def failure(done: subprocess.CompletedProcess[str]) -> str:
    """Why Vela stopped, in one line: the signal that ended it and its last words, or its error line."""
    lines = [line.strip() for line in (done.stderr + "\n" + done.stdout).splitlines() if line.strip()]
    last = lines[-1] if lines else "no output"
    if done.returncode < 0:
        name = signal.Signals(-done.returncode).name
        return f"it crashed ({name}) after printing: {last}" if lines else f"it crashed ({name})"
    errors = [line for line in lines if "Error" in line or "error" in line]
    return errors[-1] if errors else last
