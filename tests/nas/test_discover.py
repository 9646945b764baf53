"""Graph discovery on networks written as users write them, checked against hand counts, and on every
built-in family against the graph its JSON spec gives."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optuna
import pytest
from flax import nnx

from nas.compress import float_regions
from nas.compress.compression import build_compression
from nas.compress.models import SpecNet, init_variables
from nas.config import FinetuneConfig
from nas.errors import ConfigError
from nas.training.evaluate import evaluate
from nas.training.finetune import finetune, make_trainer
from nas.usermodel.discover import discover
from nas.usermodel.source import save_weights, user_model, with_weights
from nas.usermodel.store import store_model
from search_spaces.graph import ModelGraph, analyze
from search_spaces.space import SearchSpace, suggest_candidate
from search_spaces.spec import available_models, load_model_spec
from tests import usermodels

EXAMPLES = np.random.default_rng(0).random((16, 8, 8, 1), np.float32)


def _with_random_statistics(variables, seed: int = 1):
    """BatchNorm statistics far from (0, 1), so folding them is actually tested."""
    rng = np.random.default_rng(seed)
    stats = jax.tree_util.tree_map(
        lambda a: jnp.asarray(rng.uniform(0.5, 2.0, a.shape), jnp.float32), variables.get("batch_stats", {})
    )
    return {**variables, "batch_stats": stats}


def _discover(model, variables=None, examples=EXAMPLES):
    source = user_model(model, variables)
    return discover(source.forward, source.variables, examples, name=source.name)


def _structure(graph: ModelGraph) -> list[tuple]:
    """The graph without the names of its shape operations: inputs by position, groups, shapes, knobs."""
    position = {"input": -1, **{layer.name: i for i, layer in enumerate(graph.layers)}}
    nodes = {node.name: node for node in graph.spec.nodes}
    return [
        (
            layer.op,
            tuple(position[i] for i in layer.inputs),
            layer.input_shape,
            layer.output_shape,
            layer.kernel,
            layer.stride,
            layer.groups,
            layer.out_group,
            layer.in_group,
            layer.in_repeat,
            nodes[layer.name].act,
            nodes[layer.name].bn,
            layer.name if layer.op in ("conv", "dwconv", "dense") else "",
        )
        for layer in graph.layers
    ] + [(graph.group_sizes, graph.prunable_groups)]


def test_linen_resnet_matches_its_hand_count():
    model, variables = usermodels.linen_resnet()
    found = _discover(model, _with_random_statistics(variables))
    graph = found.graph
    assert [(la.name, la.op) for la in graph.layers] == [
        ("stem", "conv"),
        ("block_conv_a", "conv"),
        ("block_conv_b", "conv"),
        ("add", "add"),
        ("max_pool", "max_pool"),
        ("down", "conv"),
        ("global_avg_pool", "global_avg_pool"),
        ("head", "dense"),
    ]
    nodes = {node.name: node for node in found.spec.nodes}
    assert [nodes[n].bn for n in ("stem", "block_conv_a", "block_conv_b", "down", "head")] == [
        True,
        True,
        True,
        False,
        False,
    ]
    assert [nodes[n].act for n in ("stem", "block_conv_a", "block_conv_b", "add", "down")] == [
        "relu",
        "relu",
        None,
        "relu",
        "relu",
    ]
    assert graph.layer("add").inputs == ("stem", "block_conv_b")
    # Five channel groups: the input; stem, block_conv_b and the add tied by the residual; block_conv_a;
    # down; the logits. The residual group is pruned through its first producer, the stem.
    group = graph.layer("stem").out_group
    assert graph.layer("block_conv_b").out_group == group == graph.layer("max_pool").out_group
    assert len(graph.group_sizes) == 5
    assert {graph.leader_of(g) for g in graph.prunable_groups} == {"stem", "block_conv_a", "down"}
    assert found.parity_error < 1e-5


def test_nnx_mlp_matches_its_hand_count():
    found = _discover(usermodels.nnx_mlp())
    graph = found.graph
    assert [(la.name, la.op, la.output_shape) for la in graph.layers] == [
        ("flatten", "flatten", (64,)),
        ("hidden1", "dense", (48,)),
        ("hidden2", "dense", (24,)),
        ("head", "dense", (10,)),
    ]
    assert {graph.leader_of(g) for g in graph.prunable_groups} == {"hidden1", "hidden2"}
    assert found.parity_error < 1e-5


def test_nnx_batchnorm_is_folded_with_its_running_statistics():
    model = usermodels.NnxConvBN(nnx.Rngs(0))
    rng = np.random.default_rng(4)
    model.bn.mean[...] = rng.normal(size=8).astype(np.float32)
    model.bn.var[...] = rng.uniform(0.5, 2.0, size=8).astype(np.float32)
    found = _discover(model)
    assert [(la.name, la.op) for la in found.graph.layers] == [
        ("conv", "conv"),
        ("depthwise", "dwconv"),
        ("global_avg_pool", "global_avg_pool"),
        ("head", "dense"),
    ]
    assert next(n for n in found.spec.nodes if n.name == "conv").bn
    # The depthwise conv keeps its input's channels: one group, pruned through the conv that writes it.
    assert {found.graph.leader_of(g) for g in found.graph.prunable_groups} == {"conv"}
    assert found.parity_error < 1e-5


def test_nnx_discovery_leaves_the_users_module_as_it_was():
    model = usermodels.nnx_mlp()
    before = np.asarray(model.hidden1.kernel[...]).copy()
    _discover(model)
    assert np.array_equal(np.asarray(model.hidden1.kernel[...]), before)


@pytest.mark.parametrize("family", available_models())
def test_every_family_is_discovered_as_its_spec_describes_it(family):
    shape = (32, 32, 3) if family == "mobilenet_v1" else (8, 8, 1)
    expected = analyze(load_model_spec(family), shape, 10)
    net = SpecNet(graph=expected, runtime_ops=True)  # the ops a user writes: convolutions
    variables = _with_random_statistics(init_variables(expected, 0))
    examples = np.random.default_rng(0).random((8, *shape), np.float32)
    found = discover(lambda v, x: net.apply(v, x), variables, examples)
    assert _structure(found.graph) == _structure(expected)
    assert found.parity_error < 1e-5


def test_a_function_with_hand_written_affine_steps_and_clip_is_folded_exactly():
    """``x @ W.T``, a subtracted mean, a division and a clip(0, 6) written with jnp, not flax layers."""
    rng = np.random.default_rng(2)
    variables = {
        "w1": rng.normal(size=(16, 64)).astype(np.float32),  # (out, in): used transposed
        "mean": rng.normal(size=(16,)).astype(np.float32),
        "std": rng.uniform(0.5, 2, size=(16,)).astype(np.float32),
        "w2": rng.normal(size=(16, 10)).astype(np.float32),
    }

    def forward(v, x):
        h = x.reshape((x.shape[0], -1)) @ v["w1"].T
        h = jnp.clip((h - v["mean"]) / v["std"], 0.0, 6.0)
        return h @ v["w2"]

    found = _discover(forward, variables)
    nodes = {node.name: node for node in found.spec.nodes}
    assert [n.op for n in found.spec.nodes] == ["flatten", "dense", "dense"]
    first = found.spec.nodes[1]
    assert (nodes[first.name].act, nodes[first.name].bn) == ("relu6", True)
    folded = found.params[first.name]
    np.testing.assert_allclose(folded["kernel"], (variables["w1"] / variables["std"][:, None]).T, rtol=1e-6)
    np.testing.assert_allclose(folded["bias"], -variables["mean"] / variables["std"], rtol=1e-6)
    assert found.parity_error < 1e-5


def test_a_layer_norm_stays_float_and_fixes_the_channels_around_it():
    model = usermodels.LinenWithLayerNorm()
    found = _discover(model, model.init(jax.random.key(0), EXAMPLES[:1]))
    graph = found.graph
    assert [(la.name, la.op) for la in graph.layers] == [
        ("conv_a", "conv"),
        ("conv_b", "conv"),
        ("norm_float", "float"),
        ("flatten", "flatten"),
        ("head", "dense"),
    ]
    # conv_a's channels may be pruned (conv_b reads them); conv_b's may not: the LayerNorm normalizes over them.
    assert {graph.leader_of(g) for g in graph.prunable_groups} == {"conv_a"}
    ((name, reason),) = found.float_regions
    assert name == "norm_float" and "in module LinenWithLayerNorm/norm" in reason
    node = next(n for n in found.spec.nodes if n.op == "float")
    assert node.float_weights == 16 and node.macs > 0  # scale and bias of 8 channels
    assert found.parity_error < 1e-5


def test_attention_stays_float_between_the_layers_it_reads_and_feeds():
    model = usermodels.LinenWithAttention()
    found = _discover(model, model.init(jax.random.key(0), EXAMPLES[:1]))
    ops = [(la.op, la.inputs) for la in found.graph.layers]
    assert ops == [("conv", ("input",)), ("float", ("stem",)), ("dense", (found.graph.layers[1].name,))]
    assert found.graph.layers[1].output_shape == (16,)
    assert not found.graph.prunable_groups
    assert found.parity_error < 1e-5


def test_a_model_that_ends_in_softmax_is_refused():
    model, variables = usermodels.linen_softmax_head()
    with pytest.raises(ConfigError, match="must end in a dense layer"):
        _discover(model, variables)


def test_float_regions_reload_from_their_files_and_damage_is_named(tmp_path):
    model = usermodels.LinenWithLayerNorm()
    source = user_model(model, model.init(jax.random.key(0), EXAMPLES[:1]))
    found = discover(source.forward, source.variables, EXAMPLES, name=source.name)
    stored = store_model(found, source, origin="test", results_dir=tmp_path)
    float_regions._LOADED.clear()  # as in a new process: the functions must come from the files
    spec = float_regions.load_spec(str(stored.spec_path))
    graph = analyze(spec, found.graph.input_shape, found.graph.num_classes)
    params = jax.tree_util.tree_map(jnp.asarray, found.params)
    logits = SpecNet(graph=graph, folded=True).apply({"params": params}, EXAMPLES)
    np.testing.assert_allclose(logits, source.forward(source.variables, EXAMPLES), rtol=1e-5, atol=1e-5)
    damaged = next(stored.spec_path.parent.glob("*.single.jaxexport"))
    damaged.write_bytes(damaged.read_bytes()[:-10])
    float_regions._LOADED.clear()
    with pytest.raises(ConfigError, match="damaged"):
        float_regions.load_spec(str(stored.spec_path))


def test_weights_files_round_trip_and_mismatches_are_named(tmp_path):
    model, variables = usermodels.linen_resnet()
    trained = _with_random_statistics(variables, seed=3)
    path = tmp_path / "weights.npz"
    save_weights(path, trained)
    loaded = with_weights(user_model(model, variables), path)
    for a, b in zip(jax.tree_util.tree_leaves(loaded.variables), jax.tree_util.tree_leaves(trained), strict=True):
        np.testing.assert_array_equal(a, b)
    from flax import serialization

    msgpack = tmp_path / "weights.msgpack"
    msgpack.write_bytes(serialization.to_bytes(trained))
    again = with_weights(user_model(model, variables), msgpack)
    assert np.array_equal(
        again.variables["batch_stats"]["stem_bn"]["mean"], np.asarray(trained["batch_stats"]["stem_bn"]["mean"])
    )
    with np.load(path) as archive:
        arrays = {k: archive[k] for k in archive.files}
    arrays["params/head/kernel"] = arrays["params/head/kernel"][:, :5]
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(ConfigError, match=r"params/head/kernel has shape \(16, 5\)"):
        with_weights(user_model(model, variables), tmp_path / "bad.npz")
    del arrays["params/head/bias"]
    np.savez(tmp_path / "missing.npz", **{k: v for k, v in arrays.items() if k != "params/head/kernel"})
    with pytest.raises(ConfigError, match="lacks params/head/bias"):
        with_weights(user_model(model, variables), tmp_path / "missing.npz")


def test_a_stored_model_reloads_as_the_same_graph_and_is_addressed_by_content(tmp_path):
    model, variables = usermodels.linen_resnet()
    source = user_model(model, _with_random_statistics(variables))
    found = discover(source.forward, source.variables, EXAMPLES, name=source.name)
    stored = store_model(found, source, origin="test", results_dir=tmp_path)
    reloaded = analyze(load_model_spec(str(stored.spec_path)), found.graph.input_shape, found.graph.num_classes)
    assert _structure(reloaded) == _structure(found.graph)
    assert store_model(found, source, origin="test", results_dir=tmp_path) == stored
    other = user_model(model, _with_random_statistics(variables, seed=9))
    changed = discover(other.forward, other.variables, EXAMPLES, name=other.name)
    assert store_model(changed, other, origin="test", results_dir=tmp_path).spec_path != stored.spec_path


def test_a_discovered_model_with_a_float_region_compiles_once_for_every_trial(digits):
    model = usermodels.LinenWithLayerNorm()
    found = _discover(model, model.init(jax.random.key(0), EXAMPLES[:1]), digits.x_train[:32])
    trainer = make_trainer(found.graph, FinetuneConfig(steps=3))
    params = jax.tree_util.tree_map(jnp.asarray, found.params)
    x, y = jnp.asarray(digits.x_train), jnp.asarray(digits.y_train)
    study = optuna.create_study(directions=["maximize"], sampler=optuna.samplers.RandomSampler(seed=3))
    for number in range(4):
        candidate = suggest_candidate(study.ask(), found.graph, SearchSpace())
        compression = build_compression(found.graph, params, candidate)
        tuned, compression = finetune(trainer, params, compression, x, y, seed=number, steps=3)
        evaluate(trainer, tuned, compression, digits.x_val, digits.y_val)
        assert dict(trainer.trace_counts) == {"start": 1, "calibrate": 1, "train_step": 1, "predict": 1}
    assert set(compression["ranges"]) >= {"norm_float/out"}  # the region's output range is calibrated


def test_nnx_weights_files_load_into_a_fresh_module(tmp_path):
    from flax import serialization

    trained = user_model(usermodels.nnx_mlp())
    save_weights(tmp_path / "w.npz", trained.variables)
    (tmp_path / "w.msgpack").write_bytes(serialization.to_bytes(nnx.to_pure_dict(trained.variables)))
    for name in ("w.npz", "w.msgpack"):
        fresh = user_model(usermodels.NnxMLP(nnx.Rngs(5)))  # other initial weights
        loaded = with_weights(fresh, tmp_path / name)
        np.testing.assert_array_equal(
            loaded.forward(loaded.variables, EXAMPLES), trained.forward(trained.variables, EXAMPLES)
        )
