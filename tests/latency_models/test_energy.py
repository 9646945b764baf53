"""RAPL energy reading on a powercap tree laid out as Linux does (real files in a temporary directory)."""

from pathlib import Path

from latency_models.energy import POWERCAP, measure_energy_mj, rapl_packages


def _domain(root: Path, name: str, energy_uj: int, max_uj: int = 1_000_000) -> Path:
    domain = root / name
    domain.mkdir()
    (domain / "energy_uj").write_text(f"{energy_uj}\n")
    (domain / "max_energy_range_uj").write_text(f"{max_uj}\n")
    return domain


def test_energy_per_inference_from_the_package_counters_with_wraparound(tmp_path):
    package = _domain(tmp_path, "intel-rapl:0", 900_000)
    _domain(tmp_path, "intel-rapl:0:0", 5)  # a sub-domain (cores): part of the package, not added again
    assert rapl_packages(tmp_path) == [package]

    def run() -> None:  # 100 inferences that used 0.3 J, crossing the counter's 1 J range once
        (package / "energy_uj").write_text("200000\n")

    assert measure_energy_mj(run, 100, tmp_path) == 3.0  # 300,000 uJ / 100 inferences


def test_no_counter_means_no_measured_energy(tmp_path):
    assert measure_energy_mj(lambda: None, 10, tmp_path / "absent") is None
    if not POWERCAP.exists():  # this machine: energy can only be analytic
        assert rapl_packages() == []
