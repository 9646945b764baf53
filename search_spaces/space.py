"""The per-layer search space, ordered layer rules, and the candidate a trial proposes.

Knobs per compressible layer: unstructured ``sparsity``, a ``precision`` (weight bits and activation bits,
one categorical so that combinations the runtime cannot run are never proposed) and, for the leader of each
prunable channel group, a channel ``keep`` ratio. ``suggest_candidate`` is a pure function of the trial, so
``suggest_candidate(optuna.trial.FixedTrial(trial.params), ...)`` rebuilds any trial's candidate exactly.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

from search_spaces.errors import SpecError
from search_spaces.graph import LayerSpec, ModelGraph
from search_spaces.runtime_support import ACTIVATION_BITS, WEIGHT_BITS, runs_correctly

MAX_GRID_VALUES = 10_000  # a finer grid is a continuous knob in disguise, and enumerating it would stall


def _opt_tuple(value: Any) -> tuple[int, ...] | None:
    return None if value is None else _bit_list(value)


def _bit_list(value: Any) -> tuple[int, ...]:
    """A JSON list of bit widths: integers only (4.5 is refused, never truncated to 4)."""
    if not isinstance(value, list) or not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        raise SpecError(f"bit widths must be a list of integers, got {value!r}")
    return tuple(value)


def _check_bits(name: str, bits: tuple[int, ...] | None, allowed: tuple[int, ...]) -> None:
    if bits is not None and (not bits or any(b not in allowed for b in bits)):
        raise SpecError(f"{name} {bits} must be a non-empty subset of {allowed}")


@dataclass(frozen=True, kw_only=True)
class Grid:
    """Evenly spaced values ``low, low + step, ..., high`` (a single value when low == high)."""

    low: float
    high: float
    step: float

    def __post_init__(self) -> None:
        if not (0.0 <= self.low <= self.high <= 1.0) or not self.step > 0 or not math.isfinite(self.step):
            raise SpecError(f"a grid needs 0 <= low <= high <= 1 and step > 0, got {self}")
        count = (self.high - self.low) / self.step
        if count > MAX_GRID_VALUES:
            raise SpecError(
                f"a grid from {self.low} to {self.high} by {self.step} has {count:.3g} values; "
                f"use a step of at least {(self.high - self.low) / MAX_GRID_VALUES:.2g}"
            )
        if self.low != self.high and abs(count - round(count)) > 1e-6:
            raise SpecError(f"grid step {self.step} does not divide [{self.low}, {self.high}]")

    def values(self) -> tuple[float, ...]:
        """All values of the grid, rounded to 6 decimals."""
        count = round((self.high - self.low) / self.step)
        return tuple(round(self.low + i * self.step, 6) for i in range(count + 1))

    @classmethod
    def parse(cls, value: Any) -> Grid:
        """A grid from a number (fixed value) or a ``{"low", "high", "step"}`` object."""
        if isinstance(value, int | float) and not isinstance(value, bool):
            return cls(low=float(value), high=float(value), step=1.0)
        numbers = isinstance(value, dict) and all(
            isinstance(value.get(k), int | float) and not isinstance(value.get(k), bool)
            for k in ("low", "high", "step")
        )
        if isinstance(value, dict) and set(value) == {"low", "high", "step"} and numbers:
            return cls(low=float(value["low"]), high=float(value["high"]), step=float(value["step"]))
        raise SpecError(f"expected a number or {{'low', 'high', 'step'}}, got {value!r}")


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
        _check_bits("weight_bits", self.weight_bits, WEIGHT_BITS)
        _check_bits("activation_bits", self.activation_bits, ACTIVATION_BITS)

    @classmethod
    def parse(cls, raw: dict[str, Any]) -> LayerRule:
        """A rule from its JSON form."""
        unknown = set(raw) - {"pattern", "weight_bits", "activation_bits", "sparsity", "channel_keep"}
        if "pattern" not in raw or unknown:
            raise SpecError(f"a rule needs 'pattern' and only knob keys; got keys {sorted(raw)}")
        return cls(
            pattern=str(raw["pattern"]),
            weight_bits=_opt_tuple(raw.get("weight_bits")),
            activation_bits=_opt_tuple(raw.get("activation_bits")),
            sparsity=Grid.parse(raw["sparsity"]) if "sparsity" in raw else None,
            channel_keep=Grid.parse(raw["channel_keep"]) if "channel_keep" in raw else None,
        )


@dataclass(frozen=True, kw_only=True)
class LayerChoices:
    """What one layer may take after rules and runtime support are applied."""

    sparsity: Grid
    channel_keep: Grid
    precisions: tuple[tuple[int, int], ...]


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

    def __post_init__(self) -> None:
        _check_bits("weight_bits", self.weight_bits, WEIGHT_BITS)
        _check_bits("activation_bits", self.activation_bits, ACTIVATION_BITS)
        if self.channel_keep.low <= 0:
            raise SpecError("channel_keep must stay above 0: a layer needs at least one channel")
        if self.sparsity.high >= 1.0 or any(r.sparsity is not None and r.sparsity.high >= 1.0 for r in self.rules):
            raise SpecError("sparsity must stay below 1: a layer with every weight pruned computes nothing")

    def choices_for(self, layer: LayerSpec) -> LayerChoices:
        """The knob values ``layer`` may take: the first matching rule narrows the global ranges."""
        rule = next((r for r in self.rules if re.search(r.pattern, layer.name)), None)
        w_bits = rule.weight_bits if rule and rule.weight_bits else self.weight_bits
        a_bits = rule.activation_bits if rule and rule.activation_bits else self.activation_bits
        device = None if self.device_precisions is None else set(self.device_precisions.get(layer.runtime_op, ()))
        precisions = tuple(
            (w, a)
            for w in sorted(w_bits)
            for a in sorted(a_bits)
            if runs_correctly(layer.runtime_op, w, a) and (device is None or (w, a) in device)
        )
        if not precisions:
            raise SpecError(
                f"layer {layer.name!r} ({layer.runtime_op}) has no precision the target runs: weight bits {w_bits} x "
                f"activation bits {a_bits}; allow 8-bit weights or float activations for it, or pick another device"
            )
        return LayerChoices(
            sparsity=rule.sparsity if rule and rule.sparsity else self.sparsity,
            channel_keep=rule.channel_keep if rule and rule.channel_keep else self.channel_keep,
            precisions=precisions,
        )

    def restricted_to(self, precisions: Mapping[str, tuple[tuple[int, int], ...]]) -> SearchSpace:
        """This space limited to the precisions a device runs, per runtime op."""
        return replace(self, device_precisions=dict(precisions))

    def without_sparsity(self) -> SearchSpace:
        """This space with unstructured sparsity fixed at 0 everywhere (rules included)."""
        zero = Grid(low=0.0, high=0.0, step=1.0)
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
        """A space from its JSON form: optional sparsity/channel_keep grids, bit lists and ordered rules."""
        known = {"sparsity", "channel_keep", "weight_bits", "activation_bits", "rules"}
        if not isinstance(raw, dict) or set(raw) - known:
            raise SpecError(f"a search space allows only the keys {sorted(known)}")
        kwargs: dict[str, Any] = {}
        for key in ("sparsity", "channel_keep"):
            if key in raw:
                kwargs[key] = Grid.parse(raw[key])
        for key in ("weight_bits", "activation_bits"):
            if key in raw:
                kwargs[key] = _bit_list(raw[key])
        rules = raw.get("rules", [])
        if not isinstance(rules, list) or not all(isinstance(r, dict) for r in rules):
            raise SpecError(f"rules must be a list of objects, got {rules!r}")
        kwargs["rules"] = tuple(LayerRule.parse(r) for r in rules)
        return cls(**kwargs)


@dataclass(frozen=True, kw_only=True)
class LayerPolicy:
    """How one layer is compressed."""

    sparsity: float
    channel_keep: float
    weight_bits: int
    activation_bits: int

    def __post_init__(self) -> None:
        if not 0.0 <= self.sparsity < 1.0:
            raise SpecError(f"sparsity must be in [0, 1), got {self.sparsity}")
        if not 0.0 < self.channel_keep <= 1.0:
            raise SpecError(f"channel_keep must be in (0, 1], got {self.channel_keep}")
        _check_bits("weight_bits", (self.weight_bits,), WEIGHT_BITS)
        _check_bits("activation_bits", (self.activation_bits,), ACTIVATION_BITS)


UNCOMPRESSED = LayerPolicy(sparsity=0.0, channel_keep=1.0, weight_bits=32, activation_bits=32)


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


class TrialLike(Protocol):
    """The part of ``optuna.Trial`` (and ``FixedTrial``) that the space uses."""

    def suggest_float(self, name: str, low: float, high: float, *, step: float | None = None) -> float: ...

    def suggest_categorical(self, name: str, choices: Any) -> Any: ...


def precision_label(weight_bits: int, activation_bits: int) -> str:
    """The categorical value for a precision, e.g. ``w8a16``."""
    return f"w{weight_bits}a{activation_bits}"


def parse_precision(label: str) -> tuple[int, int]:
    """Inverse of ``precision_label``."""
    match = re.fullmatch(r"w(\d+)a(\d+)", label)
    if not match:
        raise SpecError(f"precision {label!r} is not of the form w<bits>a<bits>")
    return int(match.group(1)), int(match.group(2))


def suggest_candidate(trial: TrialLike, graph: ModelGraph, space: SearchSpace) -> Candidate:
    """Proposes a candidate; knobs with a single allowed value are fixed rather than suggested."""
    keeps = {}
    for group in sorted(graph.prunable_groups):
        leader = graph.layer(graph.group_leaders[group])  # type: ignore[arg-type]
        keeps[group] = _suggest_grid(trial, f"{leader.name}.keep", space.choices_for(leader).channel_keep)
    policies = []
    for layer in graph.compressible:
        choices = space.choices_for(layer)
        sparsity = _suggest_grid(trial, f"{layer.name}.sparsity", choices.sparsity)
        labels = [precision_label(w, a) for w, a in choices.precisions]
        label = labels[0] if len(labels) == 1 else trial.suggest_categorical(f"{layer.name}.precision", labels)
        if label not in labels:
            raise SpecError(f"layer {layer.name!r}: precision {label!r} is not allowed; choose from {labels}")
        weight_bits, activation_bits = parse_precision(label)
        policy = LayerPolicy(
            sparsity=sparsity,
            channel_keep=keeps.get(layer.out_group, 1.0),
            weight_bits=weight_bits,
            activation_bits=activation_bits,
        )
        policies.append((layer.name, policy))
    return Candidate(policies=tuple(policies))


def candidate_params(candidate: Candidate, graph: ModelGraph, space: SearchSpace) -> dict[str, Any]:
    """The Optuna params that make ``suggest_candidate`` return ``candidate`` (inverse of it)."""
    params: dict[str, Any] = {}
    for group in sorted(graph.prunable_groups):
        leader = graph.layer(graph.group_leaders[group])  # type: ignore[arg-type]
        if len(space.choices_for(leader).channel_keep.values()) > 1:
            params[f"{leader.name}.keep"] = candidate.policy(leader.name).channel_keep
    for layer in graph.compressible:
        choices = space.choices_for(layer)
        policy = candidate.policy(layer.name)
        if len(choices.sparsity.values()) > 1:
            params[f"{layer.name}.sparsity"] = policy.sparsity
        if len(choices.precisions) > 1:
            params[f"{layer.name}.precision"] = precision_label(policy.weight_bits, policy.activation_bits)
    return params


def kept_count(size: int, keep_ratio: float) -> int:
    """Channels kept out of ``size`` at ``keep_ratio`` (rounded half up, at least one)."""
    return max(1, min(size, int(size * keep_ratio + 0.5)))


def _suggest_grid(trial: TrialLike, name: str, grid: Grid) -> float:
    values = grid.values()
    if len(values) == 1:
        return values[0]
    value = trial.suggest_float(name, grid.low, grid.high, step=grid.step)
    return round(value, 6)
