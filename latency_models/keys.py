"""From a candidate to what its export runs: one ``LayerKey`` per layer, and the precision boundaries between
layers (where the export inserts QUANTIZE, DEQUANTIZE or an int8 <-> int16 requantize).

The rules follow the exporter: a compressible layer runs at its own activation bits; a pool, flatten or add
runs at the bits of the tensor it reads; a float region of a user's model runs in float; the model's input is
float, and its output keeps the last layer's bits (an integer model returns integer logits).

A float region has no op of its own in any table: its key is a *proxy*, a float dense layer with the
region's multiply-accumulates and output size, and its latency is labelled analytic
(``latency_models.layered``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from latency_models.size import kept_channel_counts
from latency_models.table import LayerKey
from search_spaces.graph import LayerSpec, ModelGraph
from search_spaces.space import Candidate
from search_spaces.spec import FLOAT_OP

COMPRESSIBLE = ("conv", "dwconv", "dense")


@dataclass(frozen=True, kw_only=True)
class Boundary:
    """A precision change of one tensor: ``kind`` is ``quantize``, ``dequantize`` or ``requantize``.

    The converter inserts one conversion op per source tensor and target width, shared by every consumer
    that reads the tensor at that width (a residual block's two branches share one DEQUANTIZE).
    """

    source: str
    consumers: tuple[str, ...]
    kind: str
    elements: int
    from_bits: int
    to_bits: int

    @property
    def name(self) -> str:
        """``source->int8``-style label."""
        return f"{self.source}->{'float' if self.to_bits == 32 else f'int{self.to_bits}'}"


def node_bits(graph: ModelGraph, candidate: Candidate) -> dict[str, int]:
    """Activation bits of every node's output (``input``: 32)."""
    bits = {"input": 32}
    for layer in graph.layers:
        if layer.op == FLOAT_OP:
            bits[layer.name] = 32
        elif layer.op in COMPRESSIBLE:
            bits[layer.name] = candidate.policy(layer.name).activation_bits
        else:
            bits[layer.name] = bits[layer.inputs[0]]
    return bits


def layer_keys(graph: ModelGraph, candidate: Candidate) -> list[tuple[LayerSpec, LayerKey]]:
    """The key of every layer's op as the candidate's export runs it (pruned channels removed)."""
    counts = kept_channel_counts(graph, candidate)
    acts = {node.name: node.act or "" for node in graph.spec.nodes}
    bits = node_bits(graph, candidate)
    keys = []
    for layer in graph.layers:
        if layer.op == FLOAT_OP:
            keys.append((layer, float_region_proxy(graph, layer)))
            continue
        in_channels = counts[layer.in_group] * (layer.in_repeat if layer.op == "dense" else 1)
        out_channels = counts[layer.out_group] if layer.op != "flatten" else 0
        h, w = (layer.input_shape[0], layer.input_shape[1]) if len(layer.input_shape) == 3 else (1, 1)
        if layer.op == "flatten":
            out_channels = h * w * in_channels
        weight_bits = candidate.policy(layer.name).weight_bits if layer.op in COMPRESSIBLE else 32
        kernel = layer.kernel[0] if layer.op in ("conv", "dwconv", "avg_pool", "max_pool") else 1
        keys.append(
            (
                layer,
                LayerKey(
                    op=layer.runtime_op,
                    height=h,
                    width=w,
                    in_channels=in_channels,
                    out_channels=out_channels,
                    kernel=kernel,
                    stride=layer.stride[0] if layer.op in ("conv", "dwconv") else 1,
                    act=acts[layer.name] if layer.op != "flatten" else "",
                    weight_bits=weight_bits,
                    activation_bits=bits[layer.name],
                ),
            )
        )
    return keys


def float_region_proxy(graph: ModelGraph, layer: LayerSpec) -> LayerKey:
    """The float dense layer a float region is costed as: the region's MACs, its output size."""
    outputs = math.prod(layer.output_shape)
    macs = next(node.macs for node in graph.spec.nodes if node.name == layer.name)
    return LayerKey(
        op="dense",
        height=1,
        width=1,
        in_channels=max(1, -(-macs // outputs)),
        out_channels=outputs,
        kernel=1,
        stride=1,
        act="",
        weight_bits=32,
        activation_bits=32,
    )


def boundaries(graph: ModelGraph, candidate: Candidate) -> list[Boundary]:
    """Every precision change: into each layer that reads a tensor of other bits (the float model input too)."""
    counts = kept_channel_counts(graph, candidate)
    bits = node_bits(graph, candidate)
    sizes = {"input": elements(graph.input_shape, counts[graph.layers[0].in_group])}
    found: dict[tuple[str, int], Boundary] = {}
    for layer in graph.layers:
        sizes[layer.name] = elements(layer.output_shape, counts[layer.out_group])
        if layer.op == "flatten":
            sizes[layer.name] = sizes[layer.inputs[0]]
        for source in dict.fromkeys(layer.inputs):  # an add of a tensor with itself reads it once
            target = bits[layer.name]
            if bits[source] == target:
                continue
            known = found.get((source, target))
            consumers = (*known.consumers, layer.name) if known else (layer.name,)
            found[(source, target)] = Boundary(
                source=source,
                consumers=consumers,
                kind=_kind(bits[source], target),
                elements=sizes[source],
                from_bits=bits[source],
                to_bits=target,
            )
    return list(found.values())  # an integer model's output stays integer: no DEQUANTIZE at the end


def elements(shape: tuple[int, ...], channels: int) -> int:
    """Values in a tensor of ``shape`` (no batch axis) once its channel axis keeps ``channels``."""
    spatial = 1
    for size in shape[:-1]:
        spatial *= size
    return spatial * channels


def _kind(source_bits: int, target_bits: int) -> str:
    if source_bits == 32:
        return "quantize"
    return "dequantize" if target_bits == 32 else "requantize"
