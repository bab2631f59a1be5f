"""One traced graph per kind of call; backend-neutral (see tests/backend.py)."""

import backend
import numpy as np
import pytest
from backend import numpy as as_numpy
from backend import tensor
from keras import ops as kops

from kerasnorm.ops import shared
from kerasnorm.ops import sigma as ops


def _counting():
    """A new function of two tensors and a static number, counting its runs."""

    def scaled_sum(matrix, rows, scale):
        scaled_sum.runs += 1
        return kops.matmul(rows, matrix) * scale, kops.sum(matrix)

    scaled_sum.runs = 0
    return scaled_sum


def _call(function, matrix, rows, scale=2.0):
    return shared.call(
        function,
        (tensor(matrix), tensor(rows)),
        ((None, None), (2, None)),
        (scale,),
        ((2, matrix.shape[1]), ()),
    )


def test_call_returns_what_the_function_returns():
    rng = np.random.default_rng(0)
    matrix = rng.normal(size=(5, 3)).astype("float32")
    rows = rng.normal(size=(2, 5)).astype("float32")
    product, total = _call(_counting(), matrix, rows)
    np.testing.assert_allclose(as_numpy(product), 2.0 * rows @ matrix, rtol=1e-6)
    np.testing.assert_allclose(float(total), matrix.sum(), rtol=1e-5)
    assert tuple(product.shape) == (2, 3)


def test_calls_of_any_size_share_one_trace_on_tensorflow():
    function = _counting()
    for rows, cols in [(5, 3), (7, 4), (9, 6)]:
        _call(function, np.ones((rows, cols), "float32"), np.ones((2, rows), "float32"))
    # Eager JAX and PyTorch run the function at each call; TensorFlow traced
    # it once for all three sizes.
    assert function.runs == (1 if backend.NAME == "tensorflow" else 3)
    _call(function, np.ones((5, 3), "float32"), np.ones((2, 5), "float32"), 3.0)
    assert function.runs == (2 if backend.NAME == "tensorflow" else 4)


def test_a_shape_for_every_tensor():
    if backend.NAME != "tensorflow":
        pytest.skip("the shapes are used on TensorFlow only")
    with pytest.raises(ValueError):
        shared.call(_counting(), (tensor(np.ones((2, 2))),), (), (1.0,))


def test_compiled_track_keeps_its_static_shapes():
    shapes = []

    def step(matrix, state):
        estimate = ops.track(matrix, state, 1, 3e-3, 6)
        shapes.append([tuple(field.shape) for field in estimate])
        return estimate.sigma

    matrix = np.random.default_rng(1).normal(size=(40, 12)).astype("float32")
    sigma = backend.compiled(step)(tensor(matrix), ops.initial_state(12, 2))
    assert shapes[0] == [(), (40,), (12,), (2, 12), (), ()]
    top = np.linalg.svd(matrix.astype(np.float64), compute_uv=False)[0]
    np.testing.assert_allclose(float(sigma), top, rtol=1e-3)


@pytest.mark.parametrize("shape", [(300, 40), (40, 300)])
def test_one_compiled_step_tracks_kernels_of_two_sizes(shape):
    # Two kernels of one kind share the tracker's graph, and each gets its
    # own sigma, from an empty state (the exact start) and from a stale one
    # (the loop).
    rng = np.random.default_rng(2)
    small = rng.normal(size=(shape[0] // 2, shape[1])).astype("float32")
    large = rng.normal(size=shape).astype("float32")

    def step(first, second, stale):
        empty = kops.zeros((2, shape[1]))
        return (
            ops.track(first, empty, 1, 1e-5, 40).sigma,
            ops.track(second, stale, 1, 1e-5, 40).sigma,
        )

    stale = ops.initial_state(shape[1], 2)
    sigmas = backend.compiled(step)(tensor(small), tensor(large), stale)
    for matrix, sigma in zip((small, large), sigmas, strict=True):
        top = np.linalg.svd(matrix.astype(np.float64), compute_uv=False)[0]
        np.testing.assert_allclose(float(sigma), top, rtol=1e-5)
