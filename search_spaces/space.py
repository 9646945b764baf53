"""The per-layer search space, ordered layer rules, and the candidate a trial proposes.

The knobs are the registered compression techniques' (``search_spaces.techniques``): per compressible layer a
``precision`` (weight and activation bits, one categorical so that combinations the runtime cannot run are
never proposed) and an unstructured ``sparsity``, and per prunable channel group a channel ``keep`` ratio.
``suggest_candidate`` is a pure function of the trial, so ``suggest_candidate(optuna.trial.FixedTrial(
trial.params), ...)`` rebuilds any trial's candidate exactly.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from search_spaces.errors import SpecError
from search_spaces.graph import LayerSpec, ModelGraph
from search_spaces.grid import Grid
from search_spaces.policy import UNCOMPRESSED, LayerChoices, LayerPolicy, check_bits
from search_spaces.runtime_support import ACTIVATION_BITS, WEIGHT_BITS
from search_spaces.techniques import TECHNIQUES, space_keys
from search_spaces.techniques.base import Technique, TrialLike


@dataclass(frozen=True, kw_only=True)
class LayerRule:
    """Overrides for layers whose name matches ``pattern`` (``re.search``); the first matching rule wins."""

    pattern: str
    weight_bits: tuple[int, ...] | None = None
    activation_bits: tuple[int, ...] | None = None
    sparsity: Grid | None = None
    channel_keep: Grid | None = None

    def __post_init__(self) -> None:
        try:
            re.compile(self.pattern)
        except re.error as err:
            raise SpecError(f"rule pattern {self.pattern!r} is not a valid regex: {err}") from None
        check_bits("weight_bits", self.weight_bits, WEIGHT_BITS)
        check_bits("activation_bits", self.activation_bits, ACTIVATION_BITS)

    @classmethod
    def parse(cls, raw: dict[str, Any]) -> LayerRule:
        """A rule from its JSON form: a pattern and any technique's knob keys."""
        if "pattern" not in raw or set(raw) - {"pattern", *space_keys()}:
            raise SpecError(f"a rule needs 'pattern' and only knob keys; got keys {sorted(raw)}")
        return cls(pattern=str(raw["pattern"]), **_technique_settings(raw))


@dataclass(frozen=True, kw_only=True)
class SearchSpace:
    """Global knob ranges plus ordered per-layer rules."""

    sparsity: Grid = field(default_factory=lambda: Grid(low=0.0, high=0.9, step=0.1))
    channel_keep: Grid = field(default_factory=lambda: Grid(low=0.25, high=1.0, step=0.125))
    weight_bits: tuple[int, ...] = WEIGHT_BITS
    activation_bits: tuple[int, ...] = ACTIVATION_BITS
    rules: tuple[LayerRule, ...] = ()
    # Per runtime op, the precisions a target device runs (None: every precision the runtime runs correctly).
    device_precisions: Mapping[str, tuple[tuple[int, int], ...]] | None = None
    # The block of output channels the target device computes together: keep ratios snap to whole blocks.
    channel_granule: int = 1

    def __post_init__(self) -> None:
        if isinstance(self.channel_granule, bool) or not isinstance(self.channel_granule, int):
            raise SpecError(f"channel_granule must be a whole number of channels, got {self.channel_granule!r}")
        if self.channel_granule < 1:
            raise SpecError(f"channel_granule must be at least 1 (1: no snapping), got {self.channel_granule}")
        check_bits("weight_bits", self.weight_bits, WEIGHT_BITS)
        check_bits("activation_bits", self.activation_bits, ACTIVATION_BITS)
        if self.channel_keep.low <= 0:
            raise SpecError("channel_keep must stay above 0: a layer needs at least one channel")
        if self.sparsity.high >= 1.0 or any(r.sparsity is not None and r.sparsity.high >= 1.0 for r in self.rules):
            raise SpecError("sparsity must stay below 1: a layer with every weight pruned computes nothing")

    def choices_for(self, layer: LayerSpec) -> LayerChoices:
        """The knob values ``layer`` may take: the first matching rule narrows the global ranges."""
        rule = next((r for r in self.rules if re.search(r.pattern, layer.name)), None)
        # Each knob key as the rule sets it, else as the space does (the keys are the fields of both).
        settings = {key: getattr(rule, key, None) or getattr(self, key) for key in space_keys()}
        fields: dict[str, Any] = {}
        for technique in TECHNIQUES:
            fields |= technique.layer_choices(settings, layer, self.device_precisions, self.channel_granule)
        return LayerChoices(**fields)

    def restricted_to(self, precisions: Mapping[str, tuple[tuple[int, int], ...]]) -> SearchSpace:
        """This space limited to the precisions a device runs, per runtime op."""
        return replace(self, device_precisions=dict(precisions))

    def snapped_to(self, granule: int) -> SearchSpace:
        """This space with every channel group's kept count a whole number of ``granule``-channel blocks
        (``search_spaces.techniques.channel_keep.snapped_ratios``); 1 leaves the grids as they are."""
        return replace(self, channel_granule=granule)

    def without_sparsity(self) -> SearchSpace:
        """This space with unstructured sparsity fixed at 0 everywhere (rules included)."""
        zero = Grid.fixed(0.0)
        return replace(
            self, sparsity=zero, rules=tuple(replace(r, sparsity=zero if r.sparsity else None) for r in self.rules)
        )

    def with_model_rules(self, raw_rules: tuple[dict[str, Any], ...]) -> SearchSpace:
        """This space with a model family's default rules appended (the space's own rules match first)."""
        return replace(self, rules=self.rules + tuple(LayerRule.parse(r) for r in raw_rules))

    @classmethod
    def from_json(cls, path: str | Path) -> SearchSpace:
        """Loads a space from a JSON file (see ``from_dict``)."""
        try:
            raw = json.loads(Path(path).read_text())
        except (OSError, json.JSONDecodeError) as err:
            raise SpecError(f"cannot read search space {str(path)!r}: {err}") from None
        return cls.from_dict(raw)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> SearchSpace:
        """A space from its JSON form: each technique's knob keys (grids, bit lists) and ordered rules."""
        known = {*space_keys(), "rules"}
        if not isinstance(raw, dict) or set(raw) - known:
            raise SpecError(f"a search space allows only the keys {sorted(known)}")
        rules = raw.get("rules", [])
        if not isinstance(rules, list) or not all(isinstance(r, dict) for r in rules):
            raise SpecError(f"rules must be a list of objects, got {rules!r}")
        return cls(**_technique_settings(raw), rules=tuple(LayerRule.parse(r) for r in rules))


@dataclass(frozen=True, kw_only=True)
class Candidate:
    """A policy for every compressible layer, in execution order."""

    policies: tuple[tuple[str, LayerPolicy], ...]

    def policy(self, name: str) -> LayerPolicy:
        """The policy of layer ``name``."""
        for layer_name, policy in self.policies:
            if layer_name == name:
                return policy
        raise SpecError(f"candidate has no layer {name!r}; it has {', '.join(n for n, _ in self.policies)}")

    def to_dict(self) -> dict[str, dict[str, float | int]]:
        """JSON-ready form: ``{layer: {sparsity, channel_keep, weight_bits, activation_bits}}``."""
        return {name: vars(policy).copy() for name, policy in self.policies}

    @classmethod
    def from_dict(cls, raw: dict[str, dict[str, Any]]) -> Candidate:
        """Inverse of ``to_dict`` (a trial's recorded candidate); a malformed policy raises ``SpecError``."""
        try:
            policies = tuple(
                (
                    str(name),
                    LayerPolicy(
                        sparsity=float(policy["sparsity"]),
                        channel_keep=float(policy["channel_keep"]),
                        weight_bits=int(policy["weight_bits"]),
                        activation_bits=int(policy["activation_bits"]),
                    ),
                )
                for name, policy in raw.items()
            )
        except (KeyError, TypeError, ValueError, AttributeError) as err:
            raise SpecError(f"a recorded candidate is malformed ({err!r}); it was not written by nas") from None
        return cls(policies=policies)

    @classmethod
    def uncompressed(cls, graph: ModelGraph) -> Candidate:
        """The float32, unpruned candidate (the baseline)."""
        return cls(policies=tuple((layer.name, UNCOMPRESSED) for layer in graph.compressible))

    @classmethod
    def uniform(cls, graph: ModelGraph, *, weight_bits: int, activation_bits: int) -> Candidate:
        """Every layer at one precision, unpruned (for example uniform int8)."""
        policy = LayerPolicy(sparsity=0.0, channel_keep=1.0, weight_bits=weight_bits, activation_bits=activation_bits)
        return cls(policies=tuple((layer.name, policy) for layer in graph.compressible))


def suggest_candidate(trial: TrialLike, graph: ModelGraph, space: SearchSpace) -> Candidate:
    """Proposes a candidate: each technique's knobs (channel groups first, then each layer's), in registry
    order; a knob with a single allowed value is fixed rather than suggested."""
    fields: dict[str, dict[str, Any]] = {layer.name: {} for layer in graph.compressible}
    for layer, technique in space_knobs(graph):
        choices = space.choices_for(layer)
        values = technique.values(choices)
        name = technique.param_name(layer)
        value = values[0] if len(values) == 1 else technique.suggest(trial, name, choices)
        if value not in values:
            raise SpecError(f"layer {layer.name!r}: {technique.name} {value!r} is not allowed; choose from {values}")
        for target in technique.targets(graph, layer):
            fields[target] |= technique.policy_values(value)
    uncompressed = {name: value for technique in TECHNIQUES for name, value in technique.uncompressed.items()}
    return Candidate(
        policies=tuple((layer.name, LayerPolicy(**uncompressed | fields[layer.name])) for layer in graph.compressible)
    )


def candidate_params(candidate: Candidate, graph: ModelGraph, space: SearchSpace) -> dict[str, Any]:
    """The Optuna params that make ``suggest_candidate`` return ``candidate`` (inverse of it)."""
    return {
        technique.param_name(layer): technique.param_value(candidate.policy(layer.name))
        for layer, technique in space_knobs(graph)
        if len(technique.values(space.choices_for(layer))) > 1
    }


def space_knobs(graph: ModelGraph) -> list[tuple[LayerSpec, Technique]]:
    """(layer, technique) of every knob, in suggestion order: group-scoped ones, then each layer's."""
    grouped = [(layer, t) for t in TECHNIQUES if t.scope == "group" for layer in t.knob_layers(graph)]
    per_layer = [(layer, t) for layer in graph.compressible for t in TECHNIQUES if t.scope == "layer"]
    return grouped + per_layer


def _technique_settings(raw: Mapping[str, Any]) -> dict[str, Any]:
    """Every technique's settings among ``raw``'s keys (a space's or a rule's JSON)."""
    settings: dict[str, Any] = {}
    for technique in TECHNIQUES:
        settings |= technique.parse(raw)
    return settings
