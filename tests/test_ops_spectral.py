import numpy as np
import pytest
import tensorflow as tf
from helpers import top_singular_value

from kerasnorm.errors import KerasNormValueError
from kerasnorm.ops import spectral


@pytest.mark.parametrize(
    "shape, layout, expected",
    [
        ((5, 7), "dense", (5, 7)),
        ((3, 3, 4, 8), "dense", (36, 8)),
        ((3, 3, 8, 4), "transpose", (36, 8)),
        ((2, 4, 4, 6, 5), "transpose", (160, 6)),
        ((3, 3, 4, 2), "depthwise", (9, 8)),
        ((1, 1, 8, 16), "dense", (8, 16)),
    ],
)
def test_matrix_shape(shape, layout, expected):
    assert spectral.matrix_shape(shape, layout) == expected
    kernel = tf.constant(np.random.normal(size=shape).astype("float32"))
    assert tuple(spectral.kernel_matrix(kernel, layout).shape) == expected


def test_transpose_layout_puts_output_channels_in_the_columns():
    kernel = np.random.normal(size=(3, 3, 8, 4)).astype("float32")  # (kh, kw, out, in)
    matrix = spectral.kernel_matrix(tf.constant(kernel), "transpose").numpy()
    # Column o holds every weight that feeds output channel o.
    for out in range(8):
        np.testing.assert_array_equal(
            np.sort(matrix[:, out]), np.sort(kernel[:, :, out, :].ravel())
        )


def test_naive_reshape_of_a_transposed_kernel_is_a_different_matrix():
    # The regression PyTorch fixed in its issue 7865: reshape(-1, shape[-1])
    # groups the input channels as columns and gets another sigma.
    kernel = np.random.normal(size=(4, 4, 16, 3)).astype("float32")
    kernel[:, :, 0, :] *= 5.0  # one strong output channel
    naive = float(np.linalg.svd(kernel.reshape(-1, 3), compute_uv=False)[0])
    right = top_singular_value(kernel, "transpose")
    assert abs(naive - right) / right > 0.1
    matrix = spectral.kernel_matrix(tf.constant(kernel), "transpose")
    _, _, sigma = spectral.converged_power_iteration(
        matrix, spectral.initial_vector(16), 1e-8, 1000
    )
    np.testing.assert_allclose(float(sigma), right, rtol=1e-4)


def test_unknown_layout_and_rank_one_kernels_are_rejected():
    with pytest.raises(KerasNormValueError, match="layout"):
        spectral.matrix_shape((3, 3), "channels_first")
    with pytest.raises(KerasNormValueError, match="rank 2"):
        spectral.matrix_shape((3,), "dense")


@pytest.mark.parametrize("shape", [(64, 32), (3, 3, 16, 32), (200, 10)])
def test_warm_start_converges_to_the_top_singular_value(shape):
    kernel = np.random.normal(size=shape).astype("float32")
    matrix = spectral.kernel_matrix(tf.constant(kernel))
    v = spectral.warm_start(matrix)
    u, v, sigma = spectral.power_iteration(matrix, v, 1)
    np.testing.assert_allclose(float(sigma), top_singular_value(kernel), rtol=1e-5)
    np.testing.assert_allclose(
        float(spectral.sigma_of(matrix, u, v)), float(sigma), rtol=1e-6
    )
    np.testing.assert_allclose([np.linalg.norm(u), np.linalg.norm(v)], 1.0, rtol=1e-6)


def test_sigma_gradient_is_the_outer_product_of_u_and_v():
    matrix = tf.constant(np.random.normal(size=(6, 4)))
    u, v, _ = spectral.converged_power_iteration(
        matrix, spectral.initial_vector(4, tf.float64), 1e-12, 1000
    )
    with tf.GradientTape() as tape:
        tape.watch(matrix)
        sigma = spectral.sigma_of(matrix, tf.stop_gradient(u), tf.stop_gradient(v))
    np.testing.assert_allclose(
        tape.gradient(sigma, matrix).numpy(), np.outer(u, v), rtol=1e-12
    )


def test_zero_matrix_gives_zero_vectors_not_nan():
    matrix = tf.zeros((5, 3))
    u, v, sigma = spectral.track(matrix, spectral.initial_vector(3), 2)
    assert float(sigma) == 0.0
    assert np.all(np.isfinite(u.numpy())) and np.all(np.isfinite(v.numpy()))


def test_tracking_restarts_from_a_zero_vector():
    kernel = np.random.normal(size=(10, 6)).astype("float32")
    _, _, sigma = spectral.track(
        tf.constant(kernel), tf.zeros(6), 1, tol=1e-7, max_iter=500
    )
    np.testing.assert_allclose(float(sigma), top_singular_value(kernel), rtol=1e-5)
