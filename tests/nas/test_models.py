import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nas.compress.compression import build_compression
from nas.compress.models import SpecNet, fold_batchnorm, init_variables
from search_spaces.graph import analyze
from search_spaces.space import Candidate, LayerPolicy
from search_spaces.spec import load_model_spec

pytestmark = pytest.mark.usefixtures("strict_jax_numerics")


def _with_random_batchnorm(graph):
    """Variables whose BatchNorm scales, shifts and statistics are far from their initial values."""
    variables = init_variables(graph, 0)
    rng = np.random.default_rng(1)
    leaves, tree = jax.tree_util.tree_flatten(variables["batch_stats"])
    stats = [np.abs(np.asarray(leaf) + rng.normal(size=leaf.shape)).astype(np.float32) + 0.1 for leaf in leaves]
    params = {
        name: ({key: np.asarray(value) * 1.7 - 0.2 for key, value in layer.items()} if name.endswith("_bn") else layer)
        for name, layer in variables["params"].items()
    }
    return {"params": params, "batch_stats": jax.tree_util.tree_unflatten(tree, stats)}


@pytest.mark.parametrize("name", ["cnn", "dscnn", "resnet8", "mobilenet_v1"])
def test_folded_batchnorm_matches_inference_mode(name, digits):
    graph = analyze(load_model_spec(name), digits.input_shape, digits.num_classes)
    x = jnp.asarray(digits.x_train[:64])
    variables = _with_random_batchnorm(graph)
    assert not np.allclose(variables["batch_stats"][f"{graph.compressible[0].name}_bn"]["var"], 1.0)
    reference = jax.jit(SpecNet(graph=graph).apply)(variables, x)
    params = fold_batchnorm(graph, variables)
    folded_apply = jax.jit(SpecNet(graph=graph, folded=True).apply)
    folded = folded_apply({"params": params}, x)
    np.testing.assert_allclose(np.asarray(folded), np.asarray(reference), rtol=1e-4, atol=1e-4)
    # An uncompressed Compression is the identity.
    identity = build_compression(graph, params, Candidate.uncompressed(graph))
    same = folded_apply({"params": params}, x, compression=identity)
    np.testing.assert_allclose(np.asarray(same), np.asarray(folded), rtol=1e-6, atol=1e-6)


def test_pruned_channels_have_no_influence_as_if_removed(digits, cnn_graph, cnn_baseline):
    policy = LayerPolicy(sparsity=0.0, channel_keep=0.5, weight_bits=32, activation_bits=32)
    candidate = Candidate(policies=tuple((layer.name, policy) for layer in cnn_graph.compressible))
    compression = build_compression(cnn_graph, cnn_baseline.params, candidate)
    model = SpecNet(graph=cnn_graph, folded=True)
    apply = jax.jit(model.apply)
    x = jnp.asarray(digits.x_val[:32])
    before = apply({"params": cnn_baseline.params}, x, compression=compression)
    kept = np.asarray(compression["channel_mask"]["conv1"], bool)
    assert kept.sum() == 16
    assert np.abs(np.asarray(cnn_baseline.params["conv1"]["bias"])[~kept]).min() > 0  # folded BatchNorm shift
    # Rewrite everything a pruned conv1 channel touches (its filter, its bias, conv2's weights reading it).
    changed = jax.tree_util.tree_map(np.array, cnn_baseline.params)
    changed["conv1"]["kernel"][..., ~kept] = 5.0
    changed["conv1"]["bias"][~kept] = -3.0
    changed["conv2"]["kernel"][:, :, ~kept, :] = 7.0
    after = apply({"params": changed}, x, compression=compression)
    np.testing.assert_array_equal(np.asarray(after), np.asarray(before))
    baseline_out = apply({"params": cnn_baseline.params}, x)
    assert not np.allclose(np.asarray(baseline_out), np.asarray(before))
