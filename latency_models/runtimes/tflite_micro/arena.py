"""The tensor arena TFLite Micro needs for a model, predicted the way its allocator fills it.

TFLite Micro allocates everything in one arena: the *head* (non-persistent: every activation tensor and kernel
scratch buffer, laid out by its greedy memory planner) grows from the start, the *tail* (persistent: the
interpreter's structs and each kernel's op data) from the end. Its rules, from its source
(``micro_allocator.cc``, ``micro_allocation_info.cc``, ``greedy_memory_planner.cc``, the kernels' Prepare):

- head: every tensor without data in the flatbuffer gets a buffer (size aligned up to 16 bytes) alive from
  the op that writes it to the last op that reads it, in scopes: the model's inputs at 0, op ``i`` at
  ``i + 1``, the outputs to the last op. Each kernel's scratch requests live during their op. Buffers are
  placed largest first (equal sizes: the last added first), each at the first gap between buffers alive at the
  same time that is large enough, else after them; the head is the highest end;
- tail: a ``TfLiteEvalTensor`` per tensor, a ``NodeAndRegistration`` per op, a scratch buffer handle per
  request, the model's input and output as full tensors, and per op its kernel's op data, its parsed options
  and, for per-channel quantized convolutions and dense layers, an output multiplier and a shift per
  channel; plus the allocator's own structs;
- the arena must also hold the planner at work: before the head is known, the tail, the scratch requests, one
  ``AllocationInfo`` per tensor and request, and the planner's arrays for every buffer sit in it at once, which
  is what a small model needs beyond head and tail.

Head and everything per tensor, op and channel are computed; what each kind of op keeps besides its
per-channel arrays (its op data and options structs) and the fixed structs are fitted on recorded tails of
exported models (``nas/profiling/arena_fit.py``, ``latency_models/tflite_micro_arena.json``). Sizes are those
of the 64-bit build run here (pointers of 8 bytes): a 32-bit microcontroller's structs are smaller, so the
figure is an upper bound of its arena, never short of it.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

from latency_models.files import fitted_coefficients

ALIGNMENT = 16  # MicroArenaBufferAlignment()
EVAL_TENSOR_BYTES = 24  # TfLiteEvalTensor
NODE_BYTES = 64  # NodeAndRegistration
SCRATCH_HANDLE_BYTES = 8  # ScratchBufferHandle
SCRATCH_REQUEST_BYTES = 16  # ScratchBufferRequest
MAX_SCRATCH_PER_OP = 12  # kMaxScratchBuffersPerOp: the request list always has room for one more op's
ALLOCATION_INFO_BYTES = 32  # AllocationInfo
PLANNER_BYTES_PER_BUFFER = 40  # GreedyMemoryPlanner::per_buffer_size()
IO_TENSOR_BYTES = 64  # a persistent TfLiteTensor, made for the model's input and output after planning
TEMP_TENSOR_BYTES = 64  # a TfLiteTensor a kernel's Prepare reads
IO_QUANTIZATION_BYTES = 32  # TfLiteAffineQuantization and a one-value zero point, for an integer input or output
CONSTANTS_PATH = Path(__file__).resolve().parents[2] / "tflite_micro_arena.json"
OP_KINDS = ("conv", "dwconv", "dense", "quantize", "dequantize", "add", "mean", "reshape", "pool")
FEATURES = ("constant", *OP_KINDS)


@dataclass(frozen=True, kw_only=True)
class Buffer:
    """A buffer the memory planner places: ``bytes`` before alignment, alive from scope ``first`` to ``last``."""

    name: str
    bytes: int
    first: int
    last: int


@dataclass(frozen=True, kw_only=True)
class MicroOp:
    """What an op keeps in the tail: its kind, the channels of its per-channel arrays (0: none), and how many
    scratch buffers it requests."""

    kind: str
    channels: int = 0
    scratch: int = 0
    prepare_bytes: int = 0  # the temporary tensors its Prepare holds (``temporary_tensor_bytes``)


@dataclass(frozen=True, kw_only=True)
class ArenaGraph:
    """What TFLite Micro allocates for a model: the planned buffers (tensors in tensor order, then scratch
    buffers), the ops, the number of tensors (constants too) and whether the output is integer."""

    buffers: tuple[Buffer, ...]
    ops: tuple[MicroOp, ...]
    tensors: int
    integer_output: bool


def align(size: int) -> int:
    """``size`` rounded up to the arena's alignment."""
    return -(-size // ALIGNMENT) * ALIGNMENT


def head_bytes(buffers: tuple[Buffer, ...] | list[Buffer]) -> int:
    """The greedy memory planner's arena size for ``buffers`` (the rules of the module docstring)."""
    sizes = [align(b.bytes) for b in buffers]
    order = sorted(reversed(range(len(buffers))), key=lambda i: -sizes[i])  # stable: the last added first
    placed: list[tuple[int, int]] = []  # (offset, buffer index), by offset
    end = 0
    for index in order:
        offset = _first_gap(index, buffers, sizes, placed)
        placed.append((offset, index))
        placed.sort(key=lambda item: item[0])
        end = max(end, offset + sizes[index])
    return end


def _first_gap(index: int, buffers: tuple[Buffer, ...] | list[Buffer], sizes: list[int], placed: list) -> int:
    wanted = buffers[index]
    offset = 0
    for other_offset, other in placed:
        if buffers[other].first > wanted.last or wanted.first > buffers[other].last:
            continue  # not alive at the same time
        if other_offset - offset >= sizes[index]:
            return offset
        offset = max(offset, other_offset + sizes[other])
    return offset


def tail_bytes(graph: ArenaGraph) -> int:
    """The persistent tail: the computed structs plus the fitted bytes per op kind (a tail is a whole number
    of aligned allocations: rounded to one)."""
    constants = _constants()
    fitted = constants["constant"] + sum(constants[op.kind] for op in graph.ops)
    return _nearest(fitted + _exact_tail(graph))


def _nearest(size: float) -> int:
    return round(size / ALIGNMENT) * ALIGNMENT


def temporary_tensor_bytes(channels: tuple[int, ...]) -> int:
    """What a kernel's Prepare holds of its tensors at once: a ``TfLiteTensor`` each, and for a quantized one its
    quantization and a zero point per channel (``channels``: 0 for a float tensor, else its channels)."""
    return sum(TEMP_TENSOR_BYTES + (IO_QUANTIZATION_BYTES - 8 + align(4 + 4 * c) if c else 0) for c in channels)


def _exact_tail(graph: ArenaGraph) -> int:
    """The tail's terms known exactly: per tensor, op, scratch request, channel, and the input and output."""
    per_channel = sum(2 * align(4 * op.channels) for op in graph.ops if op.channels)
    scratch = sum(op.scratch for op in graph.ops)
    io = 2 * IO_TENSOR_BYTES + (IO_QUANTIZATION_BYTES if graph.integer_output else 0)
    return (
        EVAL_TENSOR_BYTES * graph.tensors
        + NODE_BYTES * len(graph.ops)
        + SCRATCH_HANDLE_BYTES * scratch
        + per_channel
        + io
    )


def tail_features(graph: ArenaGraph) -> list[float]:
    """The fitted part's features (order: ``FEATURES``): one, and the number of ops of each kind."""
    return [1.0, *(float(sum(op.kind == kind for op in graph.ops)) for kind in OP_KINDS)]


def tail_residual(graph: ArenaGraph, recorded_tail: int) -> float:
    """What the fit explains of a recorded tail: all but its exactly computed terms."""
    return float(recorded_tail - _exact_tail(graph))


def planning_bytes(graph: ArenaGraph) -> int:
    """What the arena holds while the planner works: the tail so far (no input and output tensors yet), the
    scratch requests, the allocation infos and the planner's arrays."""
    scratch = sum(op.scratch for op in graph.ops)
    io = 2 * IO_TENSOR_BYTES + (IO_QUANTIZATION_BYTES if graph.integer_output else 0)
    return (
        tail_bytes(graph)
        - io
        + align(SCRATCH_REQUEST_BYTES * (scratch + MAX_SCRATCH_PER_OP))
        + ALIGNMENT  # the subgraph offsets
        + align(ALLOCATION_INFO_BYTES * (graph.tensors + scratch))
        + PLANNER_BYTES_PER_BUFFER * len(graph.buffers)
    )


def preparing_bytes(graph: ArenaGraph) -> int:
    """The most the arena holds while a kernel prepares: the tail but the per-channel arrays of later ops,
    the scratch requests so far and the kernel's temporary tensors."""
    tail = tail_bytes(graph) - 2 * IO_TENSOR_BYTES - (IO_QUANTIZATION_BYTES if graph.integer_output else 0)
    later = sum(2 * align(4 * op.channels) + SCRATCH_HANDLE_BYTES * op.scratch for op in graph.ops)
    most, requests = 0, 0
    for op in graph.ops:
        later -= 2 * align(4 * op.channels) + SCRATCH_HANDLE_BYTES * op.scratch
        held = tail - later + align(SCRATCH_REQUEST_BYTES * (requests + MAX_SCRATCH_PER_OP)) + op.prepare_bytes
        most = max(most, held)
        requests += op.scratch
    return most


def arena_bytes(graph: ArenaGraph) -> int:
    """The smallest arena that allocates ``graph``: head and tail, or the planner or a kernel at work if that
    is more."""
    needed = max(head_bytes(graph.buffers) + tail_bytes(graph), planning_bytes(graph), preparing_bytes(graph))
    return _nearest(needed)


@functools.cache
def _constants() -> dict[str, float]:
    coefficients = fitted_coefficients(CONSTANTS_PATH, FEATURES, "python -m nas.profiling.arena_fit")
    return dict(zip(FEATURES, coefficients, strict=True))
