"""A real, small host profile for the cost-model tests: the profiler's micro-models timed in LiteRT."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from latency_models.device import DEVICES_DIR, load_device
from latency_models.table import LatencyTable, load_table
from nas.profiling.run import QUICK_GRID, profile_and_save
from tests.once import built_once


def _profile_host(directory: Path) -> None:
    shutil.copy(DEVICES_DIR / "host.json", directory / "host.json")
    profile_and_save("host", show_progress=False, directory=directory, grid=QUICK_GRID)


@pytest.fixture(scope="session")
def profiled_devices(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, LatencyTable]]:
    """A devices directory holding the host profile and a freshly measured quick-grid table per kernel set
    (measured once per test run, a copy per test process)."""
    directory = built_once(tmp_path_factory, "devices", _profile_host)
    device = load_device("host", directory)
    return directory, {kernels: load_table(device.table_path(kernels, directory)) for kernels in device.kernel_sets}
