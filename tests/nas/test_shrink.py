import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from latency_models.size import kept_channel_counts, kept_weight_count
from nas.compress.compression import build_compression
from nas.compress.models import SpecNet, fold_batchnorm, init_variables
from nas.compress.shrink import shrink
from nas.config import FinetuneConfig
from nas.training.finetune import calibrate, make_trainer
from search_spaces.graph import analyze
from search_spaces.space import Candidate, LayerPolicy
from search_spaces.spec import load_model_spec, spec_from_dict

FLAT_CNN = spec_from_dict(
    {
        "name": "flat_cnn",
        "nodes": [
            {"name": "conv", "op": "conv", "features": 8, "kernel": 3, "stride": 2, "act": "relu"},
            {"name": "flatten", "op": "flatten"},
            {"name": "fc", "op": "dense", "features": "classes"},
        ],
    }
)


@functools.cache
def _setup(name):
    spec = FLAT_CNN if name == "flat_cnn" else load_model_spec(name)
    graph = analyze(spec, (8, 8, 1), 10)
    return graph, fold_batchnorm(graph, init_variables(graph, 0))


@pytest.mark.parametrize("name", ["cnn", "resnet8", "dscnn", "mlp", "flat_cnn"])
@pytest.mark.parametrize(("w_bits", "a_bits"), [(32, 32), (8, 8)])
def test_shrunk_network_computes_what_the_masked_one_did(name, w_bits, a_bits, digits):
    graph, params = _setup(name)
    policy = LayerPolicy(sparsity=0.3, channel_keep=0.5, weight_bits=w_bits, activation_bits=a_bits)
    candidate = Candidate(policies=tuple((layer.name, policy) for layer in graph.compressible))
    trainer = make_trainer(graph, FinetuneConfig(steps=0))
    x = jnp.asarray(digits.x_val[:16])
    compression = calibrate(trainer, params, build_compression(graph, params, candidate), x)
    masked = jax.jit(SpecNet(graph=graph, folded=True).apply)({"params": params}, x, compression=compression)
    small = shrink(graph, params, compression)
    out = jax.jit(SpecNet(graph=small.graph, folded=True).apply)(
        {"params": small.params}, x, compression=small.compression
    )
    np.testing.assert_allclose(np.asarray(out), np.asarray(masked), rtol=1e-5, atol=1e-5)
    if w_bits == 32:  # float: the small params alone (no masks, no quantizers) give the same result
        bare = jax.jit(SpecNet(graph=small.graph, folded=True).apply)({"params": small.params}, x)
        np.testing.assert_allclose(np.asarray(bare), np.asarray(masked), rtol=1e-5, atol=1e-5)
    # The small tensors hold exactly the weights the size accounting counts.
    counts = kept_channel_counts(graph, candidate)
    for layer in graph.compressible:
        assert small.params[layer.name]["kernel"].size == kept_weight_count(layer, counts)
        assert small.graph.layer(layer.name).out_channels == counts[layer.out_group]
