"""The TFLite Micro arena predicted before training, against the arena real exports need in TFLite Micro, and the
RAM figure of the microcontroller devices it is."""

from __future__ import annotations

import pytest

from latency_models.memory import ram_figure
from latency_models.registry import cost_model
from latency_models.runtimes.tflite_micro import TFLiteMicro, recorded_arena
from latency_models.runtimes.tflite_micro.arena import head_bytes
from latency_models.runtimes.tflite_micro.arena_graph import candidate_arena_graph
from nas.profiling.flash_fit import export_random
from nas.profiling.micro import small_layer
from search_spaces.graph import ModelGraph, analyze
from search_spaces.space import Candidate, LayerPolicy
from search_spaces.spec import load_model_spec

pytestmark = pytest.mark.slow  # real exports, run in TFLite Micro

TOLERANCE = 128  # bytes over; the fit's tail error is a few bytes, rounded to the arena's 16-byte steps


def _mixed_cnn() -> tuple[ModelGraph, Candidate]:
    """int8 convolution, a float convolution, an int16 dense layer: a QUANTIZE, DEQUANTIZE and requantize."""
    graph = analyze(load_model_spec("cnn"), (8, 8, 1), 10)
    bits = {"conv1": (8, 8), "conv2": (32, 32), "fc": (8, 16)}
    policies = tuple(
        (name, LayerPolicy(sparsity=0.0, channel_keep=1.0, weight_bits=w, activation_bits=a))
        for name, (w, a) in bits.items()
    )
    return graph, Candidate(policies=policies)


def _models() -> dict[str, tuple[ModelGraph, Candidate]]:
    conv, weight_only = small_layer("conv", 8, 8), small_layer("conv", 8, 32)
    resnet = analyze(load_model_spec("resnet8"), (8, 8, 1), 10)
    return {
        "int8 conv": (conv.graph, conv.candidate),
        "weight-only conv": (weight_only.graph, weight_only.candidate),  # float weights dequantized per invoke
        "mixed precision with a float layer": _mixed_cnn(),
        "int8 residual": (resnet, Candidate.uniform(resnet, weight_bits=8, activation_bits=8)),
    }


@pytest.mark.parametrize("kind", list(_models()))
def test_the_predicted_arena_is_the_one_tflite_micro_needs(kind):
    graph, candidate = _models()[kind]
    content = export_random(graph, candidate)
    measured = TFLiteMicro().memory_plan(content).runtime_bytes
    predicted = TFLiteMicro().ram_figure(graph, candidate)
    assert predicted.provenance == "fitted"
    assert measured - 16 <= predicted.value <= measured + TOLERANCE, (predicted.value, measured)
    # the planned tensors, laid out by the greedy planner's rules, are exactly what TFLite Micro planned
    assert head_bytes(candidate_arena_graph(graph, candidate).buffers) == recorded_arena(content)["head_bytes"]


def test_a_microcontrollers_ram_budget_is_the_tflite_micro_arena_and_litert_devices_keep_theirs():
    graph, candidate = _mixed_cnn()
    arena = TFLiteMicro().ram_figure(graph, candidate)
    for device in ("stm32h7", "nrf52840", "esp32s3"):
        assert cost_model(device).cost(graph, candidate).ram_bytes == arena
    litert = ram_figure(graph, candidate)
    assert litert.value != arena.value
    assert cost_model("host").cost(graph, candidate).ram_bytes == litert
