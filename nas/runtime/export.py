"""Export of a candidate to ``.tflite`` through Google's own LiteRT toolchain.

1. Float graph: the folded Flax forward function of the physically pruned network -> ``jax.export`` ->
   StableHLO text -> ``litert-converter`` passes -> flatbuffer. Tensor names keep the Flax module path
   (``.../conv1/...``), which is how each TFLite op is traced back to its layer. StableHLO goes through its text
   form: parsing serialized bytecode in the converter's MLIR context crashes (project notes, litert-facts.md).
2. Precision: ``litert-quantizer`` recipes, one per op, matched by the op's exact output tensor name:
   static int8 / int16 activations with int4 / int8 weights, weight-only int4 / int8 (float compute, exactly
   what the search simulated for integer weights with float activations), float16 weight casting. Activation
   ranges are the ones the JAX fake quantization calibrated, written over the quantizer's own calibration,
   whose moving-average default clips ranges.
3. Constants inside the file: once a model's constants of 1 KiB or more add up to 256 KiB, the quantizer stores
   them after the flatbuffer (an offset and size per buffer, a fixed threshold with no option); TFLite Micro
   never reads such data and would compute with uninitialised arena memory. Every export is written back with
   its constants inline (``latency_models.tflite_buffers``): one file for every device, as LiteRT reads both.
"""

from __future__ import annotations

import gzip
import logging
import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from latency_models.console import third_party_output_silenced

with third_party_output_silenced():  # the converter's native libraries announce themselves on import
    from litert_converter import converter_api_ext
    from litert_converter.mlir import ir, passmanager

from latency_models.keys import node_bits
from latency_models.runtimes.litert.interpreter import load_interpreter
from latency_models.tflite_buffers import inlined
from nas.compress.models import Compression, SpecNet
from nas.compress.shrink import ShrunkModel, shrink
from nas.errors import ConfigError
from search_spaces.graph import ModelGraph
from search_spaces.space import Candidate
from search_spaces.techniques import TECHNIQUES

SIGNATURE = "serving_default"
# Activation ranges come from the fake-quant model; these training examples only seed the quantizer.
CALIBRATION_EXAMPLES = 32
INPUT_NAME = "x"
OUTPUT_NAME = "logits"


@dataclass(frozen=True, kw_only=True)
class ModelBytes:
    """An exported model and its size figures."""

    content: bytes

    @property
    def file_bytes(self) -> int:
        """Size of the ``.tflite`` file."""
        return len(self.content)

    @property
    def gzip_bytes(self) -> int:
        """Size after gzip (level 9): the convention of the TensorFlow Model Optimization Toolkit for pruning."""
        return len(gzip.compress(self.content, compresslevel=9, mtime=0))


def stablehlo_text(graph: ModelGraph, params: dict[str, Any], batch: int = 1) -> str:
    """StableHLO (text) of the folded float forward pass with ``params`` baked in as constants."""
    model = SpecNet(graph=graph, folded=True, runtime_ops=True)
    constants = jax.tree_util.tree_map(jnp.asarray, params)

    def forward(x):
        return model.apply({"params": constants}, x)

    spec = jax.ShapeDtypeStruct((batch, *graph.input_shape), jnp.float32)
    return jax.export.export(jax.jit(forward))(spec).mlir_module()


def convert_stablehlo(text: str) -> bytes:
    """Converts StableHLO text to a float TFLite flatbuffer with one ``serving_default`` signature."""
    with ir.Context() as context:
        converter_api_ext.prepare_mlir_context(context)
        module = ir.Module.parse(text)
        converter_api_ext.set_signature(module.operation, SIGNATURE, [INPUT_NAME], [OUTPUT_NAME])
        config = converter_api_ext.ConvertToTFLConfig()
        config.model_origin_framework = "JAX"
        converter_api_ext.run_convert_to_tfl_passes(module, passmanager.PassManager(), config)
        return bytes(converter_api_ext.export_flatbuffer_to_bytes(module.operation))


def float_tflite(graph: ModelGraph, params: dict[str, Any]) -> ModelBytes:
    """The float32 ``.tflite`` of a folded network (batch size 1, the deployment shape)."""
    return ModelBytes(content=convert_stablehlo(stablehlo_text(graph, params)))


@dataclass(frozen=True, kw_only=True)
class OpInfo:
    """One TFLite op traced back to the graph node it implements."""

    name: str
    layer: str
    output: str
    inputs: tuple[str, ...]


def trace_ops(content: bytes, graph: ModelGraph) -> list[OpInfo]:
    """The ops of a converted model with the node each belongs to (by the node names in its tensor names)."""
    interpreter = load_interpreter(content, delegate="builtin")
    names = {t["index"]: t["name"] for t in interpreter.get_tensor_details()}
    model_outputs = {detail["index"] for detail in interpreter.get_output_details()}
    patterns = [(layer.name, re.compile(f"/{re.escape(layer.name)}/")) for layer in graph.layers]
    traced = []
    for op in interpreter._get_ops_details():  # the interpreter's only op listing
        if op["op_name"] == "DELEGATE":
            continue
        inputs = tuple(names[i] for i in op["inputs"] if i >= 0)
        output = names[op["outputs"][0]]
        # The output names the op's own node, except the model output (a signature name): then the latest
        # node among the inputs (the weights, not the activation that comes from the previous node). Any
        # other op without a node's name (inside a float region) belongs to no layer: it gets no recipe.
        layer = next((n for n, p in patterns if p.search(output)), None)
        if layer is None and op["outputs"][0] in model_outputs:
            layer = next((n for n, p in reversed(patterns) for name in inputs if p.search(name)), None)
        if layer is not None:
            traced.append(OpInfo(name=op["op_name"], layer=layer, output=output, inputs=inputs))
    return traced


def quantized_tflite(
    float_model: bytes, graph: ModelGraph, candidate: Candidate, compression: Compression, calibration: Any
) -> ModelBytes:
    """Applies the candidate's per-layer precision to ``float_model`` with ``litert-quantizer``.

    ``compression["ranges"]`` (the JAX calibration) sets every activation range; ``calibration`` (a few input
    examples) only lets the quantizer enumerate the tensors it needs ranges for.
    """
    from litert_quantizer import qtyping
    from litert_quantizer import quantizer as litert_quantizer

    ops = trace_ops(float_model, graph)
    bits = node_bits(graph, candidate)  # the cost model's rules: they describe what this export writes
    quantizer = litert_quantizer.Quantizer(bytearray(float_model))
    configured = False
    for op in ops:
        configured |= _add_recipe(quantizer, qtyping, op, graph, candidate, bits)
    if not configured:
        return ModelBytes(content=float_model)
    ranges = {key: np.asarray(value, np.float32) for key, value in compression["ranges"].items()}
    _require_calibrated(ranges, bits)
    logging.disable(logging.WARNING)  # the quantizer logs per-op notes at warning level
    try:
        with warnings.catch_warnings():
            # Its calibration keeps every interpreter tensor on purpose; the runtime's warning about it is noise.
            warnings.filterwarnings("ignore", message=".*experimental_preserve_all_tensors", category=UserWarning)
            with third_party_output_silenced():  # its progress bar
                qsvs = (
                    quantizer.calibrate({SIGNATURE: [{INPUT_NAME: x[None]} for x in calibration]})
                    if quantizer.need_calibration
                    else {}
                )
            qsvs = _override_ranges(qsvs, ops, graph, ranges, float_model)
            result = quantizer.quantize(calibration_result=qsvs or None, enable_progress_report=False)
    finally:
        logging.disable(logging.NOTSET)
    return ModelBytes(content=bytes(result.quantized_model))


def _require_calibrated(ranges: dict[str, np.ndarray], node_bits: dict[str, int]) -> None:
    """Refuses ranges that were never calibrated: the quantizer would silently give every integer activation a
    scale of 1e-9 and the exported model would output noise."""
    if min(node_bits.values()) < 32 and all(not np.any(value) for value in ranges.values()):
        raise ConfigError(
            "the candidate's activation ranges are all zero (never calibrated); "
            "calibrate or fine-tune it (nas.finetune.calibrate / finetune) before exporting"
        )


def _add_recipe(quantizer, qtyping, op: OpInfo, graph, candidate, node_bits) -> bool:
    regex = f"^{re.escape(op.output)};$"  # the quantizer's op scope: output names, each followed by ';'
    every_op = qtyping.TFLOperationName.ALL_SUPPORTED
    layer = graph.layer(op.layer)
    a_bits = node_bits[op.layer]
    if layer.op not in ("conv", "dwconv", "dense"):
        if a_bits < 32:
            quantizer.add_static_config(regex, every_op, activation_num_bits=a_bits, weight_num_bits=8)
            return True
        return False
    w_bits = candidate.policy(op.layer).weight_bits
    if a_bits < 32:
        quantizer.add_static_config(regex, every_op, activation_num_bits=a_bits, weight_num_bits=w_bits)
    elif w_bits <= 8:
        quantizer.add_weight_only_config(regex, every_op, num_bits=w_bits)
    elif w_bits == 16:
        quantizer.add_weight_only_config(regex, every_op, num_bits=16, algorithm_key="float_casting")
    else:
        return False
    return True


def node_ranges(graph: ModelGraph, ranges: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The calibrated range of every node's output; nodes that do not requantize (flatten, max pool) keep the
    range of the tensor they read, as in the JAX simulation."""
    result = {"input": ranges[f"{graph.compressible[0].name}/in"]}
    for layer in graph.layers:
        result[layer.name] = ranges.get(f"{layer.name}/out", result[layer.inputs[0]])
    return result


def _override_ranges(qsvs: dict, ops: list[OpInfo], graph: ModelGraph, ranges: dict, float_model: bytes) -> dict:
    """Writes the JAX-calibrated ranges over the quantizer's for every activation tensor they describe."""
    per_node = node_ranges(graph, ranges)
    input_name = load_interpreter(float_model, delegate="builtin").get_input_details()[0]["name"]
    by_tensor = {input_name: per_node["input"]}
    for op in ops:
        by_tensor[op.output] = per_node[op.layer]
    for name, value in by_tensor.items():
        if name in qsvs:
            lo, hi = min(float(value[0]), 0.0), max(float(value[1]), 0.0)
            shape = np.shape(qsvs[name]["min"])
            qsvs[name] = {"min": np.full(shape, lo, np.float32), "max": np.full(shape, hi, np.float32)}
    return qsvs


def quantize_per_layer(content: bytes, small: ShrunkModel, candidate: Candidate, calibration: Any) -> ModelBytes:
    """Mixed precision's step on the converted file (see ``quantized_tflite``)."""
    return quantized_tflite(content, small.graph, candidate, small.compression, calibration)


# The techniques' export steps done on the converted file, by ``Technique.export_step``; the ones done on the
# weights before conversion are ``nas.compress.shrink.WEIGHT_STEPS``.
FILE_STEPS: dict[str, Callable[[bytes, ShrunkModel, Candidate, Any], ModelBytes]] = {
    "per_layer_quantization": quantize_per_layer,
}


def export_candidate(
    graph: ModelGraph, params: dict[str, Any], compression: Compression, candidate: Candidate, calibration: Any
) -> ModelBytes:
    """The ``.tflite`` of a fine-tuned candidate: every technique's export step, on the weights (channels
    physically removed, zeros written) then on the converted file (per-layer precision applied), with every
    constant inside the flatbuffer (step 3 of the module docstring)."""
    small = shrink(graph, params, compression)
    model = float_tflite(small.graph, small.params)
    for technique in sorted(TECHNIQUES, key=lambda technique: technique.build_stage):
        step = FILE_STEPS.get(technique.export_step)
        if step is not None:
            model = step(model.content, small, candidate, calibration)
    return ModelBytes(content=inlined(model.content))
