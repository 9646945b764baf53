"""Flax networks built from a model graph, with optional compression (masks, fake quantization) applied inline.

The same module class serves two forms:
- ``folded=False``: the training form, BatchNorm after conv/dense where the spec asks for it;
- ``folded=True``: the inference form, BatchNorm folded into the kernels and biases (as TFLite does), which is
  what candidates are fine-tuned and evaluated in, so quantization sees the folded weights that get exported.

``runtime_ops=True`` writes every layer as the op the runtime runs (a grouped convolution, which the converter
turns into DEPTHWISE_CONV_2D); the export traces that. Training and evaluation write depthwise and 1x1 layers
as shifted slices and matrix products instead (``nas.compress.lowering``): the same values, several times
faster on XLA's CPU backend.

Compression arrives as a pytree of arrays (``Compression``), never as Python constants, so one compiled function
serves every candidate of a model.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from nas.compress.float_regions import call_region
from nas.compress.lowering import depthwise_conv, pointwise_conv
from nas.compress.numerics import strict_numerics
from nas.compress.quantize import fake_quant_activation, fake_quant_weight
from search_spaces.graph import LayerSpec, ModelGraph
from search_spaces.spec import FLOAT_OP

Compression = dict[str, dict[str, Any]]  # arrays: jax in training, numpy when loaded or shrunk
"""``{"kernel_mask", "channel_mask", "weight_bits", "activation_bits", "ranges"}``, each keyed by layer name
(``ranges`` by quantization point, see ``quant_points``)."""

BN_EPSILON = 1e-5


class CompressibleLayer(nn.Module):
    """A conv, depthwise conv or dense layer whose kernel may be masked and fake-quantized."""

    layer: LayerSpec
    padding: str
    use_bias: bool
    runtime_ops: bool = False

    @nn.compact
    def __call__(self, x: jax.Array, kernel_mask: jax.Array | None, weight_bits: jax.Array | None) -> jax.Array:
        kernel = self.param("kernel", nn.initializers.lecun_normal(), self.layer.kernel_shape)
        if kernel_mask is not None:
            kernel = kernel * kernel_mask
        if weight_bits is not None:
            kernel = fake_quant_weight(kernel, weight_bits)
        if self.layer.op == "dense":
            y = x.reshape(x.shape[0], -1) @ kernel
        elif self.layer.op == "dwconv" and not self.runtime_ops:
            y = depthwise_conv(x, kernel, self.layer.stride, self.padding)
        elif self.layer.kernel == (1, 1) and not self.runtime_ops:
            y = pointwise_conv(x, kernel, self.layer.stride)
        else:
            y = jax.lax.conv_general_dilated(
                x,
                kernel,
                window_strides=self.layer.stride,
                padding=self.padding,
                dimension_numbers=("NHWC", "HWIO", "NHWC"),
                feature_group_count=self.layer.groups,
            )
        if self.use_bias:
            y = y + _per_channel(self.param("bias", nn.initializers.zeros_init(), (self.layer.out_channels,)), y)
        return y


class SpecNet(nn.Module):
    """The network of a ``ModelGraph``; see the module docstring for the two forms."""

    graph: ModelGraph
    folded: bool = False
    runtime_ops: bool = False

    @nn.compact
    def __call__(
        self,
        x: jax.Array,
        *,
        train: bool = False,
        compression: Compression | None = None,
        calibrate: bool = False,
        statistics: dict[str, jax.Array] | None = None,
    ) -> jax.Array:
        """Logits for ``x``; ``calibrate`` sows activation ranges and, in the folded form, the per-channel
        statistics of every BatchNorm layer's output ("statistics": mean and std), or with ``statistics``
        (such means and stds, the targets) matches them and sows the corrections (scale and shift)."""
        with strict_numerics():
            return self._forward(x, train=train, compression=compression, calibrate=calibrate, targets=statistics)

    def _forward(self, x, *, train, compression, calibrate, targets) -> jax.Array:
        nodes = {node.name: node for node in self.graph.spec.nodes}
        values: dict[str, jax.Array] = {"input": x}
        bits: dict[str, Any] = {"input": None}
        for layer in self.graph.layers:
            node = nodes[layer.name]
            first = values[layer.inputs[0]]
            if node.is_compressible:
                a_bits = None if compression is None else compression["activation_bits"][layer.name]
                h = self._quant(first, a_bits, f"{layer.name}/in", compression, calibrate)
                h = self._compressible(layer, node, h, compression, train, targets if calibrate else None)
                values[layer.name] = self._quant(h, a_bits, f"{layer.name}/out", compression, calibrate)
                bits[layer.name] = a_bits
                continue
            # A float region's output is float whatever it reads (the export dequantizes in front of it).
            bits[layer.name] = None if node.op == FLOAT_OP else bits[layer.inputs[0]]
            # The name scope puts the node's name into exported tensor names, where export recipes find it.
            with jax.named_scope(layer.name):
                values[layer.name] = self._shape_op(
                    node, [values[i] for i in layer.inputs], bits[layer.name], compression, calibrate
                )
        self.sow("outputs", "nodes", values)  # every node's output; a no-op unless "outputs" is mutable
        return values[self.graph.layers[-1].name]

    def _shape_op(self, node, inputs, a_bits, compression, calibrate):
        first = inputs[0]
        if node.op == FLOAT_OP:
            # Runs in float, never fake-quantized; its range is still calibrated: the export quantizes its
            # output for an integer consumer with it, as the consumer's own input range does here.
            h = call_region(node.function, *inputs)
            if compression is not None and calibrate:
                self.sow("ranges", f"{node.name}/out", jnp.stack([jnp.min(h), jnp.max(h)]))
            return h
        if node.op == "flatten":
            return first.reshape(first.shape[0], -1)
        if node.op == "max_pool":
            return nn.max_pool(first, node.window, node.window, padding=node.padding)
        h = _activation(node.act, _mean_or_sum(node, inputs))
        return self._quant(h, a_bits, f"{node.name}/out", compression, calibrate)

    def _compressible(self, layer, node, h, compression, train, targets):
        mask = None if compression is None else compression["kernel_mask"][layer.name]
        w_bits = None if compression is None else compression["weight_bits"][layer.name]
        use_bn = node.bn and not self.folded
        h = CompressibleLayer(
            layer=layer, padding=node.padding, use_bias=not use_bn, runtime_ops=self.runtime_ops, name=layer.name
        )(h, mask, w_bits)
        if node.bn and self.folded:
            h = self._restandardize(layer.name, h, targets)
        if use_bn:
            h = nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=BN_EPSILON, name=f"{layer.name}_bn")(
                h
            )
        h = _activation(node.act, h)
        if compression is not None and layer.name in compression["channel_mask"]:
            # Pruned channels output exactly zero (bias and BatchNorm shift included), as if removed.
            h = h * _per_channel(compression["channel_mask"][layer.name], h)
        return h

    def _restandardize(self, name: str, h: jax.Array, targets: dict[str, jax.Array] | None) -> jax.Array:
        """A folded BatchNorm layer's output, re-standardized per channel to ``targets`` when given.

        What re-estimating BatchNorm statistics after pruning does (Li et al., "EagleEye", ECCV 2020), done in the
        folded form: each channel's batch mean and std are moved to the uncompressed model's, and the scale and
        shift are sown for ``nas.training.finetune.adapt_statistics`` to fold into the kernel and bias.
        """
        axes = tuple(range(h.ndim - 1))
        mean, std = jnp.mean(h, axis=axes), jnp.std(h, axis=axes)
        key = f"{name}/bn"  # the layer's own name is its module's scope
        if targets is None:
            self.sow("statistics", key, jnp.stack([mean, std]))
            return h
        target_mean, target_std = targets[key][0], targets[key][1]
        # A channel constant here (pruned) or in the baseline (dead) keeps its weights: no scale to match.
        live = (std > 1e-6) & (target_std > 1e-6)
        scale = jnp.where(live, target_std / jnp.where(live, std, 1.0), 1.0)
        shift = jnp.where(live, target_mean - mean * scale, 0.0)
        self.sow("statistics", key, jnp.stack([scale, shift]))
        return h * _per_channel(scale, h) + _per_channel(shift, h)

    def _quant(self, h, a_bits, key, compression, calibrate):
        if compression is None:
            return h
        if calibrate:
            self.sow("ranges", key, jnp.stack([jnp.min(h), jnp.max(h)]))
            return h
        if a_bits is None:  # a pool or add passing on a float region's output: float, as the export runs it
            return h
        return fake_quant_activation(h, a_bits, compression["ranges"][key])


def _per_channel(vector: jax.Array, like: jax.Array) -> jax.Array:
    """``vector`` shaped to broadcast over the last axis of ``like`` (explicit ranks, no implicit promotion)."""
    return vector.reshape((1,) * (like.ndim - 1) + vector.shape)


def _mean_or_sum(node, inputs: list[jax.Array]) -> jax.Array:
    if node.op == "add":
        return sum(inputs[1:], inputs[0])
    if node.op == "global_avg_pool":
        return jnp.mean(inputs[0], axis=(1, 2))
    # flax's avg_pool divides by an int32 window count, an implicit promotion strict numerics refuses.
    window_sum = nn.pool(inputs[0], 0.0, jax.lax.add, node.window, node.window, node.padding)
    return window_sum / np.float32(node.window[0] * node.window[1])


def _activation(name: str | None, h: jax.Array) -> jax.Array:
    if name == "relu":
        return jax.nn.relu(h)
    if name == "relu6":
        return jnp.clip(h, 0.0, 6.0)
    return h


def quant_points(graph: ModelGraph) -> tuple[str, ...]:
    """Names of the tensors whose ranges are calibrated: each layer's input and output, adds, pools and float
    regions."""
    points: list[str] = []
    for layer in graph.layers:
        if layer.op in ("conv", "dwconv", "dense"):
            points += [f"{layer.name}/in", f"{layer.name}/out"]
        elif layer.op in ("add", "global_avg_pool", "avg_pool", FLOAT_OP):
            points.append(f"{layer.name}/out")
    return tuple(points)


def init_variables(graph: ModelGraph, seed: int) -> dict[str, Any]:
    """Fresh variables of the training form (params and BatchNorm statistics)."""
    dummy = jnp.zeros((1, *graph.input_shape), jnp.float32)
    # Jitted: eager initialization compiles every primitive separately and is several times slower.
    return jax.jit(SpecNet(graph=graph).init)(jax.random.key(seed), dummy)


def fold_batchnorm(graph: ModelGraph, variables: dict[str, Any]) -> dict[str, np.ndarray]:
    """Params of the folded form: ``kernel * gamma / sqrt(var + eps)``, ``bias = beta - mean * that scale``.

    Computed in numpy (float32): a one-off transform that needs no compilation.
    """
    params = jax.tree_util.tree_map(lambda a: np.asarray(a, np.float32), variables["params"])
    stats = jax.tree_util.tree_map(lambda a: np.asarray(a, np.float32), variables.get("batch_stats", {}))
    folded: dict[str, Any] = {}
    for layer in graph.compressible:
        kernel = params[layer.name]["kernel"]
        bias = params[layer.name].get("bias", np.zeros((layer.out_channels,), np.float32))
        bn_name = f"{layer.name}_bn"
        if bn_name in params:
            gamma, beta = params[bn_name]["scale"], params[bn_name]["bias"]
            mean, var = stats[bn_name]["mean"], stats[bn_name]["var"]
            scale = gamma / np.sqrt(var + np.float32(BN_EPSILON))
            kernel, bias = kernel * scale, (bias - mean) * scale + beta
        folded[layer.name] = {"kernel": kernel, "bias": bias}
    return folded
