"""Exact model-size accounting for a candidate: what the exported ``.tflite`` stores, and its entropy bound.

Stored bytes per compressible layer (TFLite conventions):
- weights at their bit width: float32 4 B, float16 2 B, int8 1 B, int4 half a byte (two per byte, rounded
  up per tensor); pruned channels are removed, zeros of unstructured sparsity are still stored densely;
- bias: int32 with int8 activations, int64 with int16 activations, float16 with float16 weights, else float32;
- per-channel quantization parameters of integer tensors: a float32 scale and an int64 zero point per channel,
  for the weights and, with integer activations, for the bias.
Float regions of a user's model store their float32 weights unchanged. Not counted: the graph structure,
tensor names and activation quantization parameters, a fixed overhead that the export measures. Provenance
of every figure here: computed exactly from the candidate ("exact").
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from search_spaces.graph import LayerSpec, ModelGraph
from search_spaces.space import Candidate, LayerPolicy
from search_spaces.spec import FLOAT_OP
from search_spaces.techniques.channel_keep import kept_count

QPARAM_BYTES_PER_CHANNEL = 4 + 8  # float32 scale + int64 zero point


@dataclass(frozen=True, kw_only=True)
class LayerSize:
    """Stored size of one layer's constants."""

    name: str
    weight_count: int
    weight_bytes: int
    bias_bytes: int
    qparam_bytes: int

    @property
    def total_bytes(self) -> int:
        """All constant bytes of the layer."""
        return self.weight_bytes + self.bias_bytes + self.qparam_bytes


def kept_channel_counts(graph: ModelGraph, candidate: Candidate) -> dict[int, int]:
    """Channels each group keeps under ``candidate`` (groups that cannot be pruned keep all)."""
    counts = {}
    for group, size in enumerate(graph.group_sizes):
        leader = graph.leader_of(group)
        counts[group] = size if leader is None else kept_count(size, candidate.policy(leader).channel_keep)
    return counts


def kept_weight_count(layer: LayerSpec, counts: dict[int, int]) -> int:
    """Weights the layer stores after channel pruning."""
    kh, kw = layer.kernel
    out = counts[layer.out_group]
    if layer.op == "dwconv":
        return kh * kw * out
    inputs = counts[layer.in_group] * layer.in_repeat
    return inputs * out if layer.op == "dense" else kh * kw * inputs * out


def weight_bytes(count: int, bits: int) -> int:
    """Bytes of ``count`` weights stored at ``bits`` (int4 packs two per byte)."""
    return math.ceil(count * bits / 8)


def bias_bytes_per_value(policy: LayerPolicy) -> int:
    """Bytes per bias value under ``policy`` (see the module docstring)."""
    if policy.weight_bits == 16:
        return 2
    if policy.weight_bits <= 8 and policy.activation_bits == 16:
        return 8
    return 4


def layer_sizes(graph: ModelGraph, candidate: Candidate) -> tuple[LayerSize, ...]:
    """Stored size of every compressible layer under ``candidate``."""
    counts = kept_channel_counts(graph, candidate)
    sizes = []
    for layer in graph.compressible:
        policy = candidate.policy(layer.name)
        channels = counts[layer.out_group]
        count = kept_weight_count(layer, counts)
        integer_tensors = int(policy.weight_bits <= 8) + int(policy.weight_bits <= 8 and policy.activation_bits <= 16)
        sizes.append(
            LayerSize(
                name=layer.name,
                weight_count=count,
                weight_bytes=weight_bytes(count, policy.weight_bits),
                bias_bytes=channels * bias_bytes_per_value(policy),
                qparam_bytes=integer_tensors * channels * QPARAM_BYTES_PER_CHANNEL,
            )
        )
    return tuple(sizes)


def stored_bytes(graph: ModelGraph, candidate: Candidate) -> int:
    """Bytes of constants the exported file stores for ``candidate`` (exact, known before training)."""
    return sum(size.total_bytes for size in layer_sizes(graph, candidate)) + float_region_bytes(graph)


def float_region_bytes(graph: ModelGraph) -> int:
    """The float32 weights of the graph's float regions (the same for every candidate)."""
    return 4 * sum(node.float_weights for node in graph.spec.nodes if node.op == FLOAT_OP)


def entropy_bits(symbols: np.ndarray) -> float:
    """Empirical (order-0) entropy of ``symbols`` times their count: the ideal coded size in bits."""
    if symbols.size == 0:
        return 0.0
    _, counts = np.unique(symbols, return_counts=True)
    p = counts / symbols.size
    return float(-(counts * np.log2(p)).sum())


def compressed_bytes(graph: ModelGraph, candidate: Candidate, codes: dict[str, np.ndarray]) -> int:
    """Entropy-coded size: weights at the entropy of their stored symbols, other constants as stored.

    ``codes[name]`` holds the stored weight symbols of the layer's kept entries (integer codes for int4/int8,
    raw bit patterns for float16/float32), zeros of unstructured sparsity included: that is where sparsity
    saves download and storage bytes even though the file stores them densely.
    """
    total = float_region_bytes(graph)
    for size in layer_sizes(graph, candidate):
        coded = math.ceil(entropy_bits(codes[size.name]) / 8)
        total += min(coded, size.weight_bytes) + size.bias_bytes + size.qparam_bytes
    return total
