"""The contract every registered compression technique passes, and the registry's own rules."""

import dataclasses

import numpy as np
import optuna
import pytest

from latency_models.keys import layer_keys
from latency_models.memory import ram_bytes
from latency_models.size import compressed_bytes, stored_bytes
from nas.compress.compression import build_compression, stored_codes, uncompressed_like
from nas.compress.models import fold_batchnorm, init_variables
from nas.compress.shrink import WEIGHT_STEPS
from nas.runtime.export import FILE_STEPS
from search_spaces.errors import SpecError
from search_spaces.graph import analyze
from search_spaces.space import (
    Candidate,
    LayerChoices,
    LayerPolicy,
    LayerRule,
    SearchSpace,
    candidate_params,
    suggest_candidate,
)
from search_spaces.spec import load_model_spec
from search_spaces.techniques import (
    TECHNIQUES,
    policy_fields,
    space_keys,
    technique_of_field,
    technique_of_param,
)
from search_spaces.techniques.base import FIGURES

optuna.logging.set_verbosity(optuna.logging.WARNING)
# A residual family: its channel groups join several producers, the case a group-scoped knob must get right.
GRAPH = analyze(load_model_spec("resnet8"), (8, 8, 1), 10)
PARAMS = fold_batchnorm(GRAPH, init_variables(GRAPH, 0))
NARROW = {"weight_bits": [8], "activation_bits": [8], "sparsity": 0.5, "channel_keep": 0.5}


@pytest.fixture(params=TECHNIQUES, ids=lambda technique: technique.name)
def technique(request):
    return request.param


def test_the_registry_names_every_policy_field_and_key_once():
    assert sorted(policy_fields()) == sorted(f.name for f in dataclasses.fields(LayerPolicy))
    assert len(set(space_keys())) == len(space_keys())
    assert len({t.param_suffix for t in TECHNIQUES}) == len(TECHNIQUES) == len({t.name for t in TECHNIQUES})
    with pytest.raises(SpecError, match="belongs to no compression technique"):
        technique_of_param("conv1.rank")


def test_a_technique_owns_its_fields_keys_and_parameters(technique):
    assert set(technique.uncompressed) == set(technique.policy_fields)
    for field in technique.policy_fields:
        assert technique_of_field(field) is technique
    layer = technique.knob_layers(GRAPH)[0]
    assert technique_of_param(technique.param_name(layer)) is technique
    choice_fields = {f.name for f in dataclasses.fields(LayerChoices)}
    settings = {key: getattr(SearchSpace(), key) for key in space_keys()}
    assert set(technique.layer_choices(settings, layer, None)) <= choice_fields


def test_a_technique_parses_its_own_keys_and_a_rule_of_them_narrows_the_layer(technique):
    own = {key: NARROW[key] for key in technique.space_keys}
    assert set(technique.parse({**own, "other": 1})) <= {f.name for f in dataclasses.fields(SearchSpace)}
    assert technique.parse({}) == {}
    layer = technique.knob_layers(GRAPH)[0]
    wide = technique.values(SearchSpace().choices_for(layer))
    narrowed = SearchSpace(rules=(LayerRule.parse({"pattern": layer.name, **own}),)).choices_for(layer)
    assert len(wide) > 1 and len(technique.values(narrowed)) == 1  # the rule's key reached the choices
    assert technique.values(SearchSpace.from_dict(own).choices_for(layer)) == technique.values(narrowed)


def test_the_reference_value_is_the_uncompressed_one_and_a_compressed_value_reads_differently(technique):
    layer = technique.knob_layers(GRAPH)[0]
    values = technique.values(SearchSpace().choices_for(layer))
    reference = technique.reference(values)
    assert technique.policy_values(reference) == dict(technique.uncompressed)
    uncompressed = LayerPolicy(**{f: v for t in TECHNIQUES for f, v in t.uncompressed.items()})
    assert technique.param_value(uncompressed) == reference
    other = next(value for value in values if value != reference)
    compressed = technique.describe(dataclasses.replace(uncompressed, **technique.policy_values(other)))
    assert compressed and compressed != technique.describe(uncompressed)


def test_every_value_of_every_knob_round_trips_through_optuna_parameters(technique):
    space = SearchSpace()
    for layer in technique.knob_layers(GRAPH):
        for value in technique.values(space.choices_for(layer)):
            name = technique.param_name(layer)
            candidate = suggest_candidate(_Only(name, value), GRAPH, space)
            for target in technique.targets(GRAPH, layer):
                assert technique.param_value(candidate.policy(target)) == value
            assert candidate_params(candidate, GRAPH, space)[name] == value


def test_a_group_knob_sets_every_producer_of_its_group_and_nothing_else():
    keep = technique_of_param("x.keep")
    for leader in keep.knob_layers(GRAPH):
        targets = keep.targets(GRAPH, leader)
        assert leader.name in targets
        assert {GRAPH.layer(name).out_group for name in targets} == {leader.out_group}


def _one_knob_compressed(technique):
    """The uncompressed candidate with ``technique``'s first knob at each value other than its reference."""
    layer = technique.knob_layers(GRAPH)[0]
    values = technique.values(SearchSpace().choices_for(layer))
    uncompressed = Candidate.uncompressed(GRAPH)
    targets = set(technique.targets(GRAPH, layer))
    return [
        Candidate(
            policies=tuple(
                (name, dataclasses.replace(policy, **technique.policy_values(value)) if name in targets else policy)
                for name, policy in uncompressed.policies
            )
        )
        for value in values
        if value != technique.reference(values)
    ]


def test_a_technique_writes_its_own_arrays_of_the_compressed_model_and_its_fill_undoes_them(technique):
    candidate = _one_knob_compressed(technique)[0]
    built = {}
    for earlier in sorted(TECHNIQUES, key=lambda t: t.build_stage):
        if earlier.build_stage < technique.build_stage:
            built |= earlier.arrays(GRAPH, PARAMS, candidate, built)
    own = technique.arrays(GRAPH, PARAMS, candidate, built)
    assert set(own) == set(technique.array_keys) == set(technique.uncompressed_fill)
    compressed = build_compression(GRAPH, PARAMS, candidate)
    plain = build_compression(GRAPH, PARAMS, Candidate.uncompressed(GRAPH))
    assert set(compressed) == {key for t in TECHNIQUES for key in t.array_keys} | {"ranges"}
    changed = [key for key in technique.array_keys if _differs(compressed[key], plain[key])]
    assert changed  # the knob reached the compressed model through this technique's arrays
    undone = uncompressed_like(compressed)
    for key in technique.array_keys:
        assert not _differs(undone[key], plain[key])


def _differs(arrays, others):
    return any(not np.array_equal(np.asarray(arrays[name]), np.asarray(others[name])) for name in arrays)


def test_a_technique_changes_exactly_its_share_of_the_cost_keys_and_figures(technique):
    """What its values change, together, is what it declares: no value changes a key field or a figure it
    does not own (a new technique's costs cannot go unaccounted)."""
    plain = Candidate.uncompressed(GRAPH)
    before = _figures(plain)
    fields, figures = set(), set()
    for candidate in _one_knob_compressed(technique):
        fields |= {
            field.name
            for (_, key), (_, other) in zip(layer_keys(GRAPH, candidate), layer_keys(GRAPH, plain), strict=True)
            for field in dataclasses.fields(key)
            if getattr(key, field.name) != getattr(other, field.name)
        }
        after = _figures(candidate)
        figures |= {name for name in FIGURES if after[name] != before[name]}
    assert fields == set(technique.key_fields)
    assert figures == technique.figures


def test_a_technique_names_an_export_step_the_runtime_does_once():
    steps = [technique.export_step for technique in TECHNIQUES]
    assert len(set(steps)) == len(steps)
    assert set(steps) == set(WEIGHT_STEPS) | set(FILE_STEPS)  # every step done, and none without its technique
    assert not set(WEIGHT_STEPS) & set(FILE_STEPS)


def _figures(candidate):
    codes = stored_codes(GRAPH, PARAMS, candidate, build_compression(GRAPH, PARAMS, candidate))
    return {
        "stored_bytes": stored_bytes(GRAPH, candidate),
        "compressed_bytes": compressed_bytes(GRAPH, candidate, codes),
        "ram_bytes": ram_bytes(GRAPH, candidate),
    }


class _Only:
    """A trial that answers ``name`` with ``value`` and every other knob with its most accurate value."""

    def __init__(self, name, value):
        self.name, self.value = name, value

    def suggest_float(self, name, low, high, *, step=None):
        return self.value if name == self.name else technique_of_param(name).reference((low, high))

    def suggest_categorical(self, name, choices):
        return self.value if name == self.name else technique_of_param(name).reference(tuple(choices))
