import optuna
import pytest

from search_spaces.errors import SpecError
from search_spaces.graph import analyze
from search_spaces.runtime_support import SUPPORT, runs_correctly, supported_precisions
from search_spaces.space import (
    Grid,
    LayerRule,
    SearchSpace,
    candidate_params,
    suggest_candidate,
)
from search_spaces.spec import available_models, load_model_spec
from search_spaces.techniques.channel_keep import kept_count

optuna.logging.set_verbosity(optuna.logging.WARNING)


def _graph(name):
    return analyze(load_model_spec(name), (8, 8, 1), 10)


def test_runtime_table_forbids_what_litert_gets_wrong():
    assert not runs_correctly("dwconv", 4, 16)  # silently wrong in LiteRT 2.3
    assert not runs_correctly("dwconv", 4, 32)  # int4 hybrid depthwise raises
    assert not runs_correctly("dwconv", 4, 8)  # exported wrong through litert-quantizer (measured)
    assert runs_correctly("conv", 4, 16) and runs_correctly("dense", 4, 32)
    for op in ("dense", "conv", "dwconv"):
        # 16-bit weights are float16; there is no int16-weight kernel to pair with integer activations.
        assert not runs_correctly(op, 16, 8) and not runs_correctly(op, 16, 16)
        assert runs_correctly(op, 16, 32)
    assert len(SUPPORT) == 4 * 4 * 3
    assert not any(runs_correctly("dwconv_multiplier", 4, a) for a in (8, 16, 32))


def test_a_single_input_channel_conv_is_treated_as_the_depthwise_conv_litert_makes_of_it():
    graph = _graph("dscnn")
    assert graph.layer("stem").runtime_op == "dwconv_multiplier" and graph.layer("pw1").runtime_op == "conv"
    space = SearchSpace()  # no rules: only the runtime table restricts the stem
    assert 4 not in {w for w, _ in space.choices_for(graph.layer("stem")).precisions}
    assert 4 in {w for w, _ in space.choices_for(graph.layer("pw1")).precisions}


@pytest.mark.parametrize("name", ["mlp", "cnn", "dscnn", "mobilenet_v1", "resnet8"])
def test_candidates_round_trip_through_fixed_trial_from_real_storage(name, tmp_path):
    graph = _graph(name)
    space = SearchSpace().with_model_rules(load_model_spec(name).rules)
    study = optuna.create_study(
        storage=f"sqlite:///{tmp_path / 's.db'}",
        directions=["maximize", "minimize"],
        sampler=optuna.samplers.RandomSampler(seed=1),
    )
    for _ in range(5):
        trial = study.ask()
        candidate = suggest_candidate(trial, graph, space)
        study.tell(trial, [0.5, 1.0])
        stored = study.trials[-1].params  # as read back from SQLite
        assert suggest_candidate(optuna.trial.FixedTrial(stored), graph, space) == candidate
        rebuilt = suggest_candidate(optuna.trial.FixedTrial(candidate_params(candidate, graph, space)), graph, space)
        assert rebuilt == candidate


@pytest.mark.parametrize("name", available_models())
def test_the_search_never_proposes_a_combination_the_runtime_cannot_run(name):
    graph = _graph(name)
    space = SearchSpace().with_model_rules(load_model_spec(name).rules)
    for layer in graph.compressible:
        assert set(space.choices_for(layer).precisions) <= set(supported_precisions(layer.runtime_op))
    study = optuna.create_study(directions=["maximize"], sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(30):
        candidate = suggest_candidate(study.ask(), graph, space)
        for layer in graph.compressible:
            policy = candidate.policy(layer.name)
            assert runs_correctly(layer.runtime_op, policy.weight_bits, policy.activation_bits)


def test_model_rules_pin_first_and_last_layers_to_at_least_8_bits():
    graph = _graph("cnn")
    space = SearchSpace().with_model_rules(load_model_spec("cnn").rules)
    for name in ("conv1", "fc"):
        assert {w for w, _ in space.choices_for(graph.layer(name)).precisions} == {8, 16, 32}
    assert 4 in {w for w, _ in space.choices_for(graph.layer("conv2")).precisions}


def test_first_matching_rule_wins_and_rules_can_fix_knobs():
    graph = _graph("cnn")
    space = SearchSpace(
        rules=(
            LayerRule(pattern="conv", sparsity=Grid.parse(0.5), activation_bits=(8,)),
            LayerRule(pattern="conv2", weight_bits=(32,)),  # shadowed by the rule above
        )
    )
    choices = space.choices_for(graph.layer("conv2"))
    assert choices.sparsity.values() == (0.5,)
    assert {a for _, a in choices.precisions} == {8}
    assert {w for w, _ in choices.precisions} == {4, 8}
    # A fixed knob is not suggested, so it never appears among the trial params.
    study = optuna.create_study(directions=["maximize"])
    trial = study.ask()
    suggest_candidate(trial, graph, space)
    assert "conv2.sparsity" not in trial.params and "fc.sparsity" in trial.params


def test_a_rule_leaving_no_runnable_precision_is_an_error():
    graph = _graph("dscnn")
    space = SearchSpace(rules=(LayerRule(pattern="^dw1$", weight_bits=(4,), activation_bits=(16,)),))
    with pytest.raises(SpecError, match=r"layer 'dw1'.*no precision the target runs"):
        space.choices_for(graph.layer("dw1"))


def test_a_device_restricts_the_precisions_and_a_space_can_drop_sparsity():
    graph = _graph("cnn")
    int8_only = {"conv": ((8, 8),), "dwconv_multiplier": ((8, 8), (32, 32)), "dense": ((8, 8), (8, 32))}
    space = SearchSpace().restricted_to(int8_only).without_sparsity()
    assert space.choices_for(graph.layer("conv2")).precisions == ((8, 8),)
    assert space.choices_for(graph.layer("fc")).precisions == ((8, 8), (8, 32))
    study = optuna.create_study(directions=["maximize"])
    trial = study.ask()
    candidate = suggest_candidate(trial, graph, space)
    assert candidate.policy("conv2").weight_bits == 8 and "conv2.precision" not in trial.params
    assert not any(name.endswith(".sparsity") for name in trial.params)
    with pytest.raises(SpecError, match=r"layer 'conv2' \(conv\) has no precision the target runs"):
        SearchSpace().restricted_to({"conv": ((16, 8),)}).choices_for(graph.layer("conv2"))


def test_grid_values_and_validation():
    assert Grid(low=0.0, high=0.9, step=0.1).values() == (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
    with pytest.raises(SpecError, match="does not divide"):
        Grid(low=0.0, high=1.0, step=0.3)
    with pytest.raises(SpecError):
        SearchSpace.from_dict({"sparsity": {"low": 0, "high": 0.5}})
    with pytest.raises(SpecError, match="allows only the keys"):
        SearchSpace.from_dict({"sparsty": 0.5})


def test_kept_count_rounds_and_keeps_at_least_one_channel():
    assert kept_count(32, 0.25) == 8 and kept_count(10, 0.125) == 1 and kept_count(3, 0.01) == 1
