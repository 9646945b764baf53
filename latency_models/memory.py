"""Memory of a candidate's ``.tflite``: the RAM its tensor arena needs and the flash the file takes.

RAM is computed from the candidate the way LiteRT's memory planner (``ArenaPlanner`` with a
``SimpleMemoryArena``) lays tensors out, so it can be checked against the runtime's own allocation:

- the tensors: the float model input, every QUANTIZE / DEQUANTIZE / requantize output at a precision boundary,
  every op's output at its activation width, and the kernels' temporaries (a CONV_2D that is not 1x1 with
  stride 1 keeps an im2col buffer of ``out_h x out_w x kh x kw x Cin``; MEAN keeps two index buffers and an
  accumulator per channel);
- lifetimes: from the op that writes a tensor to the last op that reads it; model inputs and outputs live for
  the whole invoke (the interpreter preserves them);
- placement: inputs and outputs first, then by size, largest first, each at the lowest 64-byte-aligned offset
  of the smallest gap between tensors alive at the same time (best fit);
- weight-only layers DEQUANTIZE their constant weights into float32 copies once, at load, in a persistent
  allocation outside the arena: counted on top.

The figure is the union of the tensors' byte ranges (alignment padding excluded), the same quantity
``runtime_memory`` measures from the interpreter with builtin kernels. Flash is the stored constants (exact)
plus the flatbuffer's graph overhead, fitted on exported models (``nas/profiling/flash_fit.py``).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

from latency_models.cost import Figure, Provenance
from latency_models.files import fitted_coefficients
from latency_models.keys import boundaries, elements, layer_keys
from latency_models.predictor import output_size
from latency_models.runtimes.litert.memory_plan import union_length
from latency_models.size import kept_channel_counts, kept_weight_count, stored_bytes
from latency_models.table import LayerKey
from search_spaces.graph import ModelGraph
from search_spaces.space import Candidate

ALIGNMENT = 64
WHOLE_RUN = 10**9  # the last op index of tensors that live for the whole invoke


@dataclass(frozen=True, kw_only=True)
class Tensor:
    """A non-constant tensor: its size and the ops (by index) from its write to its last read."""

    name: str
    bytes: int
    first: int
    last: int


def activation_bytes(bits: int) -> int:
    """Bytes per element of an activation tensor at ``bits`` (32: float32)."""
    return 4 if bits == 32 else bits // 8


def planned_tensors(graph: ModelGraph, candidate: Candidate) -> list[Tensor]:
    """The arena tensors of the candidate's export, with lifetimes in op order."""
    keys = dict((layer.name, key) for layer, key in layer_keys(graph, candidate))
    crossing = {(consumer, b.source): b for b in boundaries(graph, candidate) for consumer in b.consumers}
    tensors, converted, last_read, op = [], set(), {}, 0
    input_bytes = 4 * elements(graph.input_shape, keys[graph.layers[0].name].in_channels)
    tensors.append(Tensor(name="input", bytes=input_bytes, first=0, last=WHOLE_RUN))
    for layer in graph.layers:
        key = keys[layer.name]
        readers = []
        for source in dict.fromkeys(layer.inputs):
            boundary = crossing.get((layer.name, source))
            if boundary is None:
                readers.append(source)
                continue
            if boundary.name not in converted:
                # the conversion op runs just before its first consumer and writes a tensor of its own
                last_read[source] = op
                size = boundary.elements * activation_bytes(boundary.to_bits)
                tensors.append(Tensor(name=boundary.name, bytes=size, first=op, last=op))
                converted.add(boundary.name)
                op += 1
            readers.append(boundary.name)
        for reader in readers:
            last_read[reader] = op
        out = _output_bytes(key)
        tensors.append(Tensor(name=layer.name, bytes=out, first=op, last=op))
        tensors.extend(
            Tensor(name=f"{layer.name}:tmp{i}", bytes=b, first=op, last=op) for i, b in enumerate(_temporaries(key))
        )
        op += 1
    output = graph.layers[-1].name
    result = []
    for tensor in tensors:
        last = (
            WHOLE_RUN if tensor.name in ("input", output) else max(last_read.get(tensor.name, tensor.last), tensor.last)
        )
        result.append(Tensor(name=tensor.name, bytes=tensor.bytes, first=tensor.first, last=last))
    return result


def _output_pixels(key: LayerKey) -> int:
    if key.op == "flatten":  # its output is one vector of out_channels values
        return 1
    height, width = output_size(key)
    return height * width


def _output_bytes(key: LayerKey) -> int:
    return _output_pixels(key) * key.out_channels * activation_bytes(key.activation_bits)


def _temporaries(key: LayerKey) -> list[int]:
    """Scratch buffers the builtin kernel allocates for the op (see the module docstring)."""
    width = activation_bytes(key.activation_bits)
    if key.op == "conv" and (key.kernel > 1 or key.stride > 1):
        return [_output_pixels(key) * key.kernel * key.kernel * key.in_channels * width]
    if key.op == "global_avg_pool":
        accumulator = 4  # float32 for float, int32 for integer activations
        return [4 * 4, 2 * 4, key.in_channels * accumulator]
    return []


def place(tensors: list[Tensor]) -> dict[str, int]:
    """Offsets of ``tensors`` in the arena (LiteRT's order and best-fit rule, see the module docstring)."""

    def order(tensor: Tensor) -> tuple[int, int, int]:
        whole_run = tensor.first == 0 and tensor.last == WHOLE_RUN
        return (0 if whole_run else 1, -tensor.bytes if not whole_run else 0, tensor.first)

    placed: list[tuple[int, Tensor]] = []
    offsets = {}
    for tensor in sorted(tensors, key=order):
        offset = _best_fit(tensor, placed)
        placed.append((offset, tensor))
        placed.sort(key=lambda item: item[0])
        offsets[tensor.name] = offset
    return offsets


def _best_fit(tensor: Tensor, placed: list[tuple[int, Tensor]]) -> int:
    best, best_gap, current = None, None, 0
    for offset, other in placed:
        if other.last < tensor.first or other.first > tensor.last:
            continue
        aligned = _align(current)
        gap = offset - current
        if aligned + tensor.bytes <= offset and (best_gap is None or gap < best_gap):
            best, best_gap = aligned, gap
        current = max(current, offset + other.bytes)
    return best if best is not None else _align(current)


def _align(offset: int) -> int:
    return -(-offset // ALIGNMENT) * ALIGNMENT


def dequantized_weight_bytes(graph: ModelGraph, candidate: Candidate) -> int:
    """Float32 copies that weight-only layers (integer or float16 weights, float activations) make at load."""
    counts = kept_channel_counts(graph, candidate)
    total = 0
    for layer in graph.compressible:
        policy = candidate.policy(layer.name)
        if policy.activation_bits == 32 and policy.weight_bits < 32:
            total += 4 * kept_weight_count(layer, counts)
    return total


def ram_bytes(graph: ModelGraph, candidate: Candidate) -> int:
    """RAM of the candidate's tensors in LiteRT (builtin kernels): the planned arena plus load-time copies."""
    tensors = planned_tensors(graph, candidate)
    offsets = place(tensors)
    spans = [(offsets[t.name], offsets[t.name] + t.bytes) for t in tensors if t.bytes]
    return union_length(spans) + dequantized_weight_bytes(graph, candidate)


def ram_figure(graph: ModelGraph, candidate: Candidate) -> Figure:
    """``ram_bytes`` as a cost figure: exact (the runtime's own layout rules), except that a float region's
    inner tensors are not known, only its output, which makes the figure analytic."""
    provenance: Provenance = "analytic" if graph.float_regions else "exact"
    return Figure(value=float(ram_bytes(graph, candidate)), provenance=provenance)


OVERHEAD_PATH = Path(__file__).resolve().parent / "flatbuffer_overhead.json"
OVERHEAD_FEATURES = ("constant", "layers", "boundaries", "integer_layers", "weight_only_layers", "name_characters")


def overhead_features(graph: ModelGraph, candidate: Candidate) -> list[float]:
    """The features of the flatbuffer's graph overhead (order: ``OVERHEAD_FEATURES``)."""
    keys = [key for _, key in layer_keys(graph, candidate)]
    compressible = [key for key in keys if key.op in ("conv", "dwconv", "dense", "dwconv_multiplier")]
    return [
        1.0,
        float(len(keys)),
        float(len(boundaries(graph, candidate))),
        float(sum(key.activation_bits < 32 for key in keys)),
        float(sum(key.activation_bits == 32 and key.weight_bits < 32 for key in compressible)),
        float(sum(len(layer.name) for layer in graph.layers)),
    ]


@functools.cache
def _overhead_coefficients() -> tuple[float, ...]:
    return fitted_coefficients(OVERHEAD_PATH, OVERHEAD_FEATURES, "python -m nas.profiling.flash_fit")


def flash_figure(graph: ModelGraph, candidate: Candidate) -> Figure:
    """Bytes of the ``.tflite`` file: exact constants plus the fitted graph overhead (analytic with a float
    region: the fit counts it as one op, and the file holds each of its operations)."""
    overhead = sum(c * f for c, f in zip(_overhead_coefficients(), overhead_features(graph, candidate), strict=True))
    provenance: Provenance = "analytic" if graph.float_regions else "fitted"
    return Figure(value=float(stored_bytes(graph, candidate)) + max(overhead, 0.0), provenance=provenance)
