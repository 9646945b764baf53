"""The runtime registry: LiteRT behind the ``Runtime`` interface, which device runs on which runtime, what a
runtime without a capability says, and that LiteRT's interface gives what its modules give (nothing timed)."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pytest

from latency_models.device import available_devices, load_device, this_host
from latency_models.errors import CostModelError
from latency_models.runtimes import RUNTIMES, runtime_for, runtime_named, runtime_running
from latency_models.runtimes.base import Capability, Runtime, RuntimeCapabilityError
from latency_models.runtimes.litert.interpreter import load_interpreter, predict_tflite
from latency_models.runtimes.litert.memory_plan import tensor_memory
from nas.profiling.flash_fit import export_random
from search_spaces.graph import analyze
from search_spaces.runtime_support import OPS, SUPPORT, Support
from search_spaces.space import Candidate
from search_spaces.spec import load_model_spec


def test_litert_is_registered_with_its_two_kernel_sets():
    litert = runtime_named("litert")
    assert litert in RUNTIMES and litert.kernel_sets == ("xnnpack", "builtin")
    assert all(litert.can(capability) for capability in ("run", "time", "memory"))
    assert litert.version().startswith("ai-edge-litert")
    with pytest.raises(CostModelError, match="unknown runtime 'tflm'; use litert"):
        runtime_named("tflm")


def test_litert_support_is_the_search_spaces_table():
    litert = runtime_named("litert")
    for (op, w, a), support in SUPPORT.items():
        assert litert.support(op, w, a) == support and litert.runs_correctly(op, w, a) == support.runs
    assert not litert.runs_correctly("dwconv", 4, 8)  # measured: exported wrong (litert-facts.md)
    assert "lstm" not in OPS and not litert.runs_correctly("lstm", 8, 8)


def test_a_device_runs_on_the_runtime_of_its_kernel_sets():
    assert runtime_for(this_host()).name == "litert"
    assert runtime_running(["builtin"]).name == "litert"
    offered = [set(runtime.kernel_sets) for runtime in RUNTIMES]
    unrun = [n for n in available_devices() if not any(set(load_device(n).kernel_sets) <= k for k in offered)]
    assert unrun  # microcontrollers and the Edge TPU: costed from their profiles alone
    for name in ("ethos_u55_128", "ethos_u65_256"):  # the Ethos-U NPUs: Vela compiles for them here
        assert runtime_for(load_device(name)).name == "vela"
    for name in unrun:
        with pytest.raises(CostModelError, match=rf"device '{name}': no runtime here runs the kernel sets .*litert"):
            runtime_for(load_device(name))


class _EstimatorOnly(Runtime):
    """A runtime that only knows what it supports (as a compiler that gives estimates would)."""

    name: ClassVar[str] = "estimator"
    kernel_sets: ClassVar[tuple[str, ...]] = ("npu",)
    capabilities: ClassVar[frozenset[Capability]] = frozenset()

    def version(self) -> str:
        return "estimator 0"

    def support(self, op: str, weight_bits: int, activation_bits: int) -> Support:
        return Support(runs=weight_bits == 8, form="int8")


def test_a_runtime_refuses_what_it_cannot_do_and_says_so():
    runtime = _EstimatorOnly()
    assert runtime.runs_correctly("conv", 8, 8) and not runtime.can("time")
    with pytest.raises(RuntimeCapabilityError, match="the estimator runtime cannot time a model file"):
        runtime.time(b"", kernel_set="npu", protocol=None)  # type: ignore[arg-type]
    with pytest.raises(RuntimeCapabilityError, match="cannot run a model file"):
        runtime.predict(b"", np.zeros((1, 1)), kernel_set="npu")
    with pytest.raises(RuntimeCapabilityError, match="cannot report a memory plan"):
        runtime.memory_plan(b"")
    with pytest.raises(RuntimeCapabilityError, match="cannot estimate a model file's performance"):
        runtime.estimate(b"", this_host())


@pytest.mark.slow  # one real export through the LiteRT toolchain
def test_litert_through_the_interface_gives_what_its_modules_give():
    graph = analyze(load_model_spec("cnn"), (8, 8, 1), 10)
    content = export_random(graph, Candidate.uniform(graph, weight_bits=8, activation_bits=8))
    x = np.random.default_rng(0).random((12, 8, 8, 1), np.float32)
    litert = runtime_named("litert")
    for kernels in litert.kernel_sets:
        expected = predict_tflite(load_interpreter(content, delegate=kernels), x)
        assert np.array_equal(litert.predict(content, x, kernel_set=kernels), expected)
    assert litert.memory_plan(content) == tensor_memory(content)
    assert litert.timing_protocol(2).threads == 2
