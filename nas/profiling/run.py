"""``nas profile``: measure a device's tables and write them beside its profile, atomically."""

from __future__ import annotations

from pathlib import Path

from latency_models.device import DEVICES_DIR, load_device
from latency_models.errors import CostModelError
from latency_models.table import LatencyTable, save_table
from nas.profiling.profile import Grid, profile_device

HOST = "host"
QUICK_GRID = Grid(
    per_precision=3,
    spatial=(4, 8),
    conv_in=(3, 8),
    conv_out=(8, 16),
    depthwise=(8, 16),
    dense_in=(16, 64),
    dense_out=(10, 16),
    boundary_shapes=((1, 1, 8), (4, 4, 8), (8, 8, 16)),
)


def profile_and_save(
    name: str,
    *,
    quick: bool = False,
    show_progress: bool = True,
    directory: Path = DEVICES_DIR,
    grid: Grid | None = None,
) -> list[tuple[Path, LatencyTable]]:
    """Profiles device ``name`` on this machine and writes its tables; returns (path, table) pairs.

    Only the tables are replaced, each atomically: a profile that is interrupted leaves the old ones intact.
    """
    device = load_device(name, directory)
    if device.name != HOST:
        raise CostModelError(
            f"device {name!r} cannot be measured on this machine; only 'host' can (the on-device kit for other "
            "devices is not built yet)"
        )
    result = profile_device(device, grid=grid or (QUICK_GRID if quick else None), show_progress=show_progress)
    written = []
    for kernels, table in result.tables.items():
        path = device.table_path(kernels, directory)
        save_table(table, path)
        written.append((path, table))
    return written
