"""Channel pruning: the share of a prunable channel group's channels kept, one knob per group (set on its
leader), so every layer writing the group (a residual add's producers together) keeps the same channels."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from search_spaces.graph import LayerSpec
from search_spaces.grid import Grid
from search_spaces.policy import LayerChoices, LayerPolicy
from search_spaces.techniques.base import Technique, TrialLike, suggest_on_grid


class ChannelKeep(Technique):
    """The keep ratio of a channel group."""

    name = "channel_keep"
    space_keys = ("channel_keep",)
    policy_fields = ("channel_keep",)
    param_suffix = "keep"
    scope = "group"
    uncompressed: ClassVar[Mapping[str, Any]] = {"channel_keep": 1.0}

    def parse(self, raw: Mapping[str, Any]) -> dict[str, Any]:
        return {"channel_keep": Grid.parse(raw["channel_keep"])} if "channel_keep" in raw else {}

    def layer_choices(
        self, settings: Mapping[str, Any], layer: LayerSpec, device_precisions: Mapping[str, Any] | None
    ) -> dict[str, Any]:
        return {"channel_keep": settings["channel_keep"]}

    def values(self, choices: LayerChoices) -> tuple[float, ...]:
        return choices.channel_keep.values()

    def policy_values(self, value: Any) -> dict[str, Any]:
        return {"channel_keep": value}

    def param_value(self, policy: LayerPolicy) -> float:
        return policy.channel_keep

    def suggest(self, trial: TrialLike, name: str, choices: LayerChoices) -> float:
        return suggest_on_grid(trial, name, choices.channel_keep)

    def reference(self, values: tuple[Any, ...]) -> float:
        return max(values)

    def describe(self, policy: LayerPolicy) -> str:
        return f"keep {policy.channel_keep:g}" if policy.channel_keep < 1 else ""
