"""Per-layer comparison of an exported model with the JAX fake-quant model it came from.

Every node's output is read on both sides (the JAX side through the ``outputs`` collection the model sows,
the LiteRT side with all tensors preserved) and the difference is expressed in quantization steps of the
exported tensor, so the first layer that diverges is named when an export fails its checks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from ai_edge_litert.interpreter import Interpreter, OpResolverType

from latency_models.runtimes.litert.interpreter import dequantize_output, quantize_input
from nas.compress.models import Compression, SpecNet
from nas.runtime.export import trace_ops
from search_spaces.graph import ModelGraph

CONVERSION_OPS = ("QUANTIZE", "DEQUANTIZE")
FLOAT_STEP = 1e-4
"""A float tensor's "quantization step", relative to its largest value: float32 sums in another order differ
by far less; a real divergence by far more."""


ONE_STEP = 1.0 + 1e-2  # one quantization step, with room for the float error of the dequantized comparison


@dataclass(frozen=True, kw_only=True)
class LayerDiff:
    """Largest output difference of one node, absolute and in quantization steps of the exported tensor."""

    layer: str
    max_abs_diff: float
    step: float
    dtype: str

    @property
    def steps(self) -> float:
        """The difference in quantization steps (for float tensors, in units of 1e-4 of the largest value)."""
        return self.max_abs_diff / self.step if self.step > 0 else float("inf")


def jax_layer_outputs(
    graph: ModelGraph, params: dict[str, Any], compression: Compression | None, x: np.ndarray
) -> dict[str, np.ndarray]:
    """Every node's output (fake-quantized as simulated) for the batch ``x``."""
    model = SpecNet(graph=graph, folded=True)
    _, state = jax.jit(lambda p, c, v: model.apply({"params": p}, v, compression=c, mutable=["outputs"]))(
        params, compression, jnp.asarray(x)
    )
    return {name: np.asarray(value) for name, value in state["outputs"]["nodes"][0].items() if name != "input"}


def tflite_layer_outputs(content: bytes, graph: ModelGraph, x: np.ndarray) -> dict[str, tuple[np.ndarray, float, str]]:
    """Every traced node's output (dequantized), its quantization step (0 for float) and dtype, per example."""
    interpreter = Interpreter(
        model_content=content,
        experimental_preserve_all_tensors=True,
        experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
    )
    interpreter.allocate_tensors()
    details = {t["name"]: t for t in interpreter.get_tensor_details()}
    # A node's output is that of its last compute op (not the QUANTIZE / DEQUANTIZE the export adds after it).
    last_op = {op.layer: op.output for op in trace_ops(content, graph) if op.name not in CONVERSION_OPS}
    inp = interpreter.get_input_details()[0]
    outputs: dict[str, list[np.ndarray]] = {name: [] for name in last_op}
    for example in x:
        interpreter.set_tensor(inp["index"], quantize_input(example[None], inp))
        interpreter.invoke()
        for layer, tensor in last_op.items():
            outputs[layer].append(dequantize_output(interpreter.get_tensor(details[tensor]["index"]), details[tensor]))
    result = {}
    for layer, tensor in last_op.items():
        scale = details[tensor]["quantization"][0]
        result[layer] = (np.concatenate(outputs[layer]), float(scale), details[tensor]["dtype"].__name__)
    return result


def compare_layers(
    content: bytes, graph: ModelGraph, params: dict[str, Any], compression: Compression | None, x: np.ndarray
) -> list[LayerDiff]:
    """Differences per node in execution order (nodes the export folded away, like flatten, are skipped)."""
    reference = jax_layer_outputs(graph, params, compression, x)
    exported = tflite_layer_outputs(content, graph, x)
    diffs = []
    for layer in graph.layers:
        if layer.name not in exported:
            continue
        values, scale, dtype = exported[layer.name]
        expected = reference[layer.name].reshape(values.shape)
        step = scale if scale > 0 else FLOAT_STEP * max(float(np.abs(expected).max()), 1e-6)
        diffs.append(
            LayerDiff(layer=layer.name, max_abs_diff=float(np.abs(values - expected).max()), step=step, dtype=dtype)
        )
    return diffs


def first_divergence(diffs: list[LayerDiff], tolerance_steps: float = ONE_STEP) -> LayerDiff | None:
    """The first node whose output differs by more than ``tolerance_steps`` quantization steps."""
    return next((d for d in diffs if d.steps > tolerance_steps), None)
