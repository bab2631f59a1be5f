"""Kernel layouts and their matrix views; backend-neutral (see tests/backend.py)."""

import os

import backend
import numpy as np
import pytest
from backend import numpy as as_numpy
from backend import tensor
from helpers import top_singular_value

from kerasnorm.errors import KerasNormValueError
from kerasnorm.ops import layouts


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
    assert layouts.matrix_shape(shape, layout) == expected
    kernel = np.random.normal(size=shape).astype("float32")
    matrix = layouts.kernel_matrix(tensor(kernel), layout)
    assert tuple(matrix.shape) == expected
    np.testing.assert_array_equal(
        as_numpy(layouts.matrix_kernel(matrix, shape, layout)), kernel
    )


def test_transpose_layout_puts_output_channels_in_the_columns():
    kernel = np.random.normal(size=(3, 3, 8, 4)).astype("float32")  # (kh, kw, out, in)
    matrix = as_numpy(layouts.kernel_matrix(tensor(kernel), "transpose"))
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
    matrix = as_numpy(layouts.kernel_matrix(tensor(kernel), "transpose"))
    np.testing.assert_allclose(
        np.linalg.svd(matrix, compute_uv=False)[0], right, rtol=1e-5
    )


def test_unknown_layout_and_rank_one_kernels_are_rejected():
    with pytest.raises(KerasNormValueError, match="layout"):
        layouts.matrix_shape((3, 3), "channels_first")
    with pytest.raises(KerasNormValueError, match="rank 2"):
        layouts.matrix_shape((3,), "dense")


def test_runs_on_the_backend_asked_for():
    assert backend.NAME == os.environ.get("KERAS_BACKEND", "tensorflow")
