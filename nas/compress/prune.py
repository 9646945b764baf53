"""Pruning masks computed once per candidate from the (folded) baseline weights, in numpy.

- Structured: each prunable channel group keeps its highest-ranked channels, ranked by the L1 or L2 norm of
  every filter that writes the group (all producers of a residual group together, so adds stay consistent).
- Unstructured: within the weights that survive channel pruning, the ``round(sparsity * n)`` smallest
  magnitudes are zeroed, so the measured sparsity of the stored tensor equals the request up to one weight
  (each kept channel keeps at least its largest weight; see ``magnitude_mask``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from search_spaces.errors import SpecError
from search_spaces.graph import LayerSpec, ModelGraph
from search_spaces.space import Candidate, kept_count

CHANNEL_NORMS = ("l1", "l2")


def channel_masks(
    graph: ModelGraph, params: dict[str, Any], candidate: Candidate, *, norm: str = "l2"
) -> dict[int, np.ndarray]:
    """Boolean keep-mask per prunable channel group."""
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


def structural_mask(layer: LayerSpec, group_masks: dict[int, np.ndarray]) -> np.ndarray:
    """Which kernel entries survive channel pruning (output channels, and input channels of its producer)."""
    mask = np.ones(layer.kernel_shape, bool)
    if layer.out_group in group_masks:
        mask &= group_masks[layer.out_group]
    if layer.op != "dwconv" and layer.in_group in group_masks:
        in_mask = np.tile(group_masks[layer.in_group], layer.in_repeat)
        mask &= in_mask[:, None] if layer.op == "dense" else in_mask[None, None, :, None]
    return mask


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


def kernel_masks(
    graph: ModelGraph, params: dict[str, Any], candidate: Candidate, group_masks: dict[int, np.ndarray]
) -> dict[str, np.ndarray]:
    """Final 0/1 float32 kernel mask per compressible layer (structured and unstructured combined)."""
    masks = {}
    for layer in graph.compressible:
        keep = structural_mask(layer, group_masks)
        weights = np.asarray(params[layer.name]["kernel"])
        masks[layer.name] = magnitude_mask(weights, keep, candidate.policy(layer.name).sparsity).astype(np.float32)
    return masks
