"""Convolutions as linear operators, proven against the unrolled operator.

Each case builds the Keras layer, zeroes its bias, and applies it to every
basis vector of one input sample: the columns of the operator's matrix,
computed by Keras itself. kerasnorm's `ConvOperator` must reproduce that
matrix, its adjoint must be its transpose, and the tracker's sigma on it
must be the matrix's largest singular value. Backend-neutral (see
tests/backend.py).
"""

import backend
import keras
import numpy as np
import pytest
from backend import numpy as as_numpy
from backend import tensor

from kerasnorm.errors import KerasNormTypeError, KerasNormValueError
from kerasnorm.ops import sigma
from kerasnorm.ops.operators import ConvGeometry, ConvOperator, operator_shape

L = keras.layers

# (layer factory, one sample's input shape, kernel attribute, layout)
CASES = {
    "conv2d same stride 2": (
        lambda: L.Conv2D(4, 3, strides=2, padding="same"),
        (7, 7, 2),
        "kernel",
        "dense",
    ),
    "conv2d same even kernel": (
        lambda: L.Conv2D(3, 4, strides=2, padding="same"),
        (8, 8, 2),
        "kernel",
        "dense",
    ),
    "conv2d valid dilated": (
        lambda: L.Conv2D(3, 3, dilation_rate=2),
        (8, 8, 2),
        "kernel",
        "dense",
    ),
    "conv2d channels_first": (
        lambda: L.Conv2D(4, 3, strides=2, padding="same", data_format="channels_first"),
        (2, 7, 7),
        "kernel",
        "dense",
    ),
    "conv2d groups": (
        lambda: L.Conv2D(6, 3, padding="same", groups=2),
        (6, 6, 4),
        "kernel",
        "dense",
    ),
    "conv1d causal dilated": (
        lambda: L.Conv1D(3, 3, padding="causal", dilation_rate=2),
        (9, 2),
        "kernel",
        "dense",
    ),
    "conv1d valid stride 3": (
        lambda: L.Conv1D(3, 4, strides=3),
        (14, 2),
        "kernel",
        "dense",
    ),
    "conv3d same": (
        lambda: L.Conv3D(2, 3, strides=(1, 2, 1), padding="same"),
        (4, 5, 4, 2),
        "kernel",
        "dense",
    ),
    "conv2d transpose same": (
        lambda: L.Conv2DTranspose(4, 3, strides=2, padding="same"),
        (4, 4, 2),
        "kernel",
        "transpose",
    ),
    "conv2d transpose valid output_padding": (
        lambda: L.Conv2DTranspose(3, 4, strides=2, output_padding=1),
        (3, 3, 2),
        "kernel",
        "transpose",
    ),
    "conv1d transpose": (
        lambda: L.Conv1DTranspose(2, 3, strides=2, padding="same"),
        (5, 3),
        "kernel",
        "transpose",
    ),
    "conv3d transpose": (
        lambda: L.Conv3DTranspose(2, 2, strides=2),
        (2, 3, 2, 2),
        "kernel",
        "transpose",
    ),
    "depthwise2d same stride 2": (
        lambda: L.DepthwiseConv2D(3, strides=2, padding="same", depth_multiplier=2),
        (6, 6, 2),
        "kernel",
        "depthwise",
    ),
    "depthwise1d valid": (
        lambda: L.DepthwiseConv1D(3, depth_multiplier=2),
        (9, 2),
        "kernel",
        "depthwise",
    ),
}


def _case(name, seed=0):
    make, shape, attribute, layout = CASES[name]
    layer = make()
    layer.build((None, *shape))
    rng = np.random.default_rng(seed)
    kernel = getattr(layer, attribute)
    kernel.assign(rng.normal(size=kernel.shape).astype("float32"))
    layer.bias.assign(np.zeros(layer.bias.shape, "float32"))
    geometry = ConvGeometry.of_layer(layer, shape)
    return layer, kernel, layout, geometry


def _unrolled(layer, shape) -> np.ndarray:
    """The layer's matrix, computed by the layer: its outputs on every basis
    vector of one input sample, flattened, as rows."""
    size = int(np.prod(shape))
    basis = np.eye(size, dtype="float32").reshape((size, *shape))
    return as_numpy(layer(tensor(basis))).reshape(size, -1).astype("float64")


@pytest.mark.parametrize("name", sorted(CASES))
def test_the_operator_is_the_layer_and_its_adjoint_the_transpose(name):
    layer, kernel, layout, geometry = _case(name)
    matrix = _unrolled(layer, geometry.input_shape)
    operator = ConvOperator(kernel.value, layout, geometry)
    assert operator.shape == matrix.shape
    assert operator_shape(tuple(kernel.shape), layout, geometry) == matrix.shape
    rng = np.random.default_rng(1)
    x = rng.normal(size=(2, matrix.shape[0])).astype("float32")
    y = rng.normal(size=(3, matrix.shape[1])).astype("float32")
    scale = np.abs(matrix).max()
    np.testing.assert_allclose(
        as_numpy(operator.forward(tensor(x))), x @ matrix, atol=1e-5 * scale * 10
    )
    np.testing.assert_allclose(
        as_numpy(operator.adjoint(tensor(y))), y @ matrix.T, atol=1e-5 * scale * 10
    )


@pytest.mark.parametrize("name", sorted(CASES))
def test_the_first_solve_finds_the_operator_norm(name):
    layer, kernel, layout, geometry = _case(name)
    matrix = _unrolled(layer, geometry.input_shape)
    exact = np.linalg.svd(matrix, compute_uv=False)[0]
    estimate = sigma.solve(ConvOperator(kernel.value, layout, geometry), 2)
    assert abs(float(as_numpy(estimate.sigma)) / exact - 1) <= 1e-4
    u, v = as_numpy(estimate.u), as_numpy(estimate.v)
    # The singular pair too: u @ M @ v is sigma, u and v of unit norm.
    assert u @ matrix @ v == pytest.approx(exact, rel=1e-4)
    assert np.linalg.norm(v) == pytest.approx(1.0, abs=1e-5)


def test_the_operator_norm_is_not_the_reshaped_kernels():
    # Why the option exists: on a strided convolution the reshaped kernel's
    # largest singular value is below the operator norm.
    layer, kernel, _, geometry = _case("conv2d same even kernel")
    matrix = _unrolled(layer, geometry.input_shape)
    reshaped = as_numpy(kernel.value).reshape(-1, kernel.shape[-1])
    ratio = (
        np.linalg.svd(matrix, compute_uv=False)[0]
        / np.linalg.svd(reshaped, compute_uv=False)[0]
    )
    assert ratio > 1.1


def test_tracking_follows_a_changing_kernel():
    layer, kernel, layout, geometry = _case("conv2d same stride 2")
    state = sigma.solve(ConvOperator(kernel.value, layout, geometry), 2).state
    rng = np.random.default_rng(3)
    for _ in range(5):
        kernel.assign(
            as_numpy(kernel.value)
            + 0.05 * rng.normal(size=kernel.shape).astype("float32")
        )
        estimate = sigma.track(
            ConvOperator(kernel.value, layout, geometry), state, tol=1e-3, max_iter=8
        )
        state = estimate.state
        exact = np.linalg.svd(_unrolled(layer, geometry.input_shape), compute_uv=False)[
            0
        ]
        assert abs(float(as_numpy(estimate.sigma)) / exact - 1) <= 1e-4


@pytest.mark.parametrize("name", ["conv2d same stride 2", "depthwise1d valid"])
def test_the_kernel_gradient_is_that_of_u_m_v(name):
    _, kernel, layout, geometry = _case(name)
    operator = ConvOperator(kernel.value, layout, geometry)
    rng = np.random.default_rng(4)
    u = rng.normal(size=operator.shape[0]).astype("float32")
    v = rng.normal(size=operator.shape[1]).astype("float32")

    def u_m_v(value):
        image = ConvOperator(value, layout, geometry).forward(tensor(u[None]))
        return keras.ops.sum(image[0] * tensor(v))

    expected = backend.gradient(u_m_v, as_numpy(kernel.value))
    got = as_numpy(operator.kernel_gradient(tensor(u), tensor(v)))
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)


def test_geometry_config_round_trips_and_bad_values_are_refused():
    geometry = ConvGeometry((8, 8, 3), strides=2, padding="same", dilation_rate=1)
    assert geometry.strides == (2, 2) and geometry.rank == 2
    assert ConvGeometry.from_config(geometry.get_config()) == geometry
    with pytest.raises(KerasNormValueError, match="input shape"):
        ConvGeometry((None, 8, 3))
    with pytest.raises(KerasNormValueError, match="padding"):
        ConvGeometry((8, 8, 3), padding="full")
    with pytest.raises(KerasNormValueError, match="Causal"):
        ConvGeometry((8, 8, 3), padding="causal")
    with pytest.raises(KerasNormValueError, match="strides"):
        ConvGeometry((8, 8, 3), strides=(1, 2, 3))
    with pytest.raises(KerasNormValueError, match="layout"):
        ConvOperator(np.ones((3, 3), "float32"), "abc,cd->abd", geometry)
    with pytest.raises((KerasNormTypeError, KerasNormValueError)):
        ConvGeometry((8, 8, 3), data_format="nhwc")
