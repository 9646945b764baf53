"""Parity of exported single-layer models with the JAX fake-quant model, for every allowed precision.

Each op type of the model families (dense, conv, depthwise conv, a single-input-channel conv, pooling, a
residual add) is exported at every precision the search may propose for it, run in the LiteRT interpreter
(builtin kernels) and compared node by node: every output within one quantization step.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest

from nas.compress.compression import build_compression
from nas.compress.models import fold_batchnorm, init_variables
from nas.compress.shrink import shrink
from nas.config import FinetuneConfig
from nas.deploy.layer_diff import ONE_STEP, compare_layers
from nas.runtime.export import export_candidate
from nas.training.finetune import calibrate, make_trainer
from search_spaces.graph import analyze
from search_spaces.runtime_support import supported_precisions
from search_spaces.space import Candidate, LayerPolicy
from search_spaces.spec import spec_from_dict

pytestmark = pytest.mark.slow  # real exports through the LiteRT toolchain

HEAD = [{"name": "flatten", "op": "flatten"}, {"name": "head", "op": "dense", "features": "classes"}]
SINGLE_LAYER = {
    "dense": (
        (4, 4, 2),
        [
            {"name": "flat_in", "op": "flatten"},
            {"name": "layer", "op": "dense", "features": 6, "act": "relu"},
            {"name": "head", "op": "dense", "features": "classes"},
        ],
    ),
    "conv": ((6, 6, 3), [{"name": "layer", "op": "conv", "features": 4, "kernel": 3, "act": "relu"}, *HEAD]),
    "dwconv": ((6, 6, 3), [{"name": "layer", "op": "dwconv", "kernel": 3, "act": "relu"}, *HEAD]),
    "dwconv_multiplier": ((6, 6, 1), [{"name": "layer", "op": "conv", "features": 4, "kernel": 3}, *HEAD]),
}
SHAPE_OPS = {
    "avg_pool": [{"name": "pool", "op": "avg_pool", "window": 2}, *HEAD],
    "max_pool": [{"name": "pool", "op": "max_pool", "window": 2}, *HEAD],
    "global_avg_pool": [
        {"name": "pool", "op": "global_avg_pool"},
        {"name": "head", "op": "dense", "features": "classes"},
    ],
    "add": [
        {"name": "other", "op": "conv", "features": 4, "kernel": 1, "inputs": ["layer"]},
        {"name": "add", "op": "add", "inputs": ["layer", "other"], "act": "relu"},
        *HEAD,
    ],
}
PRODUCER = {"name": "layer", "op": "conv", "features": 4, "kernel": 3, "act": "relu"}


@functools.cache
def _problem(nodes_key: str, input_shape: tuple[int, ...]):
    nodes = _NODES[nodes_key]
    graph = analyze(spec_from_dict({"name": nodes_key, "nodes": nodes}), input_shape, 3)
    params = fold_batchnorm(graph, init_variables(graph, 0))
    return graph, params, make_trainer(graph, FinetuneConfig(steps=0))


_NODES = {op: nodes for op, (_, nodes) in SINGLE_LAYER.items()}
_NODES.update({op: [PRODUCER, *nodes] for op, nodes in SHAPE_OPS.items()})


def _check(op_key, input_shape, policies, node):
    graph, params, trainer = _problem(op_key, input_shape)
    float_head = LayerPolicy(sparsity=0.0, channel_keep=1.0, weight_bits=32, activation_bits=32)
    candidate = Candidate(
        policies=tuple((layer.name, policies.get(layer.name, float_head)) for layer in graph.compressible)
    )
    x = np.random.default_rng(0).random((24, *input_shape), dtype=np.float32)
    compression = calibrate(trainer, params, build_compression(graph, params, candidate), x)
    model = export_candidate(graph, params, compression, candidate, x[:8])
    small = shrink(graph, params, compression)
    diffs = compare_layers(model.content, small.graph, small.params, small.compression, x)
    # The node under test may differ by one step of its own beyond what its inputs already differ by (an add of
    # two inputs that are each one step off can be two steps off with exact arithmetic).
    by_layer = {d.layer: d for d in diffs}
    diff = by_layer[node]
    inherited = sum(by_layer[i].max_abs_diff for i in graph.layer(node).inputs if i in by_layer)
    allowed = ONE_STEP + inherited / diff.step
    assert diff.steps <= allowed, f"{node}: {diff.steps:.2f} steps ({diff.dtype}), allowed {allowed:.2f}"
    return diffs


def _policy(w_bits, a_bits):
    return LayerPolicy(sparsity=0.25, channel_keep=1.0, weight_bits=w_bits, activation_bits=a_bits)


@pytest.mark.parametrize(
    ("op", "precision"),
    [(op, p) for op in SINGLE_LAYER for p in supported_precisions(op)],
    ids=lambda v: v if isinstance(v, str) else f"w{v[0]}a{v[1]}",
)
def test_every_allowed_precision_of_every_layer_type_exports_within_one_step(op, precision):
    input_shape, _ = SINGLE_LAYER[op]
    _check(op, input_shape, {"layer": _policy(*precision)}, "layer")


@pytest.mark.parametrize("op", sorted(SHAPE_OPS))
@pytest.mark.parametrize("a_bits", [8, 16, 32])
def test_pooling_and_residual_adds_export_within_one_step(op, a_bits):
    policy = _policy(8 if a_bits < 32 else 32, a_bits)
    _check(op, (6, 6, 3), {"layer": policy, "other": policy}, "add" if op == "add" else "pool")
