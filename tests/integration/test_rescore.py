"""One study, many devices: re-scoring a real study for other devices keeps accuracies and changes costs,
feasibility and the front; the cross-device plot and the cost-across-devices table."""

from __future__ import annotations

import json
import shutil

import optuna
import pandas as pd
import pytest

from latency_models.device import DEVICES_DIR, load_device
from nas.analysis.rescore import budgets_for, rescore_study
from nas.cli import main
from nas.config import SearchConfig

pytestmark = pytest.mark.slow
QUICK = ["--epochs", "10", "--steps", "20", "--no-progress"]


@pytest.fixture(scope="module")
def study_dir(tmp_path_factory: pytest.TempPathFactory):
    """A small host-latency study on digits (the default problem)."""
    results = tmp_path_factory.mktemp("results")
    assert main(["search", "--study", "multi", "--trials", "8", "--results-dir", str(results), *QUICK]) == 0
    return results


def _study(results) -> optuna.Study:
    return optuna.load_study(study_name="multi", storage=f"sqlite:///{results / 'multi' / 'study.db'}")


def test_rescoring_for_the_study_device_reproduces_the_recorded_costs(study_dir):
    study = _study(study_dir)
    rescored = rescore_study(study, "host")
    for trial in study.get_trials(states=(optuna.trial.TrialState.COMPLETE,)):
        row = rescored.trials.set_index("number").loc[trial.number]
        assert row["latency_ms"] == pytest.approx(trial.user_attrs["metrics"]["latency_ms"], rel=1e-9)
        assert row["accuracy"] == trial.user_attrs["metrics"]["val_accuracy"]


def test_rescoring_for_a_microcontroller_keeps_accuracies_and_changes_costs_and_feasibility(study_dir, tmp_path):
    study = _study(study_dir)
    host = rescore_study(study, "host").trials.set_index("number")
    devices = tmp_path / "devices"
    devices.mkdir()
    shutil.copy(DEVICES_DIR / "host.json", devices / "host.json")
    tiny = json.loads((DEVICES_DIR / "stm32h7.json").read_text())
    ram = sorted(host["ram_bytes"].dropna())
    # A Cortex-M7 that runs every precision the host does, so that RAM alone decides: half the arenas do not fit.
    host_precisions = json.loads((DEVICES_DIR / "host.json").read_text())["precisions"]
    tiny.update(name="tiny_mcu", ram_bytes=int(ram[len(ram) // 2]), precisions=host_precisions)
    (devices / "tiny_mcu.json").write_text(json.dumps(tiny))
    mcu = rescore_study(study, "tiny_mcu", directory=devices)
    trials = mcu.trials.set_index("number")
    assert (trials["accuracy"] == host["accuracy"]).all()
    runnable = trials["latency_ms"].notna()
    assert runnable.any() and (trials.loc[runnable, "latency_ms_provenance"] == "analytic").all()
    assert (trials.loc[runnable, "latency_ms"] > 5 * host.loc[runnable, "latency_ms"]).all()  # a 480 MHz MCU
    device = load_device("tiny_mcu", devices)
    over = trials["ram_bytes"] > device.ram_bytes
    assert over.any() and (trials["feasible"] == ~over).all()
    assert trials.loc[over, "infeasible_because"].str.contains("RAM").all()
    assert set(mcu.front["number"]) <= set(trials.index[~over])
    assert mcu.budgets["ram_bytes"] == device.ram_bytes and "flash_bytes" in mcu.budgets
    # The real STM32H7 profile runs float, int8 and int16 activations: 16-bit or 4-bit weights make a trial infeasible.
    stm32 = rescore_study(study, "stm32h7").trials
    unrunnable = stm32["infeasible_because"].fillna("").str.contains("stm32h7 does not run")
    assert unrunnable.any() and stm32.loc[unrunnable, "latency_ms"].isna().all()


def test_budgets_the_user_set_stay_and_device_limits_are_replaced():
    stm32 = load_device("stm32h7")
    config = SearchConfig(device="stm32h7", budgets={"ram_bytes": float(stm32.ram_bytes), "stored_bytes": 5000.0})
    budgets = budgets_for(config, load_device("nrf52840"))
    assert budgets == {"ram_bytes": 262144.0, "flash_bytes": 1048576.0, "stored_bytes": 5000.0}
    assert budgets_for(config, load_device("host")) == {"stored_bytes": 5000.0}


def test_the_cli_rescores_plots_devices_side_by_side_and_tables_a_trial_across_devices(study_dir, capsys):
    results = str(study_dir)
    assert main(["pareto", "--study", "multi", "--results-dir", results, "--device", "rpi4"]) == 0
    out = capsys.readouterr().out
    assert "re-scored for rpi4 [xnnpack], latency analytic" in out and "latency (us, analytic)" in out
    front = pd.read_csv(study_dir / "multi" / "front.rpi4.csv")
    assert front["test_accuracy"].between(0, 1).all() and (front["device"] == "rpi4").all()
    assert main(["plot", "--study", "multi", "--results-dir", results, "--devices", "host,rpi4,stm32h7"]) == 0
    assert (study_dir / "multi" / "pareto_devices.png").read_bytes()[:4] == b"\x89PNG"
    capsys.readouterr()
    number = str(int(front["number"][0]))
    assert main(["estimate", "--study", "multi", "--trial", number, "--results-dir", results, "--device", "all"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split()[:2] == ["device", "kernels"]
    rows = {line.split()[0]: line for line in table[1:]}
    assert set(rows) >= {"host", "rpi4", "stm32h7", "coral_usb", "nrf52840", "esp32s3", "android_a76"}
    assert ("(analytic)" in rows["rpi4"] and "(fitted)" in rows["host"]) or "(measured)" in rows["host"]
