import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nas.compress.quantize import activation_qparams, fake_quant_activation, fake_quant_weight, integer_weights

pytestmark = pytest.mark.usefixtures("strict_jax_numerics")

STRICT = (jax.numpy_dtype_promotion("strict"), jax.numpy_rank_promotion("raise"))


def _strict(fn, *args):
    with jax.numpy_dtype_promotion("strict"), jax.numpy_rank_promotion("raise"):
        return fn(*args)


@pytest.mark.parametrize("bits", [4, 8])
@pytest.mark.parametrize("shape", [(3, 3, 4, 6), (3, 3, 1, 5), (20, 7)])
def test_integer_weights_take_at_most_2_to_the_bits_values_per_channel(bits, shape):
    w = jax.random.normal(jax.random.key(bits), shape)
    q = np.asarray(_strict(fake_quant_weight, w, jnp.asarray(bits, jnp.int32)))
    flat = q.reshape(-1, shape[-1])
    for channel in range(shape[-1]):
        values = np.unique(flat[:, channel])
        assert len(values) <= 2**bits - 1  # narrow symmetric range: -qmax..qmax
        scale = np.abs(flat[:, channel]).max() / (2 ** (bits - 1) - 1)
        np.testing.assert_allclose(values / scale, np.round(values / scale), atol=1e-4)
    # The largest magnitude per channel is represented exactly (symmetric max calibration).
    np.testing.assert_allclose(np.abs(flat).max(0), np.abs(np.asarray(w).reshape(-1, shape[-1])).max(0), rtol=1e-6)
    np.testing.assert_array_equal(
        integer_weights(np.asarray(w), bits).reshape(-1, shape[-1]).max(0) <= 2 ** (bits - 1) - 1, True
    )


def test_16_bit_weights_are_float16_and_32_bit_weights_are_untouched():
    w = jax.random.normal(jax.random.key(0), (5, 4)) * 3
    half = _strict(fake_quant_weight, w, jnp.asarray(16, jnp.int32))
    np.testing.assert_array_equal(np.asarray(half), np.asarray(w).astype(np.float16).astype(np.float32))
    np.testing.assert_array_equal(np.asarray(_strict(fake_quant_weight, w, jnp.asarray(32, jnp.int32))), np.asarray(w))


def test_int8_activations_are_asymmetric_with_zero_exactly_representable():
    scale, zero_point, qmin, qmax = activation_qparams(jnp.float32(-0.5), jnp.float32(3.0), jnp.asarray(8))
    assert float(qmin) == -128 and float(qmax) == 127
    assert float(zero_point) == round(-128 + 0.5 / float(scale))
    x = jnp.linspace(-1.0, 4.0, 1001)
    q = np.asarray(_strict(fake_quant_activation, x, jnp.asarray(8, jnp.int32), jnp.array([-0.5, 3.0])))
    assert len(np.unique(q)) <= 256
    assert 0.0 in q  # zero maps to zero exactly
    inside = (np.asarray(x) >= -0.5) & (np.asarray(x) <= 3.0)
    assert np.abs(q[inside] - np.asarray(x)[inside]).max() <= float(scale) / 2 + 1e-6
    assert q.min() >= -0.5 - float(scale) and q.max() <= 3.0 + float(scale)  # clipped to the range


def test_int16_activations_are_symmetric():
    scale, zero_point, qmin, _ = activation_qparams(jnp.float32(-1.0), jnp.float32(4.0), jnp.asarray(16))
    assert float(zero_point) == 0 and float(qmin) == -32768
    assert float(scale) == pytest.approx(4.0 / 32767)
    x = jnp.array([-0.3, 0.0, 1.234567, 3.9])
    q = np.asarray(_strict(fake_quant_activation, x, jnp.asarray(16, jnp.int32), jnp.array([-1.0, 4.0])))
    np.testing.assert_allclose(q, np.asarray(x), atol=float(scale) / 2 + 1e-7)


def test_float_activations_pass_through_and_gradients_go_straight_through():
    x = jnp.array([0.1, -2.0, 7.0])
    same = _strict(fake_quant_activation, x, jnp.asarray(32, jnp.int32), jnp.array([0.0, 1.0]))
    np.testing.assert_array_equal(np.asarray(same), np.asarray(x))
    grad = jax.grad(lambda v: fake_quant_activation(v, jnp.asarray(8, jnp.int32), jnp.array([-1.0, 1.0])).sum())(x)
    np.testing.assert_array_equal(np.asarray(grad), 1.0)
    wgrad = jax.grad(lambda v: fake_quant_weight(v, jnp.asarray(4, jnp.int32)).sum())(jnp.ones((3, 2)))
    np.testing.assert_array_equal(np.asarray(wgrad), 1.0)
