"""What a compression technique is to the search: a knob family with its JSON keys, its choices per layer and
its Optuna parameters.

A technique owns, for its share of a ``LayerPolicy`` (``policy_fields``):
- its keys in a search-space JSON and in a rule (``space_keys``), parsed and checked by ``parse``;
- what one layer may take once rules and the device are applied (``layer_choices``, the technique's fields
  of ``LayerChoices``);
- its knobs: one Optuna parameter per layer, or per prunable channel group (``scope``), named
  ``<layer>.<param_suffix>``, with ``suggest`` and its inverse ``param_value``, and the layers a knob's value
  applies to (``targets``);
- which value is the most accurate (``reference``), which the uncompressed one (``uncompressed``), and how
  it reads in a trial's one-line summary (``describe``);
- its arrays in the compressed model (``array_keys``, built by ``arrays`` from the folded baseline weights, in
  ``build_stage`` order so a later technique may read an earlier one's; ``uncompressed_fill`` undoes them);
- its share of the costs: the fields of a layer's cost key it changes (``key_fields``, of
  ``latency_models.table.LayerKey``) and the size and memory figures it changes (``figures``);
- its export recipe (``export_step``): named here, done by the runtime (``nas.compress.shrink`` on the
  weights before conversion, ``nas.runtime.export`` on the file), since how it is done depends on the runtime.
Everything that iterates knobs (the space's suggest/params round trip, the allocation, ``nas analyze``, the
layer plots), builds a compressed model (``nas.compress.compression``) or exports one goes through the
registry (``search_spaces.techniques``); ``tests/search_spaces/test_techniques.py`` holds the contract every
registered technique passes.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping
from typing import Any, ClassVar, Literal, Protocol

import numpy as np

from search_spaces.graph import LayerSpec, ModelGraph
from search_spaces.grid import Grid
from search_spaces.policy import LayerChoices, LayerPolicy

FIGURES = ("stored_bytes", "compressed_bytes", "ram_bytes")  # size and memory figures a technique may change


class CandidateLike(Protocol):
    """The part of ``search_spaces.space.Candidate`` a technique reads: each layer's policy."""

    def policy(self, name: str) -> LayerPolicy: ...


class TrialLike(Protocol):
    """The part of ``optuna.Trial`` (and ``FixedTrial``) that the space uses."""

    def suggest_float(self, name: str, low: float, high: float, *, step: float | None = None) -> float: ...

    def suggest_categorical(self, name: str, choices: Any) -> Any: ...


class Technique(abc.ABC):
    """One compression technique as the search space sees it (see the module docstring)."""

    name: ClassVar[str]
    space_keys: ClassVar[tuple[str, ...]]
    policy_fields: ClassVar[tuple[str, ...]]
    param_suffix: ClassVar[str]
    scope: ClassVar[Literal["layer", "group"]] = "layer"
    # Whether a larger value of its fields means more compression (sparsity), or less (bits, channels kept).
    larger_compresses: ClassVar[bool] = False
    # Whether an allocation under a budget moves it by default: off where no device saves latency by it.
    allocated_by_default: ClassVar[bool] = True
    uncompressed: ClassVar[Mapping[str, Any]]
    # The compressed model's arrays (``nas.compress.models.Compression`` keys, each by layer name) it writes,
    # and the value that leaves a layer uncompressed in each.
    array_keys: ClassVar[tuple[str, ...]] = ()
    uncompressed_fill: ClassVar[Mapping[str, float]] = {}
    build_stage: ClassVar[int] = 0  # arrays are built lowest stage first
    key_fields: ClassVar[tuple[str, ...]] = ()  # the ``LayerKey`` fields its settings change
    # The size and memory figures its settings change, among FIGURES.
    figures: ClassVar[frozenset[str]] = frozenset()
    # Its export recipe: a step a runtime implements, on the weights before conversion or on the file after.
    export_step: ClassVar[str]

    @abc.abstractmethod
    def parse(self, raw: Mapping[str, Any]) -> dict[str, Any]:
        """This technique's settings among ``raw`` (a space's or a rule's JSON), checked, by field name."""

    @abc.abstractmethod
    def layer_choices(
        self,
        settings: Mapping[str, Any],
        layer: LayerSpec,
        device_precisions: Mapping[str, Any] | None,
        channel_granule: int = 1,
    ) -> dict[str, Any]:
        """This technique's fields of ``LayerChoices`` for ``layer``, from the knob ``settings`` that apply to it
        (its rule's where set, else the space's), the precisions the target device runs per runtime op and the
        channel count its output channels are computed in blocks of (1: none)."""

    @abc.abstractmethod
    def values(self, choices: LayerChoices) -> tuple[Any, ...]:
        """The parameter values a layer's choices allow, as Optuna stores them."""

    @abc.abstractmethod
    def policy_values(self, value: Any) -> dict[str, Any]:
        """The ``LayerPolicy`` fields a parameter value sets."""

    @abc.abstractmethod
    def param_value(self, policy: LayerPolicy) -> Any:
        """Inverse of ``policy_values``: the parameter value of ``policy``."""

    @abc.abstractmethod
    def suggest(self, trial: TrialLike, name: str, choices: LayerChoices) -> Any:
        """Asks ``trial`` for parameter ``name`` among the values ``choices`` allow (more than one)."""

    @abc.abstractmethod
    def reference(self, values: tuple[Any, ...]) -> Any:
        """The most accurate of ``values``."""

    @abc.abstractmethod
    def describe(self, policy: LayerPolicy) -> str:
        """How ``policy``'s setting reads in a trial summary ("" where it need not be said, e.g. uncompressed)."""

    @abc.abstractmethod
    def arrays(
        self,
        graph: ModelGraph,
        params: Mapping[str, Any],
        candidate: CandidateLike,
        built: Mapping[str, Any],
        **options: Any,
    ) -> dict[str, dict[str, np.ndarray]]:
        """Its arrays of the compressed model (``array_keys``, each by layer name) for ``candidate`` on the
        folded weights ``params``; ``built`` holds the arrays of the
        techniques of lower ``build_stage``, ``options`` the search's settings (``channel_norm``)."""

    def knob_layers(self, graph: ModelGraph) -> list[LayerSpec]:
        """The layers that carry one knob each: every compressible layer, or each channel group's leader."""
        if self.scope == "layer":
            return list(graph.compressible)
        return [graph.layer(graph.group_leaders[group]) for group in sorted(graph.prunable_groups)]  # type: ignore[arg-type]

    def targets(self, graph: ModelGraph, layer: LayerSpec) -> list[str]:
        """The layers the value of ``layer``'s knob applies to."""
        if self.scope == "layer":
            return [layer.name]
        return [other.name for other in graph.compressible if other.out_group == layer.out_group]

    def param_name(self, layer: LayerSpec) -> str:
        """The Optuna parameter of ``layer``'s knob."""
        return f"{layer.name}.{self.param_suffix}"


def suggest_on_grid(trial: TrialLike, name: str, grid: Grid) -> float:
    """Asks ``trial`` for a value of ``grid`` (rounded to the grid's 6 decimals)."""
    return round(trial.suggest_float(name, grid.low, grid.high, step=grid.step), 6)
