"""Physical channel pruning: a smaller network whose tensors no longer hold the pruned channels.

The search simulates channel pruning with masks on full-size tensors; export needs the real thing. ``shrink``
builds the narrower spec (a conv or dense keeps only its group's kept channels; depthwise convs, adds and pools
follow their inputs), slices every kernel and bias on both axes, and slices the masks and activation ranges to
match, so the small network computes exactly what the masked one did, with or without its compression
arrays (the unstructured zeros are written into the kernels).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from nas.compress.models import Compression
from search_spaces.graph import ModelGraph, analyze


@dataclass(frozen=True, kw_only=True)
class ShrunkModel:
    """A physically pruned network: its graph, folded params and matching compression arrays."""

    graph: ModelGraph
    params: dict[str, Any]
    compression: Compression


def kept_channel_indices(graph: ModelGraph, compression: Compression) -> dict[int, np.ndarray]:
    """Indices of the kept channels of every channel group (all channels for groups that are not pruned)."""
    kept = {group: np.arange(size) for group, size in enumerate(graph.group_sizes)}
    for name, mask in compression["channel_mask"].items():
        kept[graph.layer(name).out_group] = np.flatnonzero(np.asarray(mask) > 0)
    return kept


def shrink(graph: ModelGraph, params: dict[str, Any], compression: Compression) -> ShrunkModel:
    """The physically pruned equivalent of ``(graph, params, compression)``."""
    kept = kept_channel_indices(graph, compression)
    nodes = []
    for node in graph.spec.nodes:
        if node.op in ("conv", "dense") and node.features is not None:
            node = replace(node, features=len(kept[graph.layer(node.name).out_group]))
        nodes.append(node)
    spec = replace(graph.spec, nodes=tuple(nodes))
    small = analyze(spec, graph.input_shape, graph.num_classes)
    new_params, kernel_masks = {}, {}
    for layer in graph.compressible:
        out_index = kept[layer.out_group]
        in_index = _input_index(layer, kept)
        mask = np.asarray(compression["kernel_mask"][layer.name])
        kernel = np.asarray(params[layer.name]["kernel"]) * mask  # unstructured zeros are exported as zeros
        new_params[layer.name] = {
            "kernel": _slice_kernel(kernel, layer.op, in_index, out_index),
            "bias": np.asarray(params[layer.name]["bias"])[out_index],
        }
        kernel_masks[layer.name] = _slice_kernel(mask, layer.op, in_index, out_index)
    small_compression: Compression = {
        **compression,
        "kernel_mask": kernel_masks,
        "channel_mask": {},  # nothing left to mask: the pruned channels are gone
    }
    return ShrunkModel(graph=small, params=new_params, compression=small_compression)


def _input_index(layer, kept: dict[int, np.ndarray]) -> np.ndarray | None:
    if layer.op == "dwconv":
        return None
    channels = kept[layer.in_group]
    if layer.op == "dense" and layer.in_repeat > 1:
        # Flattened (H, W, C) features: position p holds channel p % C.
        channels_per_position = layer.in_channels // layer.in_repeat
        positions = np.arange(layer.in_repeat)[:, None] * channels_per_position + channels[None, :]
        return positions.reshape(-1)
    return channels


def _slice_kernel(kernel: np.ndarray, op: str, in_index: np.ndarray | None, out_index: np.ndarray) -> np.ndarray:
    kernel = kernel[..., out_index]
    if in_index is None:
        return kernel
    return kernel[in_index, :] if op == "dense" else kernel[:, :, in_index, :]
