import numpy as np
import pytest

from latency_models.size import compressed_bytes, entropy_bits, layer_sizes, stored_bytes
from search_spaces.graph import analyze
from search_spaces.space import Candidate, LayerPolicy
from search_spaces.spec import spec_from_dict

TINY = spec_from_dict(
    {
        "name": "tiny",
        "nodes": [
            {"name": "flatten", "op": "flatten"},
            {"name": "hidden", "op": "dense", "features": 4, "act": "relu"},
            {"name": "out", "op": "dense", "features": "classes"},
        ],
    }
)


def _policy(w, a, keep=1.0, sparsity=0.0):
    return LayerPolicy(sparsity=sparsity, channel_keep=keep, weight_bits=w, activation_bits=a)


@pytest.fixture
def graph():
    return analyze(TINY, (2, 2, 1), 3)


def test_stored_size_matches_a_hand_count(graph):
    # hidden: 4 inputs x 2 kept units = 8 int4 weights = 4 B; 2 int32 biases = 8 B;
    #         weight + bias quantization params: 2 tensors x 2 channels x (4 B scale + 8 B zero point) = 48 B.
    # out:    2 kept inputs x 3 = 6 int8 weights = 6 B; 3 int64 biases (int16 activations) = 24 B; 2 x 3 x 12 = 72 B.
    candidate = Candidate(policies=(("hidden", _policy(4, 8, keep=0.5)), ("out", _policy(8, 16))))
    sizes = {s.name: s for s in layer_sizes(graph, candidate)}
    assert (sizes["hidden"].weight_count, sizes["hidden"].total_bytes) == (8, 4 + 8 + 48)
    assert (sizes["out"].weight_count, sizes["out"].total_bytes) == (6, 6 + 24 + 72)
    assert stored_bytes(graph, candidate) == 162


def test_float_and_half_precision_sizes(graph):
    assert stored_bytes(graph, Candidate.uncompressed(graph)) == (16 + 4) * 4 + (12 + 3) * 4
    half = Candidate(policies=(("hidden", _policy(16, 32)), ("out", _policy(32, 32))))
    assert stored_bytes(graph, half) == (16 + 4) * 2 + (12 + 3) * 4
    # dynamic range (int8 weights, float activations): float32 bias, weight scales only
    hybrid = Candidate(policies=(("hidden", _policy(8, 32)), ("out", _policy(32, 32))))
    assert stored_bytes(graph, hybrid) == 16 + 4 * 4 + 4 * 12 + (12 + 3) * 4


def test_unstructured_sparsity_does_not_change_stored_size_but_shrinks_the_entropy_bound(graph):
    dense = Candidate(policies=(("hidden", _policy(8, 8)), ("out", _policy(8, 8))))
    sparse = Candidate(policies=(("hidden", _policy(8, 8, sparsity=0.9)), ("out", _policy(8, 8))))
    assert stored_bytes(graph, dense) == stored_bytes(graph, sparse)
    rng = np.random.default_rng(0)
    codes = {"hidden": rng.integers(-127, 128, 16), "out": rng.integers(-127, 128, 12)}
    zeros = {"hidden": np.zeros(16, int), "out": codes["out"]}
    full = compressed_bytes(graph, dense, codes)
    assert full <= stored_bytes(graph, dense)
    assert compressed_bytes(graph, sparse, zeros) == full - min(int(np.ceil(entropy_bits(codes["hidden"]) / 8)), 16)


def test_entropy_of_known_distributions():
    assert entropy_bits(np.zeros(100)) == 0
    assert entropy_bits(np.arange(256).repeat(4)) == pytest.approx(8 * 1024)
    assert entropy_bits(np.array([0, 1, 0, 1])) == pytest.approx(4)
