import functools

import numpy as np
import pytest

from nas.compress.models import fold_batchnorm, init_variables
from search_spaces.graph import analyze
from search_spaces.space import Candidate, LayerPolicy, SearchSpace
from search_spaces.spec import load_model_spec
from search_spaces.techniques.channel_keep import ChannelKeep, group_keep_masks, structural_mask
from search_spaces.techniques.sparsity import Sparsity, magnitude_mask

pytestmark = pytest.mark.usefixtures("strict_jax_numerics")

SPARSITIES = SearchSpace().sparsity.values()


@functools.cache
def _graph_and_params(name):
    graph = analyze(load_model_spec(name), (8, 8, 1), 10)
    return graph, fold_batchnorm(graph, init_variables(graph, 0))


def _masks(graph, params, candidate):
    """The channel keep-masks by group and the kernel masks, as the two techniques build them in turn."""
    channel = ChannelKeep().arrays(graph, params, candidate, {})
    return group_keep_masks(graph, params, candidate), Sparsity().arrays(graph, params, candidate, channel)[
        "kernel_mask"
    ]


def _candidate(graph, sparsity=0.0, keep=1.0):
    policy = LayerPolicy(sparsity=sparsity, channel_keep=keep, weight_bits=32, activation_bits=32)
    return Candidate(policies=tuple((layer.name, policy) for layer in graph.compressible))


@pytest.mark.parametrize("sparsity", SPARSITIES)
@pytest.mark.parametrize("shape", [(9, 1), (64, 4), (1000, 3)])
def test_measured_sparsity_equals_the_request(sparsity, shape):
    weights = np.random.default_rng(shape[0]).normal(size=shape)
    mask = magnitude_mask(weights, np.ones(shape, bool), sparsity)
    size, channels = weights.size, shape[-1]
    removed = int((~mask).sum())
    assert removed == min(int(sparsity * size + 0.5), size - channels)
    if removed == int(sparsity * size + 0.5):
        assert abs(removed / size - sparsity) <= 0.5 / size + 1e-12
    assert mask.any(axis=0).all()  # no kept channel loses all its weights
    strongest = np.zeros(shape, bool)
    strongest[np.argmax(np.abs(weights), axis=0), np.arange(channels)] = True
    assert mask[strongest].all()
    others = mask & ~strongest
    if others.any() and (~mask).any():  # apart from those, the smallest magnitudes are the ones removed
        assert np.abs(weights[~mask]).max() <= np.abs(weights[others]).min()


@pytest.mark.parametrize("name", ["cnn", "resnet8", "dscnn", "mlp"])
@pytest.mark.parametrize("sparsity", [0.0, 0.3, 0.9])
def test_sparsity_is_measured_over_the_weights_that_survive_channel_pruning(name, sparsity):
    graph, params = _graph_and_params(name)
    candidate = _candidate(graph, sparsity, keep=0.5)
    groups, masks = _masks(graph, params, candidate)
    for layer in graph.compressible:
        kept = structural_mask(layer, groups)
        measured = 1 - masks[layer.name][kept].mean()
        channels = kept.reshape(-1, kept.shape[-1]).any(axis=0).sum()
        cap = 1 - channels / kept.sum()  # every kept channel keeps its largest weight
        assert abs(measured - min(sparsity, cap)) <= 0.5 / kept.sum() + 1e-12
        assert not masks[layer.name][~kept].any()  # pruned channels carry no weights


def test_residual_groups_keep_the_same_channels_on_both_sides_of_an_add():
    graph, params = _graph_and_params("resnet8")
    candidate = _candidate(graph, keep=0.5)
    _, masks = _masks(graph, params, candidate)
    out_channels = lambda name: masks[name].reshape(-1, masks[name].shape[-1]).any(0)  # noqa: E731
    np.testing.assert_array_equal(out_channels("b2_conv2"), out_channels("b2_proj"))
    np.testing.assert_array_equal(out_channels("stem"), out_channels("b1_conv2"))
    # The consumer of the stem group reads exactly the kept channels.
    np.testing.assert_array_equal(masks["b2_conv1"].any(axis=(0, 1, 3)), out_channels("stem"))
    assert out_channels("b2_conv2").sum() == 16


@pytest.mark.parametrize("norm", ["l1", "l2"])
def test_channels_with_the_largest_filters_are_kept(norm):
    graph, params = _graph_and_params("cnn")
    kernel = np.asarray(params["conv1"]["kernel"]).reshape(-1, 32)
    score = np.abs(kernel).sum(0) if norm == "l1" else np.sqrt((kernel**2).sum(0))
    groups = group_keep_masks(graph, params, _candidate(graph, keep=0.25), norm=norm)
    kept = groups[graph.layer("conv1").out_group]
    assert kept.sum() == 8
    assert score[kept].min() >= score[~kept].max()
