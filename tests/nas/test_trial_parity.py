"""A trial's parity check runs the exported candidate in LiteRT and catches what the runtime computes differently."""

from __future__ import annotations

import numpy as np
import pytest

from nas.compress.compression import build_compression
from nas.compress.models import fold_batchnorm, init_variables
from nas.config import FinetuneConfig
from nas.runtime.parity import runtime_parity
from nas.training.finetune import calibrate, logits, make_trainer
from search_spaces.graph import analyze
from search_spaces.runtime_support import runs_correctly
from search_spaces.space import Candidate, LayerPolicy
from search_spaces.spec import spec_from_dict

pytestmark = pytest.mark.slow  # real exports through the LiteRT toolchain

NODES = [
    {"name": "stem", "op": "conv", "features": 8, "kernel": 3, "act": "relu"},
    {"name": "dw", "op": "dwconv", "kernel": 3, "act": "relu"},
    {"name": "flatten", "op": "flatten"},
    {"name": "head", "op": "dense", "features": "classes"},
]


def _parity(dw_bits: tuple[int, int]):
    graph = analyze(spec_from_dict({"name": "dw_net", "nodes": NODES}), (6, 6, 3), 4)
    params = fold_batchnorm(graph, init_variables(graph, 0))
    trainer = make_trainer(graph, FinetuneConfig(steps=0))
    int8 = LayerPolicy(sparsity=0.0, channel_keep=1.0, weight_bits=8, activation_bits=8)
    dw = LayerPolicy(sparsity=0.0, channel_keep=1.0, weight_bits=dw_bits[0], activation_bits=dw_bits[1])
    candidate = Candidate(
        policies=tuple((layer.name, dw if layer.name == "dw" else int8) for layer in graph.compressible)
    )
    x = np.random.default_rng(0).random((200, 6, 6, 3), dtype=np.float32)
    compression = calibrate(trainer, params, build_compression(graph, params, candidate), x)
    # Labels from the JAX model itself: its accuracy is then high, and a divergent runtime shows as lost accuracy.
    labels = logits(trainer, params, compression, x).argmax(1)
    return runtime_parity(graph, trainer, params, compression, candidate, calibration=x, x=x, y=labels)


def test_a_candidate_the_runtime_computes_as_jax_does_passes():
    parity = _parity((8, 8))
    assert parity.passed, parity.reason
    assert parity.reason == ""
    assert set(parity.agreement) == {"xnnpack", "builtin"}
    assert min(parity.agreement.values()) >= 0.99


def test_a_combination_the_runtime_gets_wrong_is_caught_without_being_listed():
    # int4 depthwise weights: the exporter emits a float op far off the fake-quant model, with no error.
    # The search space forbids it from the support table; the parity check catches it without the table.
    assert not runs_correctly("dwconv", 4, 8)
    parity = _parity((4, 8))
    assert not parity.passed
    assert "diverges from its JAX model" in parity.reason
    assert min(parity.agreement.values()) < 0.99
