"""What Vela does with each layer precision the exporter writes: the Ethos-U NPU runs it, the CPU runs it, or
nothing can.

Checked with Vela 5.2.0 on one-layer models of all 21 conv, depthwise conv and dense precisions the exporter
writes (``tests/latency_models/test_vela.py`` compiles them for the Ethos-U55; for the Ethos-U65-256 the same
files were placed the same way):

- int8 weights with int8 or int16 activations: the NPU (a conv with one input channel, exported as a
  depthwise conv with a channel multiplier, too);
- float32, and float16 or weight-only int8 weights (a DEQUANTIZE into a float op): left to the CPU, DEQUANTIZE
  and all, which runs them with TFLite Micro, so a precision TFLite Micro has no kernel for runs nowhere;
- int4 weights: Vela 5.2.0 cannot read the INT4 tensor type; its compiler stops with a floating-point exception
  (its legacy core with ``KeyError: 17``, the type's number), so such a file is refused before Vela sees it.
"""

from __future__ import annotations

from ai_edge_litert import schema_py_generated as schema

from latency_models.errors import CostModelError
from latency_models.runtimes.tflite_micro import TFLiteMicro
from search_spaces.runtime_support import OPS, Support

NPU_PRECISIONS = frozenset({(8, 8), (8, 16)})
UNREADABLE_BITS = 4
UNREADABLE = "Vela 5.2.0 cannot read INT4 tensors (its compiler stops with a floating-point exception)"
ON_NPU = "npu"
ON_CPU = "cpu"


def vela_support(op: str, weight_bits: int, activation_bits: int) -> Support:
    """Where a layer of ``op`` at this precision runs on an Ethos-U system (form ``npu`` or ``cpu``), or why
    it runs nowhere."""
    if op not in OPS:
        return Support(runs=False, form="none", note="not in the support table")
    if weight_bits == UNREADABLE_BITS:
        return Support(runs=False, form="none", note=UNREADABLE)
    if (weight_bits, activation_bits) in NPU_PRECISIONS:
        return Support(runs=True, form=ON_NPU, note="Vela places it on the Ethos-U NPU")
    on_cpu = TFLiteMicro().support(op, weight_bits, activation_bits)
    if not on_cpu.runs:
        return Support(runs=False, form="none", note=f"Vela leaves it to the CPU, where {on_cpu.note}")
    return Support(runs=True, form=ON_CPU, note="Vela leaves it to the CPU (TFLite Micro)")


def refuse_unreadable(content: bytes) -> None:
    """Raises ``CostModelError`` when ``content`` holds a tensor type Vela cannot read (it would crash on it)."""
    try:
        model = schema.Model.GetRootAs(bytearray(content), 0)
        types = {
            model.Subgraphs(g).Tensors(t).Type()
            for g in range(model.SubgraphsLength())
            for t in range(model.Subgraphs(g).TensorsLength())
        }
    except Exception as err:  # the flatbuffer library raises bare struct/index errors on garbage
        raise CostModelError(f"not a .tflite flatbuffer ({type(err).__name__}); pass an exported model") from None
    if schema.TensorType.INT4 in types:
        raise CostModelError(f"{UNREADABLE}; export int8 weights for an Ethos-U device")
