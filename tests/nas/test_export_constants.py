"""An export keeps its constants inside the flatbuffer, where TFLite Micro reads them: a dense layer with just
over 256 KiB of int8 weights, which the quantizer alone stores after the flatbuffer, runs in TFLite Micro as in
LiteRT; a file with constants outside is refused in one line."""

from __future__ import annotations

import numpy as np
import pytest

from latency_models.errors import ModelLoadError
from latency_models.runtimes import runtime_named
from latency_models.table import LayerKey
from latency_models.tflite_buffers import inlined, outside_buffers
from nas.compress.compression import build_compression
from nas.compress.models import quant_points
from nas.profiling.micro import random_params, single
from nas.runtime.export import export_candidate, float_tflite, quantized_tflite

pytestmark = pytest.mark.slow  # a real export, run in TFLite Micro

# 1024 x 264 int8 weights (270,336 B) and a 1,056 B int32 bias: over the quantizer's 256 KiB of constants
# of 1 KiB or more, under it by a dense layer of 256 outputs.
KEY = LayerKey(
    op="dense",
    height=1,
    width=1,
    in_channels=1024,
    out_channels=264,
    kernel=1,
    stride=1,
    act="relu",
    weight_bits=8,
    activation_bits=8,
)


@pytest.fixture(scope="module")
def exports() -> dict[str, bytes]:
    """The quantizer's own file and the export of the same model."""
    micro = single(KEY)
    graph, candidate = micro.graph, micro.candidate
    params = random_params(graph)
    ranges = {point: np.array([-4.0, 4.0], np.float32) for point in quant_points(graph)}
    compression = build_compression(graph, params, candidate, ranges=ranges)
    calibration = np.random.default_rng(0).random((4, *graph.input_shape), np.float32)
    quantized = quantized_tflite(float_tflite(graph, params).content, graph, candidate, compression, calibration)
    exported = export_candidate(graph, params, compression, candidate, calibration)
    return {"quantizer": quantized.content, "export": exported.content}


def test_the_export_keeps_the_constants_the_quantizer_stores_outside_inside(exports):
    outside = outside_buffers(exports["quantizer"])
    assert sum(size for _, size in outside.values()) >= 256 * 1024  # the case this is about
    assert outside_buffers(exports["export"]) == {}
    assert exports["export"] == inlined(exports["quantizer"])
    assert inlined(exports["export"]) == exports["export"]  # nothing to move: the file unchanged
    # The same constants either way (what the flash figure counts): the export only drops the quantizer's
    # alignment of its data (to 16 bytes, before and after each buffer) and each buffer's offset and size fields.
    assert 0 <= len(exports["quantizer"]) - len(exports["export"]) <= 16 + 32 * len(outside)


def test_tflite_micro_computes_what_litert_does_on_the_export(exports):
    x = np.random.default_rng(1).random((32, KEY.in_channels), np.float32)
    litert = runtime_named("litert").predict(exports["export"], x, kernel_set="builtin")
    np.testing.assert_array_equal(
        runtime_named("litert").predict(exports["quantizer"], x, kernel_set="builtin"), litert
    )
    np.testing.assert_array_equal(runtime_named("tflite_micro").predict(exports["export"], x), litert)


def test_tflite_micro_refuses_a_file_with_constants_outside_in_one_line(exports):
    with pytest.raises(ModelLoadError, match=r"^TFLite Micro cannot run the model: 2 of its constants") as raised:
        runtime_named("tflite_micro").memory_plan(exports["quantizer"])
    assert "\n" not in str(raised.value)
