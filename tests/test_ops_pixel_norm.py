import numpy as np
import pytest
import tensorflow as tf
from helpers import pixel_norm_reference

from kerasnorm.ops.pixel_norm import pixel_norm


@pytest.mark.parametrize(
    "shape, axis",
    [((4, 16), -1), ((2, 5, 6, 8), -1), ((2, 8, 5, 6), 1), ((2, 3, 4, 5, 6), -1)],
)
def test_matches_numpy_reference(shape, axis):
    x = np.random.normal(size=shape).astype("float32")
    y = pixel_norm(x, axis=axis).numpy()
    np.testing.assert_allclose(y, pixel_norm_reference(x, axis), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.mean(y**2, axis=axis), 1.0, rtol=1e-5)


@pytest.mark.parametrize("axis", [-1, 1])
def test_analytic_gradient_matches_autodiff_of_the_formula(axis):
    x = tf.constant(np.random.normal(size=(3, 4, 5, 6)))
    weights = tf.constant(np.random.normal(size=(3, 4, 5, 6)))
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        ours = tf.reduce_sum(weights * pixel_norm(x, axis=axis))
        plain = tf.reduce_sum(
            weights * x / tf.sqrt(tf.reduce_mean(x**2, axis=axis, keepdims=True) + 1e-8)
        )
    np.testing.assert_allclose(
        tape.gradient(ours, x).numpy(),
        tape.gradient(plain, x).numpy(),
        rtol=1e-9,
        atol=1e-12,
    )


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_half_precision_is_computed_in_float32(dtype):
    # Squares of 1e-4 underflow to zero in float16, and so does epsilon:
    # a float16 formula would return 0/0.
    x = np.full((2, 4, 4, 8), 1e-4, dtype="float32")
    x[0] = np.random.normal(size=(4, 4, 8)) * 300.0
    y = pixel_norm(tf.constant(x, dtype=dtype))
    assert y.dtype == tf.as_dtype(dtype)
    y = tf.cast(y, tf.float32).numpy()
    assert np.all(np.isfinite(y))
    np.testing.assert_allclose(y, pixel_norm_reference(x), rtol=2e-2, atol=2e-2)


def test_zero_input_gives_zero_output_and_finite_gradient():
    x = tf.zeros((2, 3, 3, 4))
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = pixel_norm(x)
    np.testing.assert_array_equal(y.numpy(), 0.0)
    assert np.all(np.isfinite(tape.gradient(y, x).numpy()))
