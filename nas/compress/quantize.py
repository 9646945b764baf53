"""Fake quantization that follows LiteRT's integer conventions, with bit widths passed as arrays.

Bit widths are traced values, not Python constants, so one compiled function serves every precision: each
function computes the candidate forms and selects with ``jnp.where`` (cheap next to the convolutions).

Conventions (TFLite quantization spec; project notes, litert-facts.md):
- weights, 4 and 8 bits: symmetric per output channel, narrow range ``[-(2^(b-1) - 1), 2^(b-1) - 1]``;
- weights, 16 bits: float16 (LiteRT has no int16-weight kernel); 32 bits: float32;
- activations, 8 bits: asymmetric int8 over a calibrated range that contains zero;
- activations, 16 bits: symmetric int16 (zero point 0); 32 bits: float.
Gradients pass straight through the rounding (straight-through estimator).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

_EPS = 1e-12


def _straight_through(x: jax.Array, quantized: jax.Array) -> jax.Array:
    # ``quantized + (x - x)`` is exactly ``quantized`` in the forward pass (``x + (q - x)`` is not, by an ulp,
    # which would put values off the integer grid) and passes the gradient of ``x`` unchanged.
    return jax.lax.stop_gradient(quantized) + (x - jax.lax.stop_gradient(x))


def weight_scale(w: jax.Array, bits: jax.Array) -> jax.Array:
    """Per-output-channel scale (last axis, kept as a size-1-elsewhere array) of symmetric ``bits``-bit weights."""
    qmax = jnp.exp2(bits.astype(jnp.float32) - 1.0) - 1.0
    reduce_axes = tuple(range(w.ndim - 1))
    return jnp.maximum(jnp.max(jnp.abs(w), axis=reduce_axes, keepdims=True), _EPS) / qmax


def fake_quant_weight(w: jax.Array, bits: jax.Array) -> jax.Array:
    """Quantize-dequantize ``w`` (output channels on the last axis) at ``bits`` in {4, 8, 16, 32}."""
    qmax = jnp.exp2(bits.astype(jnp.float32) - 1.0) - 1.0
    scale = weight_scale(w, bits)
    as_int = jnp.clip(jnp.round(w / scale), -qmax, qmax) * scale
    as_half = w.astype(jnp.float16).astype(jnp.float32)
    quantized = jnp.where(bits >= 32, w, jnp.where(bits == 16, as_half, as_int))
    return _straight_through(w, quantized)


def activation_qparams(
    lo: jax.Array, hi: jax.Array, bits: jax.Array
) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array]:
    """(scale, zero point, qmin, qmax) for activations: asymmetric at 8 bits, symmetric at 16."""
    lo = jnp.minimum(lo, 0.0)
    hi = jnp.maximum(hi, 0.0)
    is_int8 = bits == 8
    qmin = jnp.where(is_int8, -128.0, -32768.0)
    qmax = jnp.where(is_int8, 127.0, 32767.0)
    asym_scale = jnp.maximum((hi - lo) / 255.0, _EPS)
    sym_scale = jnp.maximum(jnp.maximum(-lo, hi) / 32767.0, _EPS)
    scale = jnp.where(is_int8, asym_scale, sym_scale)
    zero_point = jnp.where(is_int8, jnp.clip(jnp.round(-128.0 - lo / asym_scale), -128.0, 127.0), 0.0)
    return scale, zero_point, qmin, qmax


def fake_quant_activation(x: jax.Array, bits: jax.Array, value_range: jax.Array) -> jax.Array:
    """Quantize-dequantize ``x`` at ``bits`` in {8, 16, 32} over the calibrated ``value_range`` = [min, max]."""
    scale, zero_point, qmin, qmax = activation_qparams(value_range[0], value_range[1], bits)
    q = jnp.clip(jnp.round(x / scale) + zero_point, qmin, qmax)
    quantized = (q - zero_point) * scale
    return _straight_through(x, jnp.where(bits >= 32, x, quantized.astype(x.dtype)))


def integer_weights(w: np.ndarray, bits: int) -> np.ndarray:
    """The integer codes of ``w`` at ``bits`` (4 or 8) per output channel (last axis), as stored in the file."""
    qmax = 2 ** (bits - 1) - 1
    scale = np.maximum(np.abs(w).reshape(-1, w.shape[-1]).max(axis=0), _EPS) / qmax
    return np.clip(np.round(w / scale), -qmax, qmax).astype(np.int32)
