"""A search for an Ethos-U NPU costs every fine-tuned trial's exported file with Vela, inside the trial."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from optuna.trial import TrialState

from latency_models.device import load_device
from latency_models.errors import CostModelError
from latency_models.runtimes import runtime_named
from nas.cli import main
from nas.runtime.export import CALIBRATION_EXAMPLES, export_candidate
from nas.search.record import TrialRecord
from nas.search.saved import SavedStudy
from search_spaces.space import Candidate
from search_spaces.techniques import technique_of_param
from search_spaces.techniques.channel_keep import kept_count

pytestmark = pytest.mark.slow
U55 = "ethos_u55_128"
SOURCE = "Vela 5.2.0 (Ethos_U55_High_End_Embedded, Shared_Sram)"


def test_every_trial_is_costed_by_vela_and_keeps_its_prediction(tmp_path, capsys):
    results = tmp_path / "results"
    quick = ["--epochs", "3", "--steps", "5", "--finetune-lr", "1e-3", "--no-progress"]
    assert (
        main(["search", "--study", "npu", "--device", U55, "--trials", "2", *quick, "--results-dir", str(results)]) == 0
    )
    capsys.readouterr()
    saved = SavedStudy.open("npu", results, None)
    trials = saved.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    assert len(trials) == 2
    vela, device, problem = runtime_named("vela"), load_device(U55), saved.problem()
    for trial in trials:
        record = TrialRecord.of(trial)
        assert record is not None and record.finetuned
        # The NPU's time is Vela's; the CPU side (invoke, input conversion) the profile's analytic terms.
        assert record.provenance["latency_ms"].startswith(f"analytic ({SOURCE} for the NPU, ")
        assert record.provenance["ram_bytes"] == f"estimated by {SOURCE}"
        assert record.provenance["flash_bytes"] == "exact" and "toolchain" in record.seconds
        assert set(record.predicted) == {"latency_ms", "energy_mj", "flash_bytes", "ram_bytes"}
        assert record.predicted["latency_ms"] != record.figures["latency_ms"]
        # The figures are Vela's estimate of the trial's own file: exported again, it is the same file.
        params, compression = saved.trial_weights(trial.number)
        candidate = Candidate.from_dict(trial.user_attrs["candidate"])
        calibration = problem.dataset.x_train[:CALIBRATION_EXAMPLES]
        content = export_candidate(problem.graph, params, compression, candidate, calibration).content
        report = vela.estimate(content, device)
        # The CPU side: the invoke and the input's conversion (to int8 or int16, as the first layer takes it).
        npu_us = sum(
            us for name, us in record.latency_us.items() if name != "invoke" and not name.startswith("input->")
        )
        assert npu_us == pytest.approx(report.inference_ms * 1000, rel=1e-3)
        assert record.figures["ram_bytes"] == report.sram_bytes
        assert record.figures["latency_ms"] > report.inference_ms  # the CPU side is added, not dropped
    # Exported for the NPU: the Vela-compiled model and its per-layer report beside the .tflite.
    assert main(["export", "--study", "npu", "--knee", "--results-dir", str(results)]) == 0
    printed = capsys.readouterr().out
    (record,) = json.loads((results / "npu" / "verification.json").read_text()).values()
    compiled = record["device_compile"]
    assert compiled["compiler"] == f"estimated by {SOURCE}" and compiled["npu_operators"] > 0
    assert Path(compiled["model"]).read_bytes()[4:8] == b"TFL3" and Path(compiled["model"]).stem.endswith("_vela")
    assert "Original Operator" in Path(compiled["report"]).read_text()
    assert [operator.endswith("(Quantize)") for operator in compiled["cpu_operators"]] == [True]  # the input's
    assert "compiled for the NPU" in printed and f"estimated by {SOURCE}" in printed
    assert record["device_figures"]["figures"]["latency_ms"]["provenance"].startswith(f"analytic ({SOURCE}")


def test_a_search_for_the_u55_prunes_channels_in_whole_blocks_of_its_granule(tmp_path, capsys):
    results = tmp_path / "results"
    quick = ["--epochs", "3", "--steps", "5", "--finetune-lr", "1e-3", "--no-progress"]
    assert (
        main(["search", "--study", "snap", "--device", U55, "--trials", "6", *quick, "--results-dir", str(results)])
        == 0
    )
    capsys.readouterr()
    saved = SavedStudy.open("snap", results, None)
    graph, granule = saved.problem().graph, load_device(U55).channel_granule
    keep = technique_of_param("x.keep")
    counts = set()
    for trial in saved.study.trials:
        candidate = Candidate.from_dict(trial.user_attrs["candidate"])
        for leader in keep.knob_layers(graph):
            size = leader.out_channels
            counts.add((size, kept := kept_count(size, candidate.policy(leader.name).channel_keep)))
            assert kept % granule == 0 or kept == size, (trial.number, leader.name, kept)
    assert any(kept < size for size, kept in counts)  # the search did prune, in whole blocks


def test_the_cpu_fallback_variant_searches_float_layers_costed_on_the_cpu(tmp_path, capsys):
    fallback = load_device(f"{U55}+cpu")
    assert fallback.runs("conv", 32, 32) and fallback.runs("conv", 8, 32) and not load_device(U55).runs("conv", 32, 32)
    assert fallback.vela == load_device(U55).vela and fallback.channel_granule == 8  # the same system
    with pytest.raises(CostModelError, match=r"^device 'stm32h7' has no CPU fallback .*ethos_u55_128, ethos_u65"):
        load_device("stm32h7+cpu")
    results = tmp_path / "results"
    quick = ["--epochs", "3", "--steps", "5", "--finetune-lr", "1e-3", "--no-progress", "--results-dir", str(results)]
    assert main(["search", "--study", "cpu", "--device", f"{U55}+cpu", "--trials", "6", *quick]) == 0
    capsys.readouterr()
    saved = SavedStudy.open("cpu", results, None)
    assert saved.study.user_attrs["baseline"]["latency_ms"] > 0  # the float baseline runs (on the CPU): a cost
    float_trials = 0
    for trial in saved.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        record = TrialRecord.of(trial)
        assert record is not None and "toolchain" in record.seconds
        on_cpu = [name for name, policy in trial.user_attrs["candidate"].items() if policy["activation_bits"] == 32]
        float_trials += bool(on_cpu)
        assert all(record.latency_us[name] > 0 for name in on_cpu)  # costed by the profile, not left out
    assert float_trials  # six trials of this space draw a float layer
