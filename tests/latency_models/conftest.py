"""A real, small host profile for the cost-model tests: the profiler's micro-models timed in LiteRT."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from latency_models.device import DEVICES_DIR
from latency_models.table import LatencyTable
from nas.profiling.run import QUICK_GRID, profile_and_save


@pytest.fixture(scope="session")
def profiled_devices(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, LatencyTable]]:
    """A devices directory holding the host profile and a freshly measured quick-grid table per kernel set."""
    directory = tmp_path_factory.mktemp("devices")
    shutil.copy(DEVICES_DIR / "host.json", directory / "host.json")
    written = profile_and_save("host", show_progress=False, directory=directory, grid=QUICK_GRID)
    return directory, {table.kernel_set: table for _, table in written}
