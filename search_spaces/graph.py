"""Static analysis of a model spec for one input shape: per-layer shapes and channel-pruning groups.

Channel pruning must stay consistent: a depthwise conv, BatchNorm or pooling keeps the channels of its input,
and a residual add forces its inputs to keep the same channels. Tensors whose channel axis must share one
mask form a *group*; each group that is neither the model input nor the model output can be pruned, and its
keep ratio is searched under the name of its first conv/dense producer (the group's *leader*). A float
region (a part of a user's model the search cannot compress) fixes the groups it reads and writes: its
traced function expects every channel.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from search_spaces.errors import SpecError
from search_spaces.spec import FLOAT_OP, ModelSpec, NodeSpec


@dataclass(frozen=True, kw_only=True)
class LayerSpec:
    """A node with its shapes resolved (shapes exclude the batch axis, channels last)."""

    name: str
    op: str
    inputs: tuple[str, ...]
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    kernel: tuple[int, int]
    stride: tuple[int, int]
    groups: int
    out_group: int
    in_group: int
    in_repeat: int

    @property
    def in_channels(self) -> int:
        """Size of the input axis the weights contract over (flattened features for a dense after flatten)."""
        return self.input_shape[-1] if self.op != "dense" else math.prod(self.input_shape)

    @property
    def out_channels(self) -> int:
        """Number of output channels (features)."""
        return self.output_shape[-1]

    @property
    def runtime_op(self) -> str:
        """The op kind LiteRT runs for this layer (the key of the runtime support table).

        The converter turns a convolution over a single input channel into a DEPTHWISE_CONV_2D with a channel
        multiplier, which the runtime treats differently from both a conv and a plain depthwise conv.
        """
        if self.op == "conv" and self.input_shape[-1] == 1:
            return "dwconv_multiplier"
        return self.op

    @property
    def kernel_shape(self) -> tuple[int, ...]:
        """Shape of the Flax kernel: HWIO for conv, (kh, kw, 1, C) for depthwise, (in, out) for dense."""
        kh, kw = self.kernel
        if self.op == "conv":
            return (kh, kw, self.input_shape[-1], self.out_channels)
        if self.op == "dwconv":
            return (kh, kw, 1, self.out_channels)
        return (self.in_channels, self.out_channels)


@dataclass(frozen=True, kw_only=True)
class ModelGraph:
    """A spec resolved for an input shape and class count."""

    spec: ModelSpec
    input_shape: tuple[int, ...]
    num_classes: int
    layers: tuple[LayerSpec, ...]
    group_sizes: tuple[int, ...]
    prunable_groups: frozenset[int]
    group_leaders: tuple[str | None, ...]

    @property
    def float_regions(self) -> tuple[LayerSpec, ...]:
        """The regions of a user's model that stay float, in execution order."""
        return tuple(layer for layer in self.layers if layer.op == FLOAT_OP)

    @property
    def compressible(self) -> tuple[LayerSpec, ...]:
        """The conv, depthwise-conv and dense layers, in execution order."""
        return tuple(layer for layer in self.layers if layer.op in ("conv", "dwconv", "dense"))

    def layer(self, name: str) -> LayerSpec:
        """The layer called ``name``; raises ``SpecError`` listing the names when it does not exist."""
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise SpecError(f"no layer {name!r}; layers are {', '.join(la.name for la in self.layers)}")

    def leader_of(self, group: int) -> str | None:
        """Name of the layer whose ``keep`` knob sets the group's channel keep ratio (None: not prunable)."""
        return self.group_leaders[group] if group in self.prunable_groups else None


def analyze(spec: ModelSpec, input_shape: tuple[int, ...], num_classes: int) -> ModelGraph:
    """Resolves shapes and channel groups of ``spec`` for inputs of ``input_shape`` (no batch axis)."""
    if num_classes < 2:
        raise SpecError(f"num_classes must be at least 2, got {num_classes}")
    shapes: dict[str, tuple[int, ...]] = {"input": tuple(input_shape)}
    union = _UnionFind()
    group_of = {"input": union.new()}
    repeat_of = {"input": 1}  # how many flattened features each channel of a tensor became
    input_group = group_of["input"]
    partial: list[tuple[NodeSpec, tuple[int, ...], tuple[int, ...], int, int]] = []
    for node in spec.nodes:
        in_shape = shapes[node.inputs[0]]
        node = _with_effective_stride(node, in_shape, spec.min_feature_size)
        out_shape = _output_shape(node, [shapes[i] for i in node.inputs], num_classes)
        in_repeat = repeat_of[node.inputs[0]]
        if node.op == "flatten":
            repeat_of[node.name] = in_repeat * math.prod(in_shape[:-1])
        else:
            repeat_of[node.name] = 1 if node.op in ("conv", "dense", FLOAT_OP) else in_repeat
        in_group = group_of[node.inputs[0]]
        if node.op in ("conv", "dense", FLOAT_OP):
            group_of[node.name] = union.new()
        elif node.op == "flatten":
            group_of[node.name] = in_group  # the dense that follows tiles the channel mask (in_repeat)
        else:
            group_of[node.name] = in_group
            for other in node.inputs[1:]:
                union.merge(in_group, group_of[other])
        shapes[node.name] = out_shape
        partial.append((node, in_shape, out_shape, in_group, in_repeat))
    fixed = [input_group]
    for node in spec.nodes:
        if node.op == FLOAT_OP:
            fixed += [group_of[name] for name in (*node.inputs, node.name)]
    return _assemble(spec, input_shape, num_classes, partial, union, group_of, fixed)


def _assemble(spec, input_shape, num_classes, partial, union, group_of, fixed_raw) -> ModelGraph:
    canonical: dict[int, int] = {}

    def gid(raw: int) -> int:
        return canonical.setdefault(union.find(raw), len(canonical))

    layers = []
    for node, in_shape, out_shape, in_group, in_repeat in partial:
        groups = in_shape[-1] if node.op == "dwconv" else 1
        layers.append(
            LayerSpec(
                name=node.name,
                op=node.op,
                inputs=node.inputs,
                input_shape=in_shape,
                output_shape=out_shape,
                kernel=node.kernel if node.op in ("conv", "dwconv") else (1, 1) if node.op == FLOAT_OP else node.window,
                stride=node.stride,
                groups=groups,
                out_group=gid(group_of[node.name]),
                in_group=gid(in_group),
                in_repeat=in_repeat,
            )
        )
    sizes = [0] * len(canonical)
    sizes[gid(group_of["input"])] = input_shape[-1]
    leaders: list[str | None] = [None] * len(canonical)
    for layer in layers:
        if layer.op != "flatten":  # a flattened tensor's last axis is not the group's channel axis
            sizes[layer.out_group] = layer.output_shape[-1]
        if layer.op in ("conv", "dense") and leaders[layer.out_group] is None:
            leaders[layer.out_group] = layer.name
    fixed = {gid(raw) for raw in fixed_raw} | {layers[-1].out_group}
    prunable = frozenset(g for g in range(len(canonical)) if g not in fixed and leaders[g] is not None)
    return ModelGraph(
        spec=spec,
        input_shape=tuple(input_shape),
        num_classes=num_classes,
        layers=tuple(layers),
        group_sizes=tuple(sizes),
        prunable_groups=prunable,
        group_leaders=tuple(leaders),
    )


def _output_shape(node: NodeSpec, in_shapes: list[tuple[int, ...]], num_classes: int) -> tuple[int, ...]:
    shape = in_shapes[0]
    if node.op == FLOAT_OP:
        return node.shape
    if node.op == "dense":
        return (node.features or num_classes,)
    if node.op == "flatten":
        return (math.prod(shape),)
    if len(shape) != 3:
        raise SpecError(
            f"node {node.name!r} ({node.op}) needs an image-shaped input (H, W, C), got {shape}; "
            "add a flatten node before dense layers only"
        )
    if node.op == "add":
        if any(s != shape for s in in_shapes):
            raise SpecError(f"node {node.name!r}: add inputs have different shapes {in_shapes}")
        return shape
    if node.op == "global_avg_pool":
        return (shape[-1],)
    window = node.kernel if node.op in ("conv", "dwconv") else node.window
    stride = node.stride if node.op in ("conv", "dwconv") else node.window
    spatial = tuple(_conv_out(shape[i], window[i], stride[i], node.padding) for i in range(2))
    if min(spatial) < 1:
        raise SpecError(f"node {node.name!r}: the input {shape} is too small for a {window} window")
    channels = node.features if node.op == "conv" else shape[-1]
    return (*spatial, channels or num_classes)


def _with_effective_stride(node: NodeSpec, in_shape: tuple[int, ...], min_size: int) -> NodeSpec:
    """The node with each stride that would shrink its output below ``min_size`` pixels set to 1."""
    if node.op not in ("conv", "dwconv") or len(in_shape) != 3 or min_size == 1:
        return node

    def axis(i: int) -> int:
        shrinks = _conv_out(in_shape[i], node.kernel[i], node.stride[i], node.padding) < min_size
        return 1 if node.stride[i] > 1 and shrinks else node.stride[i]

    stride = (axis(0), axis(1))
    return node if stride == node.stride else dataclasses.replace(node, stride=stride)


def _conv_out(size: int, window: int, stride: int, padding: str) -> int:
    if padding == "SAME":
        return -(-size // stride)
    return (size - window) // stride + 1


class _UnionFind:
    def __init__(self) -> None:
        self._parent: list[int] = []

    def new(self) -> int:
        self._parent.append(len(self._parent))
        return len(self._parent) - 1

    def find(self, item: int) -> int:
        while self._parent[item] != item:
            self._parent[item] = self._parent[self._parent[item]]
            item = self._parent[item]
        return item

    def merge(self, a: int, b: int) -> None:
        self._parent[self.find(b)] = self.find(a)
