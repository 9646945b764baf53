"""Unstructured sparsity: the share of a layer's (kept) weights zeroed by magnitude, one knob per layer.

In the compressed model, within the weights that survive channel pruning, the ``round(sparsity * n)``
smallest magnitudes are zeroed, so the measured sparsity of the stored tensor equals the request up to one
weight (each kept channel keeps at least its largest weight; see ``magnitude_mask``). Its array, the kernel
mask, therefore starts from the structure the channel masks leave (a later ``build_stage``).

The file stores the zeros densely and no runtime here skips them (project notes, litert-facts.md), so only the
entropy-coded size falls with it: no cost key field changes, and an allocation under a latency or memory
budget leaves it off."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from search_spaces.graph import LayerSpec, ModelGraph
from search_spaces.grid import Grid
from search_spaces.policy import LayerChoices, LayerPolicy
from search_spaces.techniques.base import CandidateLike, Technique, TrialLike, suggest_on_grid
from search_spaces.techniques.channel_keep import group_masks_of, structural_mask


class Sparsity(Technique):
    """The unstructured sparsity of one layer."""

    name = "sparsity"
    space_keys = ("sparsity",)
    policy_fields = ("sparsity",)
    param_suffix = "sparsity"
    larger_compresses = True
    allocated_by_default = False
    uncompressed: ClassVar[Mapping[str, Any]] = {"sparsity": 0.0}
    export_step = "zeros_written"
    array_keys = ("kernel_mask",)
    uncompressed_fill: ClassVar[Mapping[str, float]] = {"kernel_mask": 1.0}
    build_stage = 1  # after the channel masks it starts from
    figures = frozenset({"compressed_bytes"})

    def parse(self, raw: Mapping[str, Any]) -> dict[str, Any]:
        return {"sparsity": Grid.parse(raw["sparsity"])} if "sparsity" in raw else {}

    def layer_choices(
        self,
        settings: Mapping[str, Any],
        layer: LayerSpec,
        device_precisions: Mapping[str, Any] | None,
        channel_granule: int = 1,
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

    def arrays(
        self,
        graph: ModelGraph,
        params: Mapping[str, Any],
        candidate: CandidateLike,
        built: Mapping[str, Any],
        **options: Any,
    ) -> dict[str, dict[str, np.ndarray]]:
        """The final 0/1 float32 kernel mask of every compressible layer (channel and unstructured pruning)."""
        groups = group_masks_of(graph, built.get("channel_mask", {}))
        masks = {}
        for layer in graph.compressible:
            keep = structural_mask(layer, groups)
            weights = np.asarray(params[layer.name]["kernel"])
            masks[layer.name] = magnitude_mask(weights, keep, candidate.policy(layer.name).sparsity).astype(np.float32)
        return {"kernel_mask": masks}


def magnitude_mask(weights: np.ndarray, keep: np.ndarray, sparsity: float) -> np.ndarray:
    """``keep`` with the ``round(sparsity * keep.sum())`` smallest-magnitude kept weights removed.

    The largest weight of every output channel (last axis) that channel pruning kept is never removed: a
    channel without weights is a pruned channel (that is channel pruning's job), and an all-zero channel has
    no per-channel quantization scale, so its bias cannot be quantized (int32 / int64 overflow in LiteRT).
    Only when a request would empty channels (e.g. 90% of a 3x3 depthwise filter) is the measured sparsity
    lower than requested: at most ``1 - kept channels / kept weights``.
    """
    flat_weights = np.abs(weights).reshape(-1, weights.shape[-1])
    flat_keep = keep.reshape(-1, keep.shape[-1])
    protected = np.zeros_like(flat_keep)
    live = np.flatnonzero(flat_keep.any(axis=0))
    strongest = np.argmax(np.where(flat_keep, flat_weights, -1.0), axis=0)
    protected[strongest[live], live] = True
    candidates = np.flatnonzero((flat_keep & ~protected).reshape(-1))
    count = min(int(sparsity * flat_keep.sum() + 0.5), candidates.size)
    mask = flat_keep.copy().reshape(-1)
    if count:
        order = np.argsort(flat_weights.reshape(-1)[candidates], kind="stable")
        mask[candidates[order[:count]]] = False
    return mask.reshape(keep.shape)
