"""Whole-model parity on digits, and the export / verify commands end to end."""

from __future__ import annotations

import json
import shutil

import jax.numpy as jnp
import numpy as np
import pytest

from latency_models.device import load_device
from nas.checkpoint import save_tree
from nas.cli import main
from nas.compress.compression import build_compression
from nas.compress.shrink import shrink
from nas.config import FinetuneConfig, TrainConfig
from nas.deploy.study_export import divergence_report
from nas.errors import ConfigError
from nas.runtime.export import export_candidate, float_tflite, quantized_tflite
from nas.runtime.verify import Reference, check_kernels
from nas.search.objective import load_trial_weights
from nas.training.finetune import calibrate, finetune, logits, make_trainer
from nas.training.train import train_baseline
from search_spaces.graph import analyze
from search_spaces.space import Candidate, LayerPolicy
from search_spaces.spec import load_model_spec

pytestmark = pytest.mark.slow


def _uniform(graph, w, a, sparsity=0.0, keep=1.0, **overrides):
    def policy(name):
        w_bits, a_bits = overrides.get(name, (w, a))
        return LayerPolicy(sparsity=sparsity, channel_keep=keep, weight_bits=w_bits, activation_bits=a_bits)

    return Candidate(policies=tuple((layer.name, policy(layer.name)) for layer in graph.compressible))


CANDIDATES = {
    "fp32": lambda g: _uniform(g, 32, 32),
    "uniform int8": lambda g: _uniform(g, 8, 8),
    "int16 activations": lambda g: _uniform(g, 8, 16),
    "mixed int4/int8/fp16": lambda g: _uniform(g, 8, 8, conv1=(16, 32), conv2=(4, 8), fc=(8, 8)),
    "50% sparse + channel pruned": lambda g: _uniform(g, 8, 8, sparsity=0.5, keep=0.5),
}


@pytest.mark.parametrize("label", sorted(CANDIDATES))
def test_whole_model_parity_on_digits(label, cnn_graph, cnn_baseline, digits):
    trainer = make_trainer(cnn_graph, FinetuneConfig())  # the default K, as in a search
    candidate = CANDIDATES[label](cnn_graph)
    compression = build_compression(cnn_graph, cnn_baseline.params, candidate)
    params, compression = finetune(
        trainer, cnn_baseline.params, compression, jnp.asarray(digits.x_train), jnp.asarray(digits.y_train), seed=0
    )
    reference = Reference(logits=logits(trainer, params, compression, digits.x_test), labels=digits.y_test)
    low, high = reference.accuracy_bounds
    assert high - low < 0.02  # ties are rare enough that the JAX accuracy is well defined
    model = export_candidate(cnn_graph, params, compression, candidate, digits.x_train[:32])
    for check in check_kernels(model.content, digits.x_test, digits.y_test, reference):
        assert low - 0.005 <= check.accuracy <= high + 0.005, (check.delegate, check.accuracy, low, high)
        assert check.agreement >= 0.99, (check.delegate, check.agreement)
        assert check.passed


def test_export_and_verify_commands(tmp_path, capsys):
    results = tmp_path / "results"
    quick = ["--epochs", "10", "--steps", "30", "--no-progress", "--results-dir", str(results)]
    assert main(["search", "--study", "ex", "--trials", "3", *quick]) == 0
    shutil.rmtree(results / "baselines")  # export and pareto use saved trials: they must not retrain it
    assert main(["export", "--study", "ex", "--knee", "--results-dir", str(results)]) == 0
    assert main(["pareto", "--study", "ex", "--results-dir", str(results)]) == 0
    assert not (results / "baselines").exists()
    records = json.loads((results / "ex" / "verification.json").read_text())
    (record,) = records.values()
    path = results / "ex" / "models" / f"trial-{record['trial']}.tflite"
    assert record["passed"] and path.read_bytes()[4:8] == b"TFL3"
    assert {k["delegate"] for k in record["kernels"]} == {"xnnpack", "builtin"}
    assert all(k["latency"]["median_ms"] > 0 for k in record["kernels"])
    # One latency per file: the cost check compares the prediction with the very figure the kernel check measured.
    for kernel in record["kernels"]:
        assert record["cost_check"]["latency"][kernel["delegate"]]["measured_ms"] == kernel["latency"]["median_ms"]
    assert record["runtime_memory"]["runtime_bytes"] > 0 and record["runtime_memory"]["provenance"].startswith(
        "measured"
    )
    capsys.readouterr()
    assert main(["verify", str(path)]) == 0
    printed = capsys.readouterr().out
    assert "agreement 1.0000" in printed or "agreement 0.99" in printed
    assert f"runtime tensor memory {record['runtime_memory']['runtime_bytes']} B" in printed

    # A copy without its JAX predictions or export record: nothing to judge its accuracy against.
    stranger = tmp_path / "elsewhere" / "model.tflite"
    stranger.parent.mkdir()
    stranger.write_bytes(path.read_bytes())
    capsys.readouterr()
    assert main(["verify", str(stranger)]) == 1
    out, err = capsys.readouterr()
    assert "not checked: top-1 agreement with the JAX model" in out and "with xnnpack" in out
    assert "is not verified" in err and "--min-accuracy" in err and len(err.strip().splitlines()) == 1
    assert main(["verify", str(stranger), "--min-accuracy", "0.5"]) == 0
    assert main(["verify", str(stranger), "--min-accuracy", "0.999"]) == 1
    assert "fails against --min-accuracy 0.999" in capsys.readouterr().err

    truncated = tmp_path / "truncated.tflite"
    truncated.write_bytes(path.read_bytes()[:1000])
    assert main(["verify", str(truncated)]) == 2
    assert "not a loadable LiteRT model" in capsys.readouterr().err
    assert main(["export", "--study", "ex", "--trial", "42", "--results-dir", str(results)]) == 2


def test_the_pruned_export_is_physically_smaller_and_gzips_smaller(cnn_graph, cnn_baseline, cnn_trainer, digits):
    dense = _uniform(cnn_graph, 8, 8)
    sparse = _uniform(cnn_graph, 8, 8, sparsity=0.6)
    pruned = _uniform(cnn_graph, 8, 8, keep=0.5)
    sizes = {}
    for label, candidate in (("dense", dense), ("sparse", sparse), ("pruned", pruned)):
        compression = build_compression(cnn_graph, cnn_baseline.params, candidate)
        compression = calibrate(cnn_trainer, cnn_baseline.params, compression, digits.x_train)
        params = {k: {n: np.asarray(v) for n, v in layer.items()} for k, layer in cnn_baseline.params.items()}
        model = export_candidate(cnn_graph, params, compression, candidate, digits.x_train[:16])
        sizes[label] = (model.file_bytes, model.gzip_bytes)
    assert abs(sizes["sparse"][0] - sizes["dense"][0]) < 64  # zeros stored densely, as TFLite does
    assert sizes["sparse"][1] < 0.8 * sizes["dense"][1]
    assert sizes["pruned"][0] < 0.5 * sizes["dense"][0]


def test_exporting_uncalibrated_activation_ranges_is_refused(cnn_graph, cnn_baseline, digits):
    candidate = _uniform(cnn_graph, 8, 8)
    compression = build_compression(cnn_graph, cnn_baseline.params, candidate)  # ranges still [0, 0]
    with pytest.raises(ConfigError, match="never calibrated"):
        export_candidate(cnn_graph, cnn_baseline.params, compression, candidate, digits.x_train[:16])
    weight_only = _uniform(cnn_graph, 8, 32)  # float activations need no ranges
    model = export_candidate(cnn_graph, cnn_baseline.params, compression, weight_only, digits.x_train[:16])
    assert model.content[4:8] == b"TFL3"


def test_a_diverging_export_fails_and_names_the_first_divergent_layer(cnn_graph, cnn_baseline, digits):
    trainer = make_trainer(cnn_graph, FinetuneConfig(steps=30))
    candidate = _uniform(cnn_graph, 8, 8)
    compression = build_compression(cnn_graph, cnn_baseline.params, candidate)
    params, compression = finetune(
        trainer, cnn_baseline.params, compression, jnp.asarray(digits.x_train), jnp.asarray(digits.y_train), seed=0
    )
    reference = Reference(logits=logits(trainer, params, compression, digits.x_test), labels=digits.y_test)
    # A real export whose conv2 output range is a tenth of the calibrated one: conv2 saturates in LiteRT.
    small = shrink(cnn_graph, params, compression)
    broken_ranges = {
        **small.compression["ranges"],
        "conv2/out": np.asarray(small.compression["ranges"]["conv2/out"]) * 0.1,
    }
    content = quantized_tflite(
        float_tflite(small.graph, small.params).content,
        small.graph,
        candidate,
        {**small.compression, "ranges": broken_ranges},
        digits.x_train[:16],
    ).content
    checks = check_kernels(content, digits.x_test, digits.y_test, reference)
    assert not any(check.passed for check in checks)
    report = divergence_report(content, cnn_graph, params, compression, digits.x_test[:64])
    assert report.first_layer == "conv2"
    assert [layer["layer"] for layer in report.layers][:2] == ["conv1", "conv2"]


# MobileNet v1 is not here: at width 0.25 on 8x8 inputs even its uniform int8 model, fine-tuned as here, falls
# short of 99% agreement with JAX on the test split (small rounding differences add up over 28 layers), so its
# exports are judged per trial by the parity check instead (benchmarks/families.py: 29 of 30 trials refused on
# digits, the uniform int8 one kept). The reference input size (96x96) is issue 22's.
@pytest.mark.parametrize("family", ["mlp", "dscnn", "resnet8"])
def test_a_pruned_int8_candidate_of_every_family_exports_and_verifies(family, digits, results_dir):
    """Every family's structure (residual adds, depthwise layers, a dense-only net) through the pruned export.
    Uniform int8 is every study's first trial; a random precision mix of a deep family is often a near-chance
    model whose small logit margins the runtime's rounding flips, and the trial's own parity check keeps those
    off the front (tests/nas/test_trial_parity.py)."""
    graph = analyze(load_model_spec(family), digits.input_shape, digits.num_classes)
    baseline = train_baseline(graph, digits, TrainConfig(epochs=15), results_dir=results_dir)
    trainer = make_trainer(graph, FinetuneConfig(steps=100, learning_rate=1e-3))
    candidate = _uniform(graph, 8, 8, keep=0.75)
    compression = build_compression(graph, baseline.params, candidate)
    params, compression = finetune(
        trainer, baseline.params, compression, jnp.asarray(digits.x_train), jnp.asarray(digits.y_train), seed=0
    )
    reference = Reference(logits=logits(trainer, params, compression, digits.x_test), labels=digits.y_test)
    assert reference.accuracy_bounds[0] > 0.5  # a model worth verifying, not a near-chance one
    model = export_candidate(graph, params, compression, candidate, digits.x_train[:32])
    for check in check_kernels(model.content, digits.x_test, digits.y_test, reference):
        assert check.passed, (check.delegate, check.accuracy, reference.accuracy_bounds, check.agreement)


def test_a_microcontroller_study_exports_with_the_devices_figures_and_limits(tmp_path, capsys):
    """The STM32H7's own predicted figures, each with its provenance and the margin under its RAM and flash, and
    the host's measurements labelled as this host's, in the record and on the console."""
    results = tmp_path / "results"
    quick = ["--epochs", "5", "--steps", "10", "--no-progress", "--results-dir", str(results)]
    assert main(["search", "--study", "mcu", "--device", "stm32h7", "--trials", "2", *quick]) == 0
    capsys.readouterr()
    assert main(["export", "--study", "mcu", "--knee", "--results-dir", str(results)]) == 0
    printed = capsys.readouterr().out
    (record,) = json.loads((results / "mcu" / "verification.json").read_text()).values()
    device = load_device("stm32h7")
    figures = record["device_figures"]["figures"]
    assert record["device_figures"]["device"] == "stm32h7"
    assert figures["ram_bytes"]["limit"] == device.ram_bytes and figures["flash_bytes"]["limit"] == device.flash_bytes
    margin = 100 * (1 - figures["ram_bytes"]["value"] / device.ram_bytes)
    assert figures["ram_bytes"]["margin_pct"] == pytest.approx(margin, abs=0.05)
    assert all(figure["provenance"] for figure in figures.values())
    assert "on stm32h7: latency" in printed and f"of {device.ram_bytes} B, margin" in printed
    assert "this host: [xnnpack]" in printed and "this host: [builtin]" in printed
    # Run in TFLite Micro, the microcontroller's runtime: parity with JAX, and the RAM its arena measured.
    on_device = record["device_runtime"]
    assert on_device["runtime"].startswith("tflite-micro") and "never timed" in on_device["runtime"]
    assert on_device["check"]["passed"] and on_device["check"]["latency"] is None
    assert figures["ram_bytes"]["value"] == on_device["memory"]["runtime_bytes"] > 0
    assert figures["ram_bytes"]["provenance"].startswith("measured: the smallest TFLite Micro arena")
    assert "in tflite-micro" in printed and f"tensor arena {on_device['memory']['runtime_bytes']} B" in printed

    # The same trial collapsed (its weights shuffled: a function of nothing): exported with a warning.
    weights = results / "mcu" / "trials" / f"trial-{record['trial']}.npz"
    params, compression = load_trial_weights(weights)
    rng = np.random.default_rng(0)
    shuffled = {
        name: {key: rng.permutation(value.ravel()).reshape(value.shape) for key, value in layer.items()}
        for name, layer in params.items()
    }
    save_tree(weights, {"params": shuffled, "compression": compression})
    main(["export", "--study", "mcu", "--trial", str(record["trial"]), "--results-dir", str(results)])
    printed = capsys.readouterr().out
    (collapsed,) = json.loads((results / "mcu" / "verification.json").read_text()).values()
    assert "collapsed" in collapsed["quality_warning"] and f"warning: trial {record['trial']}" in printed

    # The report says the same: the device's own figures and margins, the host's labelled, the warning.
    assert main(["report", "--study", "mcu", "--results-dir", str(results)]) == 0
    report = (results / "mcu" / "report.md").read_text()
    assert "stm32h7: RAM (B)" in report and f"of {device.ram_bytes}, margin" in report
    assert "this host: latency predicted / measured (us)" in report
    assert "collapsed" in report
