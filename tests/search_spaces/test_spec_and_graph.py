import json

import pytest

from search_spaces.errors import SpecError
from search_spaces.graph import analyze
from search_spaces.spec import available_models, load_model_spec, spec_from_dict

SHAPES = [((8, 8, 1), 10), ((28, 28, 1), 10), ((32, 32, 3), 3)]


def test_the_five_families_ship():
    assert {"mlp", "cnn", "dscnn", "mobilenet_v1", "resnet8"} <= set(available_models())


@pytest.mark.parametrize("name", ["mlp", "cnn", "dscnn", "mobilenet_v1", "resnet8"])
@pytest.mark.parametrize(("shape", "classes"), SHAPES)
def test_every_family_resolves_for_any_input_shape_and_class_count(name, shape, classes):
    graph = analyze(load_model_spec(name), shape, classes)
    assert graph.layers[-1].output_shape == (classes,)
    assert graph.compressible[0].input_shape == shape or graph.layers[0].op == "flatten"


def test_width_multiplier_scales_hidden_channels_but_not_the_classifier():
    narrow = analyze(load_model_spec("mobilenet_v1", width_multiplier=0.25), (8, 8, 1), 10)
    wide = analyze(load_model_spec("mobilenet_v1", width_multiplier=0.5), (8, 8, 1), 10)
    assert wide.layer("pw13").out_channels == 2 * narrow.layer("pw13").out_channels == 512
    assert wide.layer("fc").out_channels == narrow.layer("fc").out_channels == 10


def test_unknown_model_lists_the_valid_names():
    with pytest.raises(SpecError, match=r"unknown model 'vgg'.*cnn.*resnet8"):
        load_model_spec("vgg")


def test_spec_errors_name_the_problem(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(SpecError, match="not valid JSON"):
        load_model_spec(str(bad))
    bad.write_text(
        json.dumps(
            {
                "nodes": [
                    {"name": "a", "op": "dense", "features": 4, "inputs": ["nope"]},
                    {"name": "b", "op": "dense", "features": "classes"},
                ]
            }
        )
    )
    with pytest.raises(SpecError, match="reads 'nope'"):
        load_model_spec(str(bad))
    bad.write_text(json.dumps({"nodes": [{"name": "a", "op": "dense", "features": 4}]}))
    with pytest.raises(SpecError, match="last node must be a dense layer"):
        load_model_spec(str(bad))
    bad.write_text(json.dumps({"nodes": [{"name": "a", "op": "conv2d", "features": 4}]}))
    with pytest.raises(SpecError, match="unknown op 'conv2d'"):
        load_model_spec(str(bad))


def test_residual_adds_tie_channel_groups_together():
    graph = analyze(load_model_spec("resnet8"), (8, 8, 1), 10)
    assert graph.layer("b1_conv2").out_group == graph.layer("stem").out_group  # identity shortcut
    assert graph.layer("b2_conv2").out_group == graph.layer("b2_proj").out_group  # projection shortcut
    assert graph.layer("b2_conv1").out_group != graph.layer("b2_conv2").out_group
    assert graph.leader_of(graph.layer("stem").out_group) == "stem"


def test_depthwise_conv_follows_its_producer_and_output_group_is_fixed():
    graph = analyze(load_model_spec("dscnn"), (8, 8, 1), 10)
    assert graph.layer("dw1").out_group == graph.layer("stem").out_group
    assert graph.leader_of(graph.layer("dw2").out_group) == "pw1"
    assert graph.layer("fc").out_group not in graph.prunable_groups
    assert graph.layer("stem").in_group not in graph.prunable_groups


def test_dense_after_flatten_repeats_each_channel_over_space():
    graph = analyze(load_model_spec("mlp"), (8, 8, 1), 10)
    assert graph.layer("fc1").in_repeat == 64
    assert graph.layer("fc1").kernel_shape == (64, 128)


def test_a_minimum_feature_size_keeps_small_inputs_from_shrinking_to_a_point():
    small = analyze(load_model_spec("mobilenet_v1"), (8, 8, 1), 10)
    spatial = [layer.output_shape[:2] for layer in small.layers if layer.op in ("conv", "dwconv")]
    assert min(min(s) for s in spatial) == 2  # without the rule: 1x1 after the third stride
    assert small.layer("dw4").stride == (1, 1) and small.layer("dw2").stride == (2, 2)
    reference = analyze(load_model_spec("mobilenet_v1"), (96, 96, 3), 10)  # the published input: every stride
    assert reference.layer("pw13").output_shape[:2] == (3, 3)
    assert all(reference.layer(name).stride == (2, 2) for name in ("stem", "dw2", "dw4", "dw6", "dw12"))


def test_a_minimum_feature_size_is_validated_and_part_of_the_identity_only_when_set():
    raw = json.loads(load_model_spec("cnn").to_json())
    assert "min_feature_size" not in raw
    with pytest.raises(SpecError, match="min_feature_size must be a positive integer"):
        spec_from_dict({**raw, "min_feature_size": 0})
    with pytest.raises(SpecError, match="min_feature_size must be a positive integer"):
        spec_from_dict({**raw, "min_feature_size": 1.5})
    assert analyze(spec_from_dict({**raw, "min_feature_size": 4}), (8, 8, 1), 10).layer("conv2").stride == (2, 2)
    sized = spec_from_dict({**raw, "min_feature_size": 5})
    assert json.loads(sized.to_json())["min_feature_size"] == 5
    assert spec_from_dict(json.loads(sized.to_json())) == sized  # the identity round-trips
    assert analyze(sized, (8, 8, 1), 10).layer("conv2").stride == (1, 1)  # 8 -> 4 would go below the floor


def test_a_training_rate_is_validated_and_part_of_the_identity_only_when_set():
    raw = json.loads(load_model_spec("cnn").to_json())
    assert "train_learning_rate" not in raw and load_model_spec("cnn").train_learning_rate is None
    for bad in (0, -0.1, 2.0, "fast", True):
        with pytest.raises(SpecError, match="train_learning_rate must be a number in"):
            spec_from_dict({**raw, "train_learning_rate": bad})
    declared = spec_from_dict({**raw, "train_learning_rate": 0.03})
    assert json.loads(declared.to_json())["train_learning_rate"] == 0.03
    assert spec_from_dict(json.loads(declared.to_json())) == declared
