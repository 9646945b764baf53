"""Micro-models: one op (or a two-op chain) at one shape and precision, exported through the project's own
exporter, so a latency table times exactly the kernels that a search's exports contain.

Three shapes of micro-model serve the table:

- ``single``: the op alone (conv, depthwise conv, dense), float input and output, so an op with integer
  activations is wrapped in a QUANTIZE before it and a DEQUANTIZE after it;
- ``with_pre`` / ``pre``: an op that cannot start a model (pools, residual add) after a 1x1 depthwise conv at
  the same precision, and that depthwise conv alone; their difference isolates the op;
- ``chain``: two 1x1 depthwise convs, whose difference from one isolates a depthwise conv and, from there, the
  QUANTIZE + DEQUANTIZE pair at the model's boundary (the whole-model terms).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from latency_models.table import LayerKey
from nas.compress.compression import build_compression
from nas.compress.models import quant_points
from nas.runtime.export import export_candidate
from search_spaces.graph import ModelGraph, analyze
from search_spaces.space import Candidate, LayerPolicy
from search_spaces.spec import spec_from_dict

COMPRESSIBLE = ("conv", "dwconv", "dense")
NEEDS_PRE = ("avg_pool", "max_pool", "global_avg_pool", "add")
CALIBRATION_EXAMPLES = 4


@dataclass(frozen=True, kw_only=True)
class MicroModel:
    """A graph to export and time, with the precision of each of its layers."""

    label: str
    graph: ModelGraph
    precisions: tuple[tuple[int, int], ...]  # (weight bits, activation bits) per compressible layer

    @property
    def candidate(self) -> Candidate:
        """The uncompressed candidate at this micro-model's precisions."""
        policies = tuple(
            (layer.name, LayerPolicy(sparsity=0.0, channel_keep=1.0, weight_bits=w, activation_bits=a))
            for layer, (w, a) in zip(self.graph.compressible, self.precisions, strict=True)
        )
        return Candidate(policies=policies)


def input_shape(key: LayerKey) -> tuple[int, ...]:
    """The input a key's op reads (no batch axis)."""
    return (key.in_channels,) if key.op == "dense" else (key.height, key.width, key.in_channels)


def pre_precision(activation_bits: int) -> tuple[int, int]:
    """The precision of the 1x1 depthwise conv in front of an op at ``activation_bits``."""
    return (32, 32) if activation_bits == 32 else (8, activation_bits)


def _node(key: LayerKey, name: str, inputs: list[str] | None = None) -> dict[str, Any]:
    node: dict[str, Any] = {"name": name, "op": key.op}
    if inputs is not None:
        node["inputs"] = inputs
    if key.op in ("conv", "dense"):
        node["features"] = key.out_channels
    if key.op in ("conv", "dwconv"):
        node.update(kernel=key.kernel, stride=key.stride)
    if key.op in ("avg_pool", "max_pool"):
        node["window"] = key.kernel
    if key.act and key.op in (*COMPRESSIBLE, "add", "avg_pool", "global_avg_pool"):
        node["act"] = key.act
    return node


def _graph(label: str, nodes: list[dict[str, Any]], shape: tuple[int, ...]) -> ModelGraph:
    spec = spec_from_dict({"name": label, "nodes": nodes, "classifier": False})
    return analyze(spec, shape, num_classes=2)


def single(key: LayerKey) -> MicroModel:
    """The op of ``key`` alone (a conv, depthwise conv or dense layer)."""
    graph = _graph("single", [_node(key, "op")], input_shape(key))
    return MicroModel(label="single", graph=graph, precisions=((key.weight_bits, key.activation_bits),))


def small_layer(op: str, weight_bits: int, activation_bits: int) -> MicroModel:
    """A one-layer model of ``op`` at a precision (8x8x8 in, 8 out, 3x3 unless dense): the smallest probe of
    whether a runtime runs that layer at that precision."""
    key = LayerKey(
        op=op,
        height=8,
        width=8,
        in_channels=8,
        out_channels=8,
        kernel=1 if op == "dense" else 3,
        stride=1,
        act="relu",
        weight_bits=weight_bits,
        activation_bits=activation_bits,
    )
    return single(key)


def pre_depthwise(key: LayerKey) -> LayerKey:
    """The 1x1 depthwise conv that feeds an op which cannot start a model."""
    w, a = pre_precision(key.activation_bits)
    return LayerKey(
        op="dwconv",
        height=key.height,
        width=key.width,
        in_channels=key.in_channels,
        out_channels=key.in_channels,
        weight_bits=w,
        activation_bits=a,
    )


def with_pre(key: LayerKey) -> tuple[MicroModel, MicroModel]:
    """(1x1 depthwise conv then the op, the 1x1 depthwise conv alone)."""
    pre = pre_depthwise(key)
    inputs = ["pre", "pre"] if key.op == "add" else ["pre"]
    shape = input_shape(key)
    both = _graph("with_pre", [_node(pre, "pre"), _node(key, "op", inputs)], shape)
    alone = _graph("pre", [_node(pre, "pre")], shape)
    precision = (pre.weight_bits, pre.activation_bits)
    return (
        MicroModel(label="with_pre", graph=both, precisions=(precision,)),
        MicroModel(label="pre", graph=alone, precisions=(precision,)),
    )


def chain(first: LayerKey, second: LayerKey) -> MicroModel:
    """Two depthwise convs of the same shape, each at its own precision."""
    graph = _graph("chain", [_node(first, "a"), _node(second, "b")], input_shape(first))
    return MicroModel(
        label="chain",
        graph=graph,
        precisions=((first.weight_bits, first.activation_bits), (second.weight_bits, second.activation_bits)),
    )


def random_params(graph: ModelGraph, seed: int = 0) -> dict[str, Any]:
    """Folded float parameters with a fan-in scale (latency does not depend on their values)."""
    rng = np.random.default_rng(seed)
    params = {}
    for layer in graph.compressible:
        fan_in = int(np.prod(layer.kernel_shape[:-1]))
        kernel = rng.normal(0.0, 1.0 / np.sqrt(fan_in), layer.kernel_shape).astype(np.float32)
        params[layer.name] = {"kernel": kernel, "bias": rng.normal(0.0, 0.1, layer.out_channels).astype(np.float32)}
    return params


def export_micro(micro: MicroModel, seed: int = 0) -> bytes:
    """The ``.tflite`` of ``micro``, through ``export_candidate`` with fixed activation ranges.

    Ranges only set quantization scales, which do not change latency; the input is in [0, 1], every other
    tensor is given [-4, 4].
    """
    graph = micro.graph
    params = random_params(graph, seed)
    ranges = {point: np.array([-4.0, 4.0], np.float32) for point in quant_points(graph)}
    ranges[f"{graph.compressible[0].name}/in"] = np.array([0.0, 1.0], np.float32)
    compression = build_compression(graph, params, micro.candidate, ranges=ranges)
    calibration = np.random.default_rng(seed).random((CALIBRATION_EXAMPLES, *graph.input_shape), np.float32)
    return export_candidate(graph, params, compression, micro.candidate, calibration).content
