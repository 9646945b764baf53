"""Channel pruning: the share of a prunable channel group's channels kept, one knob per group (set on its
leader), so every layer writing the group (a residual add's producers together) keeps the same channels.

In the compressed model each group keeps its highest-ranked channels, ranked by the L1 or L2 norm of every
filter that writes the group (all producers of a residual group together, so adds stay consistent); the masks
are computed once per candidate from the folded baseline weights. The export removes the pruned channels
(``nas.compress.shrink``), so the cost key's channel counts and every size and memory figure fall with them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from search_spaces.errors import SpecError
from search_spaces.graph import LayerSpec, ModelGraph
from search_spaces.grid import Grid
from search_spaces.policy import LayerChoices, LayerPolicy
from search_spaces.techniques.base import CandidateLike, Technique, TrialLike, suggest_on_grid

CHANNEL_NORMS = ("l1", "l2")


class ChannelKeep(Technique):
    """The keep ratio of a channel group."""

    name = "channel_keep"
    space_keys = ("channel_keep",)
    policy_fields = ("channel_keep",)
    param_suffix = "keep"
    scope = "group"
    uncompressed: ClassVar[Mapping[str, Any]] = {"channel_keep": 1.0}
    export_step = "channels_removed"
    array_keys = ("channel_mask",)
    uncompressed_fill: ClassVar[Mapping[str, float]] = {"channel_mask": 1.0}
    key_fields = ("in_channels", "out_channels")
    figures = frozenset({"stored_bytes", "compressed_bytes", "ram_bytes"})

    def parse(self, raw: Mapping[str, Any]) -> dict[str, Any]:
        return {"channel_keep": Grid.parse(raw["channel_keep"])} if "channel_keep" in raw else {}

    def layer_choices(
        self,
        settings: Mapping[str, Any],
        layer: LayerSpec,
        device_precisions: Mapping[str, Any] | None,
        channel_granule: int = 1,
    ) -> dict[str, Any]:
        grid = settings["channel_keep"]
        if channel_granule == 1:
            return {"channel_keep": grid}
        return {
            "channel_keep": grid,
            "snapped_keep": snapped_ratios(grid.values(), layer.out_channels, channel_granule),
        }

    def values(self, choices: LayerChoices) -> tuple[float, ...]:
        return choices.keep_ratios()

    def policy_values(self, value: Any) -> dict[str, Any]:
        return {"channel_keep": value}

    def param_value(self, policy: LayerPolicy) -> float:
        return policy.channel_keep

    def suggest(self, trial: TrialLike, name: str, choices: LayerChoices) -> float:
        # Snapped ratios are not evenly spaced where the group is no multiple of the granule: a categorical
        # parameter, the same distribution for the same group in every trial of a study (its space is fixed).
        if choices.snapped_keep is not None:
            return float(trial.suggest_categorical(name, list(choices.snapped_keep)))
        return suggest_on_grid(trial, name, choices.channel_keep)

    def reference(self, values: tuple[Any, ...]) -> float:
        return max(values)

    def describe(self, policy: LayerPolicy) -> str:
        return f"keep {policy.channel_keep:g}" if policy.channel_keep < 1 else ""

    def arrays(
        self,
        graph: ModelGraph,
        params: Mapping[str, Any],
        candidate: CandidateLike,
        built: Mapping[str, Any],
        **options: Any,
    ) -> dict[str, dict[str, np.ndarray]]:
        """A 0/1 float32 mask over the output channels of every layer that writes a prunable group."""
        groups = group_keep_masks(graph, params, candidate, norm=options.get("channel_norm", "l2"))
        return {
            "channel_mask": {
                layer.name: groups[layer.out_group].astype(np.float32)
                for layer in graph.compressible
                if layer.out_group in groups
            }
        }


def kept_count(size: int, keep_ratio: float) -> int:
    """Channels kept out of ``size`` at ``keep_ratio`` (rounded half up, at least one)."""
    return max(1, min(size, int(size * keep_ratio + 0.5)))


def snapped_ratios(ratios: tuple[float, ...], size: int, granule: int) -> tuple[float, ...]:
    """The keep ratios of a group of ``size`` channels whose kept counts are whole blocks of ``granule``.

    Each ratio's kept count is rounded up to a multiple of ``granule`` and capped at ``size``: the NPU computes
    a count short of a block for about the block's cycles (Vela 5.2.0: at most 1.2% less, up to 1.45x more on
    the U55), so the block's remaining channels are kept for free. A group smaller than the granule, or any
    count that rounds up past the group, keeps every channel; duplicates are dropped, the order kept ascending.
    """
    counts = sorted({min(size, -(-kept_count(size, ratio) // granule) * granule) for ratio in ratios})
    # Rounded as a grid's values are; kept_count gives back the count (exact to 6 decimals below 10^5 channels).
    return tuple(round(count / size, 6) for count in counts)


def group_keep_masks(
    graph: ModelGraph, params: Mapping[str, Any], candidate: CandidateLike, *, norm: str = "l2"
) -> dict[int, np.ndarray]:
    """Boolean keep-mask per prunable channel group: its highest-ranked channels by ``norm``."""
    if norm not in CHANNEL_NORMS:
        raise SpecError(f"unknown channel norm {norm!r}; use one of {', '.join(CHANNEL_NORMS)}")
    masks = {}
    for group in sorted(graph.prunable_groups):
        scores = np.zeros(graph.group_sizes[group], np.float64)
        for layer in graph.compressible:
            if layer.out_group == group:
                kernel = np.asarray(params[layer.name]["kernel"], np.float64).reshape(-1, layer.out_channels)
                scores += np.abs(kernel).sum(0) if norm == "l1" else np.sqrt((kernel**2).sum(0))
        keep = candidate.policy(graph.group_leaders[group]).channel_keep  # type: ignore[arg-type]
        order = np.argsort(-scores, kind="stable")
        mask = np.zeros(scores.shape, bool)
        mask[order[: kept_count(len(scores), keep)]] = True
        masks[group] = mask
    return masks


def group_masks_of(graph: ModelGraph, channel_mask: Mapping[str, Any]) -> dict[int, np.ndarray]:
    """The keep-mask of every pruned group, read back from a compressed model's per-layer channel masks."""
    return {graph.layer(name).out_group: np.asarray(mask) > 0 for name, mask in channel_mask.items()}


def structural_mask(layer: LayerSpec, group_masks: Mapping[int, np.ndarray]) -> np.ndarray:
    """Which kernel entries survive channel pruning (output channels, and input channels of its producer)."""
    mask = np.ones(layer.kernel_shape, bool)
    if layer.out_group in group_masks:
        mask &= group_masks[layer.out_group]
    if layer.op != "dwconv" and layer.in_group in group_masks:
        in_mask = np.tile(group_masks[layer.in_group], layer.in_repeat)
        mask &= in_mask[:, None] if layer.op == "dense" else in_mask[None, None, :, None]
    return mask
