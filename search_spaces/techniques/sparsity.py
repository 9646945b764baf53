"""Unstructured sparsity: the share of a layer's (kept) weights zeroed by magnitude, one knob per layer.

The file stores the zeros densely and no runtime here skips them (project notes, litert-facts.md), so only the
entropy-coded size falls with it: an allocation under a latency or memory budget leaves it off."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from search_spaces.graph import LayerSpec
from search_spaces.grid import Grid
from search_spaces.policy import LayerChoices, LayerPolicy
from search_spaces.techniques.base import Technique, TrialLike, suggest_on_grid


class Sparsity(Technique):
    """The unstructured sparsity of one layer."""

    name = "sparsity"
    space_keys = ("sparsity",)
    policy_fields = ("sparsity",)
    param_suffix = "sparsity"
    larger_compresses = True
    allocated_by_default = False
    uncompressed: ClassVar[Mapping[str, Any]] = {"sparsity": 0.0}

    def parse(self, raw: Mapping[str, Any]) -> dict[str, Any]:
        return {"sparsity": Grid.parse(raw["sparsity"])} if "sparsity" in raw else {}

    def layer_choices(
        self, settings: Mapping[str, Any], layer: LayerSpec, device_precisions: Mapping[str, Any] | None
    ) -> dict[str, Any]:
        return {"sparsity": settings["sparsity"]}

    def values(self, choices: LayerChoices) -> tuple[float, ...]:
        return choices.sparsity.values()

    def policy_values(self, value: Any) -> dict[str, Any]:
        return {"sparsity": value}

    def param_value(self, policy: LayerPolicy) -> float:
        return policy.sparsity

    def suggest(self, trial: TrialLike, name: str, choices: LayerChoices) -> float:
        return suggest_on_grid(trial, name, choices.sparsity)

    def reference(self, values: tuple[Any, ...]) -> float:
        return min(values)

    def describe(self, policy: LayerPolicy) -> str:
        return f"sparse {policy.sparsity:g}" if policy.sparsity > 0 else ""
