"""Strict numerics for the project's own array code: no implicit dtype promotion, no implicit rank broadcast.

Fake quantization must stay on the exact integer grid in float32; an implicit upcast (an int32 code times a
Python float, float32 meeting float64) or a silent broadcast between ranks would give a slower or a subtly
wrong number instead of an error. The context applies at trace time, so it covers compiled functions too;
third-party code outside it (optax schedules, flax initializers) keeps JAX's standard rules.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import jax


@contextlib.contextmanager
def strict_numerics() -> Iterator[None]:
    """Within the block: JAX dtype promotion ``strict`` and rank promotion ``raise``."""
    with jax.numpy_dtype_promotion("strict"), jax.numpy_rank_promotion("raise"):
        yield
