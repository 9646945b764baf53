"""What the LiteRT runtime runs correctly, per op and precision: one table for the search space and the exporter.

Weight bits: 4 and 8 are symmetric per-channel integers; 16 means float16 weights with a DEQUANTIZE (LiteRT
has no int16-weight compute kernel, and int16 per-channel weights are rejected); 32 is float32. Activation
bits: 8 is asymmetric int8, 16 is symmetric int16, 32 is float (with integer weights that is the hybrid,
dynamic-range form). Measured with LiteRT 2.3.0 on x86-64 (project notes, litert-facts.md).
"""

from __future__ import annotations

from dataclasses import dataclass

WEIGHT_BITS = (4, 8, 16, 32)
ACTIVATION_BITS = (8, 16, 32)
OPS = ("dense", "conv", "dwconv", "dwconv_multiplier")


@dataclass(frozen=True, kw_only=True)
class Support:
    """Whether an (op, weight bits, activation bits) combination runs correctly, and how."""

    runs: bool
    form: str
    note: str = ""


def _support(op: str, weight_bits: int, activation_bits: int) -> Support:
    if activation_bits != 32 and weight_bits >= 16:
        # Integer activations need integer weights: there is no kernel mixing float weights into int8/int16 ops.
        return Support(runs=False, form="none", note="integer activations need 4- or 8-bit weights")
    if weight_bits == 32:
        return Support(runs=True, form="float32")
    if weight_bits == 16:
        return Support(runs=True, form="float16 weights + DEQUANTIZE")
    if weight_bits == 4 and op in ("dwconv", "dwconv_multiplier"):
        # LiteRT 2.3: int4 x int16 DEPTHWISE_CONV_2D is silently wrong and int4 hybrid raises (litert-facts.md).
        # Measured here with the litert-quantizer export: int4 x int8 depthwise came out in float and off by
        # 390 steps (tests/nas/test_export_parity.py), and a single-input-channel conv, which the converter
        # turns into a channel-multiplier depthwise conv, agreed on only 95% of digits test images at int4.
        return Support(runs=False, form="none", note="int4 DEPTHWISE_CONV_2D does not export correctly")
    if activation_bits == 32:
        return Support(runs=True, form=f"weight-only int{weight_bits} weights, float compute")
    return Support(runs=True, form=f"int{weight_bits} weights, int{activation_bits} activations")


SUPPORT: dict[tuple[str, int, int], Support] = {
    (op, w, a): _support(op, w, a) for op in OPS for w in WEIGHT_BITS for a in ACTIVATION_BITS
}


def runs_correctly(op: str, weight_bits: int, activation_bits: int) -> bool:
    """True when LiteRT runs ``op`` at this precision and gives correct results."""
    entry = SUPPORT.get((op, weight_bits, activation_bits))
    return entry is not None and entry.runs


def supported_precisions(op: str) -> tuple[tuple[int, int], ...]:
    """All (weight bits, activation bits) pairs that ``op`` runs correctly, in table order."""
    return tuple((w, a) for w in WEIGHT_BITS for a in ACTIVATION_BITS if runs_correctly(op, w, a))
