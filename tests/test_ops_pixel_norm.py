"""The PixelNorm op against NumPy; backend-neutral (see tests/backend.py)."""

import backend
import numpy as np
import pytest
from backend import numpy as as_numpy
from backend import tensor
from helpers import pixel_norm_reference
from keras import ops

from kerasnorm.ops.pixel_norm import pixel_norm


@pytest.mark.parametrize(
    "shape, axis",
    [((4, 16), -1), ((2, 5, 6, 8), -1), ((2, 8, 5, 6), 1), ((2, 3, 4, 5, 6), -1)],
)
def test_matches_numpy_reference(shape, axis):
    x = np.random.normal(size=shape).astype("float32")
    y = as_numpy(pixel_norm(tensor(x), axis=axis))
    np.testing.assert_allclose(y, pixel_norm_reference(x, axis), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.mean(y**2, axis=axis), 1.0, rtol=1e-5)


@pytest.mark.skipif(
    not backend.float64_available(), reason="compared in float64, off on this backend"
)
@pytest.mark.parametrize("axis", [-1, 1])
def test_analytic_gradient_matches_autodiff_of_the_formula(axis):
    x = np.random.normal(size=(3, 4, 5, 6))
    weights = tensor(np.random.normal(size=(3, 4, 5, 6)))

    def ours(x):
        return ops.sum(weights * pixel_norm(x, axis=axis))

    def plain(x):
        rms = ops.sqrt(ops.mean(x**2, axis=axis, keepdims=True) + 1e-8)
        return ops.sum(weights * x / rms)

    np.testing.assert_allclose(
        backend.gradient(ours, x), backend.gradient(plain, x), rtol=1e-9, atol=1e-12
    )


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_half_precision_is_computed_in_float32(dtype):
    # Squares of 1e-4 underflow to zero in float16, and so does epsilon:
    # a float16 formula would return 0/0.
    x = np.full((2, 4, 4, 8), 1e-4, dtype="float32")
    x[0] = np.random.normal(size=(4, 4, 8)) * 300.0
    y = pixel_norm(tensor(x, dtype=dtype))
    assert ops.dtype(y) == dtype
    y = as_numpy(ops.cast(y, "float32"))
    assert np.all(np.isfinite(y))
    np.testing.assert_allclose(y, pixel_norm_reference(x), rtol=2e-2, atol=2e-2)


def test_zero_input_gives_zero_output_and_finite_gradient():
    x = np.zeros((2, 3, 3, 4), "float32")
    np.testing.assert_array_equal(as_numpy(pixel_norm(tensor(x))), 0.0)
    gradient = backend.gradient(lambda x: ops.sum(pixel_norm(x)), x)
    assert np.all(np.isfinite(gradient))
