"""Runtime tensor memory read from the interpreter's memory plan, against hand counts."""

from __future__ import annotations

import numpy as np
import pytest

from latency_models.errors import ModelLoadError
from latency_models.runtimes.litert.memory_plan import tensor_memory, union_length
from nas.compress.compression import build_compression
from nas.compress.models import fold_batchnorm, init_variables
from nas.config import FinetuneConfig
from nas.runtime.export import export_candidate
from nas.training.finetune import calibrate, make_trainer
from search_spaces.graph import analyze
from search_spaces.space import Candidate, LayerPolicy
from search_spaces.spec import spec_from_dict

pytestmark = pytest.mark.slow  # real exports through the LiteRT toolchain

INPUTS, HIDDEN, CLASSES = 32, 64, 10


def test_union_length_counts_overlaps_once():
    assert union_length([]) == 0
    assert union_length([(0, 10), (20, 30)]) == 20
    assert union_length([(0, 10), (5, 15), (2, 4)]) == 15
    assert union_length([(10, 20), (0, 10)]) == 20


@pytest.fixture(scope="module")
def mlp():
    nodes = [
        {"name": "hidden", "op": "dense", "features": HIDDEN, "act": "relu"},
        {"name": "head", "op": "dense", "features": "classes"},
    ]
    graph = analyze(spec_from_dict({"name": "mlp", "nodes": nodes}), (INPUTS,), CLASSES)
    params = fold_batchnorm(graph, init_variables(graph, 0))
    trainer = make_trainer(graph, FinetuneConfig(steps=0))
    x = np.random.default_rng(0).random((24, INPUTS), dtype=np.float32)
    return graph, params, trainer, x


def _export(mlp, weight_bits, activation_bits):
    graph, params, trainer, x = mlp
    policy = LayerPolicy(sparsity=0.0, channel_keep=1.0, weight_bits=weight_bits, activation_bits=activation_bits)
    candidate = Candidate(policies=tuple((layer.name, policy) for layer in graph.compressible))
    compression = calibrate(trainer, params, build_compression(graph, params, candidate), x)
    return export_candidate(graph, params, compression, candidate, x[:8]).content


def test_a_float_model_holds_its_activations_and_no_constants(mlp):
    memory = tensor_memory(_export(mlp, 32, 32))
    assert memory.runtime_bytes == 4 * (INPUTS + HIDDEN + CLASSES)  # input, hidden, logits; weights read in place
    assert memory.largest_tensor_bytes == 4 * HIDDEN
    assert memory.provenance.startswith("measured")


@pytest.mark.parametrize("weight_bits", [8, 16])
def test_weight_only_quantization_keeps_float_copies_of_the_weights_in_ram(mlp, weight_bits):
    memory = tensor_memory(_export(mlp, weight_bits, 32))
    weights = INPUTS * HIDDEN + HIDDEN * CLASSES
    assert memory.runtime_bytes == 4 * (INPUTS + HIDDEN + CLASSES) + 4 * weights


def test_integer_activations_shrink_the_arena(mlp):
    float_memory = tensor_memory(_export(mlp, 32, 32)).runtime_bytes
    int8_memory = tensor_memory(_export(mlp, 8, 8)).runtime_bytes
    int16_memory = tensor_memory(_export(mlp, 8, 16)).runtime_bytes
    assert int8_memory < int16_memory < float_memory


def test_a_corrupt_model_is_a_load_error():
    with pytest.raises(ModelLoadError):
        tensor_memory(b"\x00" * 64)
