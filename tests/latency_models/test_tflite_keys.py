"""Keys read from a .tflite's flatbuffer agree with the keys the cost model derives from the candidate."""

from __future__ import annotations

import optuna
import pytest

from latency_models.errors import CostModelError
from latency_models.keys import boundaries, layer_keys
from latency_models.kinds.measured.model import MeasuredCostModel
from latency_models.registry import cost_model
from latency_models.runtimes.tflite_micro import TFLiteMicro
from latency_models.tflite_keys import file_keys
from nas.analysis.estimate import estimate_file
from nas.profiling.flash_fit import export_random
from search_spaces.graph import analyze
from search_spaces.space import Candidate, SearchSpace, suggest_candidate
from search_spaces.spec import load_model_spec

pytestmark = pytest.mark.slow  # real exports


def _boundary_facts(found) -> list[tuple]:
    return sorted((b.kind, b.elements, b.from_bits, b.to_bits) for b in found)


@pytest.mark.parametrize(
    ("family", "size", "seed"),
    [("cnn", 8, 0), ("resnet8", 8, 1), ("mobilenet_v1", 28, 2), ("mlp", 8, 3), ("dscnn", 8, 4)],
)
def test_a_files_keys_match_its_candidates(family, size, seed):
    spec = load_model_spec(family)
    graph = analyze(spec, (size, size, 1), 10)
    space = SearchSpace().with_model_rules(spec.rules).without_sparsity()
    candidate = suggest_candidate(
        optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed)).ask(), graph, space
    )
    found = file_keys(export_random(graph, candidate))
    assert [key for _, key in found.layers] == [key for _, key in layer_keys(graph, candidate)]
    assert _boundary_facts(found.boundaries) == _boundary_facts(boundaries(graph, candidate))


def test_weight_only_layers_count_their_stored_bits_and_no_load_time_dequantize():
    graph = analyze(load_model_spec("mlp"), (8, 8, 1), 10)  # dense layers run every weight width on the host
    for weight_bits in (4, 8, 16):
        candidate = Candidate.uniform(graph, weight_bits=weight_bits, activation_bits=32)
        found = file_keys(export_random(graph, candidate))
        assert {key.weight_bits for _, key in found.layers if key.op == "dense"} == {weight_bits}
        assert found.boundaries == ()  # the weights' DEQUANTIZE runs once at load, not per invoke


def test_garbage_is_not_a_model():
    with pytest.raises(CostModelError, match=r"not a \.tflite flatbuffer"):
        file_keys(b"\x00\x01garbage" * 8)


def test_a_file_and_its_candidate_get_the_same_latency(profiled_devices):
    directory, _ = profiled_devices
    model = cost_model("host", "xnnpack", directory=directory)
    assert isinstance(model, MeasuredCostModel)
    graph = analyze(load_model_spec("resnet8"), (8, 8, 1), 10)
    candidate = Candidate.uniform(graph, weight_bits=8, activation_bits=8)
    found = file_keys(export_random(graph, candidate))
    from_file = sum(p.latency_ms.value for p in model.parts_of_keys(found.layers, found.boundaries))
    from_candidate = sum(p.latency_ms.value for p in model.raw_parts(graph, candidate))
    assert from_file == pytest.approx(from_candidate, rel=1e-12)
    assert [name for name, _ in found.layers] == [layer.name for layer in graph.layers]


def test_estimating_a_file_costs_what_its_candidate_costs_with_the_files_own_memory(tmp_path):
    graph = analyze(load_model_spec("dscnn"), (8, 8, 1), 10)
    candidate = Candidate.uniform(graph, weight_bits=8, activation_bits=8)
    path = tmp_path / "model.tflite"
    path.write_bytes(export_random(graph, candidate))
    for device in ("host", "stm32h7"):
        estimate = estimate_file(path, device)
        expected = cost_model(device).cost(graph, candidate)
        assert estimate.cost.latency_ms.value == pytest.approx(expected.latency_ms.value, rel=1e-12)
        assert estimate.cost.flash_bytes.value == path.stat().st_size
        assert estimate.cost.ram_bytes.provenance == ("measured" if device == "host" else "exact")
        if device == "host":
            assert estimate.cost.ram_bytes.value == expected.ram_bytes.value  # the plan the model predicts, exactly
        else:  # the file's TFLite Micro arena, which the model predicts to a few bytes
            assert estimate.cost.ram_bytes.value == TFLiteMicro().memory_plan(path.read_bytes()).runtime_bytes
            assert abs(estimate.cost.ram_bytes.value - expected.ram_bytes.value) <= 128
