"""Measured energy where the machine has a power counter: Intel RAPL through Linux powercap.

``/sys/class/powercap/intel-rapl:N/energy_uj`` counts the package's energy in microjoules (wrapping at
``max_energy_range_uj``). Energy per inference is the counter's increase over many invokes divided by their
number: the whole package's energy, idle power and other processes included, so it is a measurement of an upper
bound. Where there is no counter (this VM has none) energy stays the analytic power x latency figure.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

POWERCAP = Path("/sys/class/powercap")


def rapl_packages(root: Path = POWERCAP) -> list[Path]:
    """The readable RAPL package domains (``intel-rapl:0``, ...; not their sub-domains)."""
    if not root.is_dir():
        return []
    found = []
    for domain in sorted(root.glob("intel-rapl:*")):
        if domain.name.count(":") == 1 and _readable(domain / "energy_uj"):
            found.append(domain)
    return found


def _readable(path: Path) -> bool:
    try:
        int(path.read_text())
    except (OSError, ValueError):
        return False
    return True


def _counter(domain: Path) -> int:
    return int((domain / "energy_uj").read_text())


def measure_energy_mj(run: Callable[[], None], invokes: int, root: Path = POWERCAP) -> float | None:
    """Energy per inference in mJ while ``run()`` performs ``invokes`` inferences (None: no counter here)."""
    packages = rapl_packages(root)
    if not packages or invokes < 1:
        return None
    before = [_counter(domain) for domain in packages]
    run()
    total_uj = 0
    for domain, start in zip(packages, before, strict=True):
        end = _counter(domain)
        if end < start:  # the counter wrapped around once
            end += int((domain / "max_energy_range_uj").read_text())
        total_uj += end - start
    return total_uj / 1000 / invokes
