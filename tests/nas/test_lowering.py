"""The training form's depthwise and 1x1 convolutions compute what the runtime's convolutions compute."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from nas.compress.lowering import depthwise_conv, pointwise_conv


def _conv(x, kernel, stride, padding, groups):
    dimensions = ("NHWC", "HWIO", "NHWC")
    return jax.lax.conv_general_dilated(
        x, kernel, stride, padding, dimension_numbers=dimensions, feature_group_count=groups
    )


SHAPES = [((8, 8), (3, 3)), ((7, 5), (3, 3)), ((4, 4), (5, 5)), ((1, 1), (3, 3))]
# VALID has no output where the kernel is larger than the input: those pairs are SAME only.
CASES = [
    (size, kernel, padding)
    for size, kernel in SHAPES
    for padding in ("SAME", "VALID")
    if padding == "SAME" or all(k <= s for k, s in zip(kernel, size, strict=True))
]


@pytest.mark.parametrize("stride", [(1, 1), (2, 2), (2, 1)])
@pytest.mark.parametrize(("size", "kernel", "padding"), CASES)
def test_depthwise_matches_the_grouped_convolution(stride, padding, size, kernel):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, *size, 6)).astype(np.float32)
    k = rng.normal(size=(*kernel, 1, 6)).astype(np.float32)
    expected = np.asarray(_conv(x, k, stride, padding, 6))
    np.testing.assert_allclose(np.asarray(depthwise_conv(x, k, stride, padding)), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("stride", [(1, 1), (2, 2)])
@pytest.mark.parametrize("padding", ["SAME", "VALID"])
def test_pointwise_matches_the_convolution(stride, padding):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(2, 7, 8, 5)).astype(np.float32)
    k = rng.normal(size=(1, 1, 5, 4)).astype(np.float32)
    expected = np.asarray(_conv(x, k, stride, padding, 1))
    np.testing.assert_allclose(np.asarray(pointwise_conv(x, k, stride)), expected, rtol=1e-5, atol=1e-5)
