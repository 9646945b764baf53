"""TFLite Micro, the runtime standing in here for a microcontroller's kernels: registered, run on real exported
files (parity with LiteRT's builtin kernels, the smallest arena), what it lacks refused in one line, and a
microcontroller's space kept to what it runs."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from latency_models.device import load_device, this_host
from latency_models.errors import ModelLoadError
from latency_models.runtimes import RUNTIMES, runnable_precisions, runtime_named, runtime_standing_in
from latency_models.runtimes.base import RuntimeCapabilityError
from latency_models.runtimes.tflite_micro import ARENA_STEP, TFLiteMicro, _run_worker
from nas.profiling.micro import export_micro, small_layer

pytestmark = pytest.mark.slow


def _exported(op: str, weight_bits: int, activation_bits: int) -> tuple[bytes, tuple[int, ...]]:
    micro = small_layer(op, weight_bits, activation_bits)
    return export_micro(micro), micro.graph.input_shape


def test_tflite_micro_is_registered_and_stands_in_for_the_microcontrollers_only():
    micro = runtime_named("tflite_micro")
    assert micro in RUNTIMES and isinstance(micro, TFLiteMicro)
    assert micro.can("run") and micro.can("memory") and not micro.can("time")
    assert micro.version().startswith("tflite-micro ")
    with pytest.raises(RuntimeCapabilityError, match="cannot time a model file"):
        micro.timing_protocol()
    for name in ("stm32h7", "nrf52840", "esp32s3"):
        assert runtime_standing_in(load_device(name)) is micro
    for name in ("host", "rpi4", "coral_usb"):  # LiteRT runs them here, or nothing stands in (the Edge TPU)
        assert runtime_standing_in(load_device(name)) is None


@pytest.mark.parametrize(("op", "bits"), [("dense", (8, 8)), ("conv", (8, 16)), ("dwconv", (8, 8))])
def test_a_real_export_runs_as_in_litert_in_the_smallest_arena_that_allocates_it(op, bits):
    """The int8 dense layer is the case whose too-small arenas crash TFLite Micro's process: the search for the
    arena survives them (each probe in its own process)."""
    content, shape = _exported(op, *bits)
    x = np.random.default_rng(0).normal(size=(16, *shape)).astype(np.float32)
    micro = TFLiteMicro()
    expected = runtime_named("litert").predict(content, x, kernel_set="builtin")
    np.testing.assert_array_equal(micro.predict(content, x), expected)
    memory = micro.memory_plan(content)
    assert memory.runtime_bytes % ARENA_STEP == 0 and memory.provenance.startswith("measured")
    assert "recorded_bytes" in _run_worker(content, "probe", str(memory.runtime_bytes))
    assert "recorded_bytes" not in _run_worker(content, "probe", str(memory.runtime_bytes - ARENA_STEP))


def test_what_tflite_micro_lacks_is_refused_naming_it_and_its_support_says_so():
    micro = TFLiteMicro()
    content, _ = _exported("conv", 16, 32)  # float16 weights: a DEQUANTIZE of float16
    with pytest.raises(ModelLoadError, match=r"^TFLite Micro cannot run the model: .*dequantize") as raised:
        micro.memory_plan(content)
    assert "\n" not in str(raised.value)
    assert not micro.support("conv", 16, 32).runs and not micro.support("dense", 4, 8).runs
    assert micro.support("conv", 4, 8).runs and micro.support("dense", 8, 16).runs


def test_a_microcontroller_space_keeps_only_what_tflite_micro_runs():
    device = load_device("stm32h7")
    widened = dataclasses.replace(device, precisions={**device.precisions, "conv": ((8, 8), (16, 32), (4, 32))})
    assert runnable_precisions(widened)["conv"] == ((8, 8),)
    assert runnable_precisions(device) == dict(device.precisions)  # the shipped profile already does
    assert runnable_precisions(this_host()) == dict(this_host().precisions)
