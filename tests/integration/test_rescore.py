"""One study, many devices: re-scoring a real study for other devices keeps accuracies and changes costs,
feasibility and the front; the cross-device plot and the cost-across-devices table; selection for a service
level, accepted versions and rollback."""

from __future__ import annotations

import hashlib
import json
import shutil

import optuna
import pandas as pd
import pytest

from latency_models.device import DEVICES_DIR, load_device
from nas.analysis.report import compare_studies
from nas.analysis.rescore import budgets_for, rescore_study
from nas.cli import main
from nas.config import SearchConfig
from tests.browser import screenshot

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


def test_select_accepts_versions_explains_shortfalls_and_rolls_back(study_dir, capsys):
    results = str(study_dir)
    base = ["select", "--study", "multi", "--results-dir", results]
    code = main([*base, "--max-latency-ms", "1000"])
    out = capsys.readouterr().out
    assert code == 0 and "is the most accurate of the" in out and "accepted as v1" in out
    releases = study_dir / "multi" / "releases"
    card = json.loads((releases / "v1" / "model_card.json").read_text())
    assert card["parity"]["passed"] and card["figures"]["latency_ms"]["provenance"] in ("measured", "fitted")
    assert set(card["hashes"]) >= {"model_sha256", "dataset_sha256", "spec_sha256", "cost_model"}
    assert card["command"].startswith("nas select") and card["audit"]["classes"]
    model = (releases / "v1" / "model.tflite").read_bytes()
    assert hashlib.sha256(model).hexdigest() == card["hashes"]["model_sha256"]
    assert "## Accuracy and who pays" in (releases / "v1" / "model_card.md").read_text()

    assert main([*base, "--max-latency-ms", "1000"]) == 0  # the same choice again: nothing new
    assert "current version already" in capsys.readouterr().out and not (releases / "v2").exists()

    assert main([*base, "--max-latency-ms", "1e-9"]) == 1  # nothing qualifies: the binding limit, nothing written
    err = capsys.readouterr().err
    assert "nothing selected: no front point meets --max-latency-ms 1e-09" in err and not (releases / "v2").exists()

    front = rescore_study(_study(study_dir), "host").front
    fastest = front.sort_values("latency_ms").iloc[0]
    assert len(front) >= 2 and int(fastest["number"]) != card["trial"]  # the seeded study's front
    # The fastest point, whatever its accuracy: a collapsed one is accepted only when asked.
    limit = ["--max-latency-ms", str(float(fastest["latency_ms"]) * 1.000001)]
    assert main([*base, *limit, "--allow-collapsed"]) == 0
    assert "accepted as v2" in capsys.readouterr().out
    assert main([*base, "--rollback"]) == 0
    assert json.loads((releases / "current.json").read_text())["version"] == 1
    assert (releases / "v2" / "model.tflite").exists()  # rolled back from, never deleted
    events = json.loads((releases / "history.json").read_text())
    assert [e["event"] for e in events] == ["accepted", "accepted", "rollback"]
    assert main([*base, "--rollback"]) == 2  # nothing before v1
    assert "nothing to roll back to" in capsys.readouterr().err


def test_compare_gates_a_study_whose_front_regresses(study_dir, capsys):
    results = str(study_dir)
    # The same seed: the short study's two trials are the long study's first two, so its front is no better.
    assert main(["search", "--study", "short", "--trials", "2", "--results-dir", results, *QUICK]) == 0
    capsys.readouterr()
    assert main(["compare", "short", "multi", "--results-dir", results]) == 0
    assert "B does not regress" in capsys.readouterr().out
    code = main(["compare", "multi", "short", "--results-dir", results])
    capsys.readouterr()
    result, device = compare_studies("multi", "short", device=None, tolerance=0.01, results_dir=study_dir)
    assert device == "host" and result.hypervolume_b <= result.hypervolume_a
    assert code == (1 if result.regressed else 0)
    assert main(["compare", "multi", "short", "--results-dir", results, "--device", "rpi4"]) in (0, 1)
    assert "on rpi4:" in capsys.readouterr().out


def test_baselines_are_built_costed_judged_and_drawn(study_dir, capsys):
    results = str(study_dir)
    assert main(["baselines", "--study", "multi", "--results-dir", results]) == 0
    out = capsys.readouterr().out
    points = {p["name"]: p for p in json.loads((study_dir / "multi" / "baselines.json").read_text())["points"]}
    assert set(points) == {
        "fp32",
        "int8_ptq",
        "int8_qat",
        "prune50_int8",
        "scratch_w0.5_fp32",
        "scratch_w0.5_int8",
        "scratch_w0.25_fp32",
        "scratch_w0.25_int8",
    }
    assert points["int8_ptq"]["metrics"]["finetuned"] is False and points["int8_qat"]["metrics"]["finetuned"] is True
    assert {p["sparsity"] for p in points["prune50_int8"]["candidate"].values()} == {0.5}
    fp32, small = points["fp32"]["metrics"], points["scratch_w0.25_fp32"]["metrics"]
    assert small["stored_bytes"] < fp32["stored_bytes"] and small["latency_ms"] < fp32["latency_ms"]
    assert points["int8_qat"]["metrics"]["provenance"]["latency_ms"] in ("measured", "fitted")
    assert "front: " in out and "runnable baselines at no more cost" in out
    assert main(["plot", "--study", "multi", "--results-dir", results]) == 0  # baselines drawn on pareto.png


def test_the_study_report_holds_every_section_and_renders_in_a_browser(study_dir, tmp_path, capsys):
    assert main(["report", "--study", "multi", "--results-dir", str(study_dir)]) == 0
    page = study_dir / "multi" / "report.html"
    text = page.read_text()
    for title in (
        "Summary",
        "Fronts per device, with baselines",
        "Hypervolume history",
        "Per-layer configurations of the front",
        "Diagnostics",
        "Per-class audit (test split)",
        "Robustness under degraded input (test split)",
        "Export verification",
        "Provenance",
    ):
        assert f"<h2>{title}</h2>" in text
    assert text.count("data:image/png;base64,") >= 4  # self-contained: every image inlined
    assert "http://" not in text and "https://" not in text  # nothing to fetch
    assert "## Per-class audit (test split)" in (study_dir / "multi" / "report.md").read_text()
    shot = screenshot(page, tmp_path / "report.png")
    ink = (shot[..., :3].mean(axis=-1) < 0.9).mean()
    assert 0.02 < ink < 0.6  # text, tables and plots drawn, not a blank (or black) page
