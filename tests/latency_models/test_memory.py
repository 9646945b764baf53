"""RAM and flash predictions against real exports read back from the LiteRT interpreter."""

from __future__ import annotations

import json

import optuna
import pytest

from latency_models.keys import boundaries, layer_keys
from latency_models.memory import OVERHEAD_PATH, flash_figure, ram_bytes
from latency_models.runtimes.litert.memory_plan import tensor_memory
from nas.profiling.flash_fit import export_random
from search_spaces.graph import analyze
from search_spaces.space import Candidate, LayerPolicy, SearchSpace, suggest_candidate
from search_spaces.spec import available_models, load_model_spec

pytestmark = pytest.mark.slow  # real exports


def _random_candidates(graph, spec, count: int, seed: int) -> list[Candidate]:
    space = SearchSpace().with_model_rules(spec.rules)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    return [suggest_candidate(study.ask(), graph, space) for _ in range(count)]


@pytest.mark.parametrize("family", available_models())
@pytest.mark.parametrize("shape", [(8, 8, 1), (28, 28, 1)])
def test_ram_prediction_equals_the_runtimes_tensor_memory(family, shape):
    spec = load_model_spec(family)
    graph = analyze(spec, shape, 10)
    candidates = [
        Candidate.uniform(graph, weight_bits=32, activation_bits=32),
        Candidate.uniform(graph, weight_bits=8, activation_bits=8),
        *_random_candidates(graph, spec, 4, seed=len(family) + shape[0]),
    ]
    for candidate in candidates:
        measured = tensor_memory(export_random(graph, candidate)).runtime_bytes
        assert ram_bytes(graph, candidate) == measured, candidate.to_dict()


def test_flash_prediction_is_within_the_fits_recorded_error():
    fit = json.loads(OVERHEAD_PATH.read_text())
    spec = load_model_spec("dscnn")
    graph = analyze(spec, (16, 16, 1), 10)  # an input size the fit never saw
    for candidate in _random_candidates(graph, spec, 4, seed=7):
        actual = len(export_random(graph, candidate))
        predicted = flash_figure(graph, candidate)
        assert predicted.provenance == "fitted"
        assert abs(predicted.value - actual) <= 2 * fit["max_abs_error_bytes"], (predicted.value, actual)


def test_residual_branches_share_one_conversion_of_a_tensor():
    spec = load_model_spec("resnet8")
    graph = analyze(spec, (8, 8, 1), 10)
    policies = []
    for layer in graph.compressible:  # block 2 float, everything else int16: its input is dequantized once
        bits = (8, 32) if layer.name.startswith("b2_") else (8, 16)
        policies.append(
            (layer.name, LayerPolicy(sparsity=0.0, channel_keep=1.0, weight_bits=bits[0], activation_bits=bits[1]))
        )
    candidate = Candidate(policies=tuple(policies))
    shared = [b for b in boundaries(graph, candidate) if b.source == "b1_add"]
    assert len(shared) == 1 and shared[0].kind == "dequantize" and set(shared[0].consumers) == {"b2_conv1", "b2_proj"}
    assert tensor_memory(export_random(graph, candidate)).runtime_bytes == ram_bytes(graph, candidate)


def test_layer_keys_follow_pruned_channels_and_inherited_precision():
    graph = analyze(load_model_spec("cnn"), (8, 8, 1), 10)
    policies = (
        ("conv1", LayerPolicy(sparsity=0.0, channel_keep=0.5, weight_bits=8, activation_bits=8)),
        ("conv2", LayerPolicy(sparsity=0.0, channel_keep=0.25, weight_bits=8, activation_bits=16)),
        ("fc", LayerPolicy(sparsity=0.0, channel_keep=1.0, weight_bits=32, activation_bits=32)),
    )
    keys = {layer.name: key for layer, key in layer_keys(graph, Candidate(policies=policies))}
    assert keys["conv1"].describe() == "dwconv_multiplier 8x8x1->16 k3 s1 relu w8a8"
    assert keys["conv2"].describe() == "conv 8x8x16->16 k3 s2 relu w8a16"
    assert keys["pool"].describe() == "global_avg_pool 4x4x16->16 k1 s1 w32a16"  # reads int16, runs at int16
    assert keys["fc"].describe() == "dense 1x1x16->10 k1 s1 w32a32"
    kinds = [(b.source, b.kind, b.elements) for b in boundaries(graph, Candidate(policies=policies))]
    assert kinds == [("input", "quantize", 64), ("conv1", "requantize", 1024), ("pool", "dequantize", 16)]
