"""The weights an export converts: each compression technique's export step on the JAX side, in turn.

The search simulates pruning with masks on full-size tensors; export needs the real thing. A technique names
its step (``Technique.export_step``); the steps done on the weights before conversion are here
(``WEIGHT_STEPS``), the ones done on the converted file belong to the runtime (``nas.runtime.export``):
- ``channels_removed`` (channel pruning): the narrower spec (a conv or dense keeps only its group's kept
  channels; depthwise convs, adds and pools follow their inputs), every kernel and bias sliced on both axes,
  the masks sliced to match;
- ``zeros_written`` (unstructured sparsity): the kernel mask multiplied into the kernels.
``shrink`` runs them all, so the small network computes exactly what the masked one did, with or without its
compression arrays.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from nas.compress.models import Compression
from search_spaces.graph import ModelGraph, analyze
from search_spaces.techniques import TECHNIQUES


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
    """The physically pruned equivalent of ``(graph, params, compression)``: every technique's weight step."""
    model = ShrunkModel(graph=graph, params=params, compression=compression)
    for technique in sorted(TECHNIQUES, key=lambda technique: technique.build_stage):
        step = WEIGHT_STEPS.get(technique.export_step)
        if step is not None:
            model = step(model)
    return model


def remove_pruned_channels(model: ShrunkModel) -> ShrunkModel:
    """Channel pruning's step: the narrower network without the pruned channels."""
    graph, params, compression = model.graph, model.params, model.compression
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
        new_params[layer.name] = {
            "kernel": _slice_kernel(np.asarray(params[layer.name]["kernel"]), layer.op, in_index, out_index),
            "bias": np.asarray(params[layer.name]["bias"])[out_index],
        }
        mask = np.asarray(compression["kernel_mask"][layer.name])
        kernel_masks[layer.name] = _slice_kernel(mask, layer.op, in_index, out_index)
    small_compression: Compression = {
        **compression,
        "kernel_mask": kernel_masks,
        "channel_mask": {},  # nothing left to mask: the pruned channels are gone
    }
    return ShrunkModel(graph=small, params=new_params, compression=small_compression)


def write_zeros(model: ShrunkModel) -> ShrunkModel:
    """Unstructured sparsity's step: the pruned weights exported as zeros (the kernel mask multiplied in)."""
    masks = model.compression["kernel_mask"]
    written = {
        name: {**model.params[name], "kernel": np.asarray(model.params[name]["kernel"]) * np.asarray(mask)}
        for name, mask in masks.items()
    }
    return replace(model, params={**model.params, **written})


WEIGHT_STEPS: dict[str, Callable[[ShrunkModel], ShrunkModel]] = {
    "channels_removed": remove_pruned_channels,
    "zeros_written": write_zeros,
}


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
