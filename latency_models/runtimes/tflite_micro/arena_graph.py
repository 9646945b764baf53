"""What TFLite Micro allocates for a candidate's export (``arena.ArenaGraph``), from the candidate alone.

The ops follow the exporter, as ``latency_models.keys`` describes it: each layer's op, preceded by the
QUANTIZE / DEQUANTIZE of every input at other bits (one per source tensor and width, shared by its readers)
and, for a weight-only layer (integer weights, float activations), by the DEQUANTIZE of its weights, which
TFLite Micro runs at every invoke into a float32 tensor of the arena (it has no load-time copy). A convolution
over one input channel is the converter's DEPTHWISE_CONV_2D. Tensors are added to the plan as the file numbers
them: the input, the constants, the layers' outputs, then the conversions' outputs. Constants take no arena:
the export keeps every one inside the flatbuffer (``nas.runtime.export``), where TFLite Micro reads them in
place, in flash on a device.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from latency_models.keys import Boundary, boundaries, elements, layer_keys
from latency_models.memory import activation_bytes
from latency_models.predictor import output_size
from latency_models.runtimes.tflite_micro.arena import ArenaGraph, Buffer, MicroOp, temporary_tensor_bytes
from latency_models.size import layer_sizes
from latency_models.table import LayerKey
from search_spaces.graph import ModelGraph
from search_spaces.space import Candidate

KINDS = {
    "conv": "conv",
    "dwconv": "dwconv",
    "dwconv_multiplier": "dwconv",
    "dense": "dense",
    "add": "add",
    "global_avg_pool": "mean",
    "flatten": "reshape",
    "avg_pool": "pool",
    "max_pool": "pool",
}
CONSTANTS = {"conv": 2, "dwconv": 2, "dense": 2, "mean": 1, "reshape": 1}  # weights and bias; axis; shape


@dataclass
class _Builder:
    """The ops and tensors of the export, as they are added."""

    outputs: list[Buffer] = field(default_factory=list)  # the layers' outputs, in op order
    conversions: list[Buffer] = field(default_factory=list)  # what the quantizer inserted, added after
    scratch: list[Buffer] = field(default_factory=list)
    ops: list[MicroOp] = field(default_factory=list)
    last_read: dict[str, int] = field(default_factory=dict)
    constants: int = 0

    @property
    def scope(self) -> int:
        """The scope of the next op."""
        return len(self.ops) + 1

    def read(self, name: str) -> None:
        self.last_read[name] = self.scope


def candidate_arena_graph(graph: ModelGraph, candidate: Candidate) -> ArenaGraph:
    """The buffers and ops TFLite Micro allocates for ``candidate``'s export."""
    keys = dict((layer.name, key) for layer, key in layer_keys(graph, candidate))
    crossing = {(consumer, b.source): b for b in boundaries(graph, candidate) for consumer in b.consumers}
    first = keys[graph.layers[0].name]
    source = Buffer(name="input", bytes=4 * elements(graph.input_shape, first.in_channels), first=0, last=0)
    built, converted = _Builder(), set()
    for layer in graph.layers:
        key = keys[layer.name]
        readers = []
        for name in dict.fromkeys(layer.inputs):
            boundary = crossing.get((layer.name, name))
            if boundary is not None and boundary.name not in converted:
                _convert(built, name, boundary)
                converted.add(boundary.name)
            readers.append(name if boundary is None else boundary.name)
        if key.op in ("conv", "dwconv", "dense") and key.weight_bits < 32 and key.activation_bits == 32:
            _dequantize_weights(built, layer.name, graph, candidate)
        for name in readers:
            built.read(name)
        _layer_op(built, layer.name, key)
    end = len(built.ops)
    output = graph.layers[-1].name
    tensors = [source, *built.outputs, *built.conversions]
    planned = [
        Buffer(
            name=t.name,
            bytes=t.bytes,
            first=t.first,
            last=end if t.name == output else max(t.last, built.last_read.get(t.name, t.last)),
        )
        for t in tensors
    ]
    return ArenaGraph(
        buffers=(*planned, *built.scratch),
        ops=tuple(built.ops),
        tensors=len(tensors) + built.constants,
        integer_output=keys[output].activation_bits < 32,
    )


def _convert(built: _Builder, source: str, boundary: Boundary) -> None:
    """A QUANTIZE (also int8 <-> int16) or DEQUANTIZE of ``source`` before its first reader."""
    built.read(source)
    size = boundary.elements * activation_bytes(boundary.to_bits)
    built.conversions.append(Buffer(name=boundary.name, bytes=size, first=built.scope, last=built.scope))
    built.ops.append(MicroOp(kind="dequantize" if boundary.to_bits == 32 else "quantize"))


def _dequantize_weights(built: _Builder, name: str, graph: ModelGraph, candidate: Candidate) -> None:
    """A weight-only layer's DEQUANTIZE of its stored weights into float32, read by the layer's op next."""
    size = next(s for s in layer_sizes(graph, candidate) if s.name == name)
    weights = f"{name}:float_weights"
    built.conversions.append(Buffer(name=weights, bytes=4 * size.weight_count, first=built.scope, last=built.scope))
    built.ops.append(MicroOp(kind="dequantize"))
    built.read(weights)


def _layer_op(built: _Builder, name: str, key: LayerKey) -> None:
    kind = "dwconv" if key.op == "conv" and key.in_channels == 1 else KINDS.get(key.op, "dense")
    integer = key.activation_bits < 32
    channels = key.out_channels if kind in ("conv", "dwconv") or (kind == "dense" and integer) else 0
    scratch = _scratch(key, kind)
    built.scratch += [
        Buffer(name=f"{name}:scratch{i}", bytes=b, first=built.scope, last=built.scope) for i, b in enumerate(scratch)
    ]
    built.constants += CONSTANTS.get(kind, 0)
    built.outputs.append(Buffer(name=name, bytes=_output_bytes(key), first=built.scope, last=built.scope))
    built.ops.append(MicroOp(kind=kind, channels=channels, scratch=len(scratch), prepare_bytes=_prepare(key, kind)))


def _prepare(key: LayerKey, kind: str) -> int:
    """The tensors the kernel's Prepare holds: input, weights, bias and output of a conv or dense layer (the
    weights and bias quantized per channel with integer activations), else input and output."""
    per_tensor = 1 if key.activation_bits < 32 else 0
    if kind in ("conv", "dwconv", "dense"):
        per_channel = key.out_channels if key.activation_bits < 32 else 0
        return temporary_tensor_bytes((per_tensor, per_channel, per_channel, per_tensor))
    return temporary_tensor_bytes((per_tensor, per_tensor))


def _scratch(key: LayerKey, kind: str) -> list[int]:
    """The kernel's scratch requests: MEAN's accumulator (integer only) and index buffers; an int4 filter's
    unpacked copy."""
    if kind == "mean":
        accumulator = [4 * key.in_channels] if key.activation_bits < 32 else []
        return [*accumulator, 4 * 4, 4 * 2]
    if kind in ("conv", "dwconv") and key.weight_bits == 4:
        return [key.kernel * key.kernel * key.out_channels * (key.in_channels if kind == "conv" else 1)]
    return []


def _output_bytes(key: LayerKey) -> int:
    pixels = 1 if key.op in ("flatten", "dense", "global_avg_pool") else _pixels(key)
    return pixels * key.out_channels * activation_bytes(key.activation_bits)


def _pixels(key: LayerKey) -> int:
    height, width = output_size(key)
    return height * width
