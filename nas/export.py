"""Conversion of a (physically pruned) network to a float ``.tflite`` through Google's LiteRT converter.

Path: the folded Flax forward function -> ``jax.export`` -> StableHLO text -> ``litert-converter`` passes ->
flatbuffer bytes. Tensor names keep the Flax module path (``.../conv1/...``), which is how per-layer
quantization recipes will find each layer. StableHLO goes through its text form: parsing serialized bytecode in
the converter's MLIR context crashes (project notes, litert-facts.md).
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
from litert_converter import converter_api_ext
from litert_converter.mlir import ir, passmanager

from nas.models import SpecNet
from search_spaces.graph import ModelGraph

SIGNATURE = "serving_default"
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
    model = SpecNet(graph=graph, folded=True)
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
