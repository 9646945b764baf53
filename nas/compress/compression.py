"""Turns a ``Candidate`` into the arrays the compiled functions take, and fine-tuned weights into stored codes."""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp
import numpy as np

from nas.compress.models import Compression, quant_points
from nas.compress.prune import channel_masks, kernel_masks, structural_mask
from nas.compress.quantize import integer_weights
from search_spaces.graph import ModelGraph
from search_spaces.space import Candidate


def build_compression(
    graph: ModelGraph,
    params: dict[str, Any],
    candidate: Candidate,
    *,
    channel_norm: str = "l2",
    ranges: dict[str, Any] | None = None,
) -> Compression:
    """Masks from ``params`` (folded baseline weights), bit widths from ``candidate``, and activation ranges.

    ``ranges`` defaults to [0, 0] everywhere; calibrate before fake-quantizing activations.
    """
    groups = channel_masks(graph, params, candidate, norm=channel_norm)
    kernels = kernel_masks(graph, params, candidate, groups)
    channel = {
        layer.name: jnp.asarray(groups[layer.out_group], jnp.float32)
        for layer in graph.compressible
        if layer.out_group in groups
    }
    policies = {layer.name: candidate.policy(layer.name) for layer in graph.compressible}
    return {
        "kernel_mask": {name: jnp.asarray(mask) for name, mask in kernels.items()},
        "channel_mask": channel,
        "weight_bits": {name: jnp.asarray(p.weight_bits, jnp.int32) for name, p in policies.items()},
        "activation_bits": {name: jnp.asarray(p.activation_bits, jnp.int32) for name, p in policies.items()},
        "ranges": ranges if ranges is not None else {k: jnp.zeros((2,), jnp.float32) for k in quant_points(graph)},
    }


def with_ranges(compression: Compression, ranges: dict[str, Any]) -> Compression:
    """A copy of ``compression`` with new activation ranges."""
    return {**compression, "ranges": ranges}


def uncompressed_like(compression: Compression) -> Compression:
    """``compression`` with nothing pruned and float32 everywhere: the uncompressed model in the same arrays."""
    return {
        **compression,
        "kernel_mask": {name: jnp.ones_like(mask) for name, mask in compression["kernel_mask"].items()},
        "channel_mask": {name: jnp.ones_like(mask) for name, mask in compression["channel_mask"].items()},
        "weight_bits": {name: jnp.full_like(bits, 32) for name, bits in compression["weight_bits"].items()},
        "activation_bits": {name: jnp.full_like(bits, 32) for name, bits in compression["activation_bits"].items()},
    }


def apply_masks(params: dict[str, Any], compression: Compression) -> dict[str, Any]:
    """Params with pruned kernel entries and pruned-channel biases set to exactly zero."""
    masked = {}
    for name, layer_params in params.items():
        masked[name] = {**layer_params, "kernel": layer_params["kernel"] * compression["kernel_mask"][name]}
        if "bias" in layer_params and name in compression["channel_mask"]:
            masked[name]["bias"] = layer_params["bias"] * compression["channel_mask"][name]
    return masked


def stored_codes(
    graph: ModelGraph, params: dict[str, Any], candidate: Candidate, compression: Compression
) -> dict[str, np.ndarray]:
    """The weight symbols the file stores per layer (kept entries only), for the entropy size figure."""
    group_masks = {
        graph.layer(name).out_group: np.asarray(mask, bool) for name, mask in compression["channel_mask"].items()
    }
    codes = {}
    for layer in graph.compressible:
        bits = candidate.policy(layer.name).weight_bits
        kernel = np.asarray(params[layer.name]["kernel"], np.float32) * np.asarray(
            compression["kernel_mask"][layer.name]
        )
        kept = structural_mask(layer, group_masks)
        if bits <= 8:
            symbols = integer_weights(kernel, bits)
        elif bits == 16:
            symbols = kernel.astype(np.float16).view(np.uint16)
        else:
            symbols = kernel.view(np.uint32)
        codes[layer.name] = symbols[kept]
    return codes
