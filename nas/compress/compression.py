"""Turns a ``Candidate`` into the arrays the compiled functions take, and fine-tuned weights into stored codes."""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp
import numpy as np

from nas.compress.models import Compression, quant_points
from nas.compress.quantize import integer_weights
from search_spaces.graph import ModelGraph
from search_spaces.space import Candidate
from search_spaces.techniques import TECHNIQUES
from search_spaces.techniques.channel_keep import group_masks_of, structural_mask


def build_compression(
    graph: ModelGraph,
    params: dict[str, Any],
    candidate: Candidate,
    *,
    channel_norm: str = "l2",
    ranges: dict[str, Any] | None = None,
) -> Compression:
    """Every technique's arrays for ``candidate`` (``Technique.arrays``, from the folded baseline weights
    ``params``), and activation ranges.

    ``ranges`` defaults to [0, 0] everywhere; calibrate before fake-quantizing activations.
    """
    built: dict[str, Any] = {}
    for technique in sorted(TECHNIQUES, key=lambda technique: technique.build_stage):
        built |= technique.arrays(graph, params, candidate, built, channel_norm=channel_norm)
    compression = {key: {name: jnp.asarray(array) for name, array in arrays.items()} for key, arrays in built.items()}
    compression["ranges"] = (
        ranges if ranges is not None else {k: jnp.zeros((2,), jnp.float32) for k in quant_points(graph)}
    )
    return compression


def with_ranges(compression: Compression, ranges: dict[str, Any]) -> Compression:
    """A copy of ``compression`` with new activation ranges."""
    return {**compression, "ranges": ranges}


def uncompressed_like(compression: Compression) -> Compression:
    """``compression`` with nothing pruned and float32 everywhere: the uncompressed model in the same arrays
    (each technique's ``uncompressed_fill``)."""
    reset = {
        key: {name: jnp.full_like(array, fill) for name, array in compression[key].items()}
        for technique in TECHNIQUES
        for key, fill in technique.uncompressed_fill.items()
    }
    return {**compression, **reset}


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
    group_masks = group_masks_of(graph, compression["channel_mask"])
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
