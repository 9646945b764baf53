"""The cost keys of an existing ``.tflite`` file, read from its flatbuffer (``nas estimate FILE.tflite``).

Each operator becomes the ``LayerKey`` the tables are keyed by (op kind, input shape, channels, window, stride,
fused activation, weight and activation bits), and each QUANTIZE / DEQUANTIZE between activations becomes a
precision ``Boundary``. Weight bits are those of the stored filter: a filter a DEQUANTIZE turns into float at
load (weight-only quantization) counts at its stored width, and that DEQUANTIZE runs once at load, not per
invoke, so it is no boundary. The flatbuffer schema is the one the LiteRT runtime ships.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from ai_edge_litert import schema_py_generated as schema

from latency_models.errors import CostModelError
from latency_models.keys import Boundary
from latency_models.table import LayerKey

OPS = schema.BuiltinOperator
BITS = {
    schema.TensorType.FLOAT32: 32,
    schema.TensorType.FLOAT16: 16,
    schema.TensorType.INT16: 16,
    schema.TensorType.INT8: 8,
    schema.TensorType.INT4: 4,
}
ACTIVATIONS = {
    schema.ActivationFunctionType.NONE: "",
    schema.ActivationFunctionType.RELU: "relu",
    schema.ActivationFunctionType.RELU6: "relu6",
}
LAYER_OPS = {
    OPS.CONV_2D: "conv",
    OPS.DEPTHWISE_CONV_2D: "dwconv",
    OPS.FULLY_CONNECTED: "dense",
    OPS.AVERAGE_POOL_2D: "avg_pool",
    OPS.MAX_POOL_2D: "max_pool",
    OPS.MEAN: "global_avg_pool",
    OPS.SUM: "global_avg_pool",  # the converter's form of a mean over a 1x1 map
    OPS.ADD: "add",
    OPS.RESHAPE: "flatten",
}
OPTIONS = {
    OPS.CONV_2D: schema.Conv2DOptions,
    OPS.DEPTHWISE_CONV_2D: schema.DepthwiseConv2DOptions,
    OPS.FULLY_CONNECTED: schema.FullyConnectedOptions,
    OPS.AVERAGE_POOL_2D: schema.Pool2DOptions,
    OPS.MAX_POOL_2D: schema.Pool2DOptions,
    OPS.ADD: schema.AddOptions,
}


@dataclass(frozen=True, kw_only=True)
class FileKeys:
    """What a ``.tflite`` runs per invoke: named layer keys in execution order, and the precision boundaries."""

    layers: tuple[tuple[str, LayerKey], ...]
    boundaries: tuple[Boundary, ...]


class _Graph:
    """The first subgraph of a model, with the facts the key rules need."""

    def __init__(self, content: bytes) -> None:
        try:
            self.model = schema.Model.GetRootAs(bytearray(content), 0)
            self.subgraph = self.model.Subgraphs(0)
        except Exception as err:  # the flatbuffer library raises bare struct/index errors on garbage
            raise CostModelError(f"not a .tflite flatbuffer ({type(err).__name__}); pass an exported model") from None
        if self.subgraph is None:
            raise CostModelError("the .tflite file has no subgraph; pass an exported model")
        self.producers = {int(self.subgraph.Operators(i).Outputs(0)): i for i in range(self.subgraph.OperatorsLength())}

    def opcode(self, index: int) -> int:
        code = self.model.OperatorCodes(self.subgraph.Operators(index).OpcodeIndex())
        return max(code.BuiltinCode(), code.DeprecatedBuiltinCode())

    def shape(self, tensor: int) -> tuple[int, ...]:
        return tuple(int(v) for v in self.subgraph.Tensors(tensor).ShapeAsNumpy())

    def bits(self, tensor: int) -> int:
        kind = self.subgraph.Tensors(tensor).Type()
        if kind not in BITS:
            raise CostModelError(f"tensor {self.name(tensor)!r} has a type ({kind}) no cost table covers")
        return BITS[kind]

    def name(self, tensor: int) -> str:
        return self.subgraph.Tensors(tensor).Name().decode()

    def constant(self, tensor: int) -> bool:
        buffer = self.model.Buffers(self.subgraph.Tensors(tensor).Buffer())
        return buffer is not None and (buffer.DataLength() > 0 or buffer.Offset() > 0)

    def stored_bits(self, tensor: int) -> int:
        """Bits of a weight as stored: through a load-time DEQUANTIZE to the constant it reads."""
        producer = self.producers.get(tensor)
        if producer is not None and self.opcode(producer) == OPS.DEQUANTIZE:
            return self.bits(int(self.subgraph.Operators(producer).Inputs(0)))
        return self.bits(tensor)

    def options(self, index: int, code: int) -> Any:  # an options class of the generated schema
        table = self.subgraph.Operators(index).BuiltinOptions()
        if code not in OPTIONS or table is None:
            return None
        options = OPTIONS[code]()
        options.Init(table.Bytes, table.Pos)
        return options


def file_keys(content: bytes) -> FileKeys:
    """The layer keys and precision boundaries of a ``.tflite`` model."""
    graph = _Graph(content)
    layers: list[tuple[str, LayerKey]] = []
    boundaries: list[Boundary] = []
    for index in range(graph.subgraph.OperatorsLength()):
        op = graph.subgraph.Operators(index)
        code = graph.opcode(index)
        source, output = int(op.Inputs(0)), int(op.Outputs(0))
        if code in (OPS.QUANTIZE, OPS.DEQUANTIZE):
            if not graph.constant(source):  # a DEQUANTIZE of a stored weight runs once, at load
                boundaries.append(_boundary(graph, source, output))
            continue
        if code not in LAYER_OPS:
            raise CostModelError(
                f"operator {index} ({_op_name(code)}) has no cost table; the tables cover "
                f"{', '.join(sorted(set(LAYER_OPS.values())))}"
            )
        key = _layer_key(graph, index, code)
        weights = [int(t) for t in op.InputsAsNumpy()[1:] if t >= 0 and _stored(graph, int(t))]
        names = [graph.name(output)] + [graph.name(t) for t in weights]
        layers.append((layer_name(names, f"{key.op}{len(layers)}"), key))
    return FileKeys(layers=tuple(layers), boundaries=tuple(boundaries))


LAYER_PATTERNS = (re.compile(r"_compressible/([^/;]+)/"), re.compile(r"_forward/([^/;]+)/\w+\._shape_op"))


def layer_name(tensor_names: list[str], fallback: str) -> str:
    """The model layer an op belongs to, from the module path the exporter leaves in its tensors' names (its
    output's first, then its weights')."""
    for name in tensor_names:
        for pattern in LAYER_PATTERNS:
            match = pattern.search(name)
            if match:
                return match.group(1)
    return fallback


def _stored(graph: _Graph, tensor: int) -> bool:
    """A weight: a constant, or the load-time DEQUANTIZE of one."""
    producer = graph.producers.get(tensor)
    if producer is not None and graph.opcode(producer) == OPS.DEQUANTIZE:
        return graph.constant(int(graph.subgraph.Operators(producer).Inputs(0)))
    return graph.constant(tensor)


def _layer_key(graph: _Graph, index: int, code: int) -> LayerKey:
    op = graph.subgraph.Operators(index)
    source, output = int(op.Inputs(0)), int(op.Outputs(0))
    in_shape = graph.shape(source)
    options = graph.options(index, code)
    act = ACTIVATIONS.get(options.FusedActivationFunction(), "?") if options is not None else ""
    if code == OPS.FULLY_CONNECTED:
        weights = int(op.Inputs(1))
        return LayerKey(
            op="dense",
            in_channels=int(np.prod(in_shape[1:])),
            out_channels=graph.shape(weights)[0],
            act=act,
            weight_bits=graph.stored_bits(weights),
            activation_bits=graph.bits(source),
        )
    height, width, channels = (in_shape[1], in_shape[2], in_shape[3]) if len(in_shape) == 4 else (1, 1, in_shape[-1])
    key = LayerKey(
        op=LAYER_OPS[code],
        height=height,
        width=width,
        in_channels=channels,
        out_channels=channels,
        act=act,
        activation_bits=graph.bits(source),
    )
    if code in (OPS.CONV_2D, OPS.DEPTHWISE_CONV_2D):
        weights = int(op.Inputs(1))
        return replace(
            key,
            op="conv" if code == OPS.CONV_2D else ("dwconv_multiplier" if channels == 1 else "dwconv"),
            out_channels=graph.shape(output)[-1],
            kernel=graph.shape(weights)[1],
            stride=options.StrideH(),
            weight_bits=graph.stored_bits(weights),
        )
    if code in (OPS.AVERAGE_POOL_2D, OPS.MAX_POOL_2D):
        return replace(key, kernel=options.FilterHeight())
    if code == OPS.RESHAPE:
        return replace(key, out_channels=height * width * channels)
    return key


def _boundary(graph: _Graph, source: int, output: int) -> Boundary:
    from_bits, to_bits = graph.bits(source), graph.bits(output)
    kind = "quantize" if from_bits == 32 else ("dequantize" if to_bits == 32 else "requantize")
    producer = graph.producers.get(source)
    return Boundary(
        source="input" if producer is None else layer_name([graph.name(source)], f"op{producer}"),
        consumers=(graph.name(output),),
        kind=kind,
        elements=int(np.prod(graph.shape(source))),
        from_bits=from_bits,
        to_bits=to_bits,
    )


def tensor_layers(content: bytes) -> dict[str, str]:
    """The model layer of each operator, by the name of its output tensor (how a compiler's report names
    operators); an operator no layer name is found for keeps its tensor's name."""
    graph = _Graph(content)
    layers = {}
    for index in range(graph.subgraph.OperatorsLength()):
        op = graph.subgraph.Operators(index)
        output = graph.name(int(op.Outputs(0)))
        weights = [graph.name(int(t)) for t in op.InputsAsNumpy()[1:] if t >= 0 and _stored(graph, int(t))]
        layers[output] = layer_name([output, *weights], output)
    return layers


def operator_names(content: bytes) -> set[str]:
    """The builtin operator names a model uses (``CONV_2D``, ``QUANTIZE``, ...): what a TFLite Micro op resolver
    must register to run it."""
    graph = _Graph(content)
    return {_op_name(graph.opcode(index)) for index in range(graph.subgraph.OperatorsLength())}


def _op_name(code: int) -> str:
    names = {value: name for name, value in vars(OPS).items() if isinstance(value, int)}
    return names.get(code, str(code))
