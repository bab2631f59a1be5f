import copy

import numpy as np
import pytest
import tensorflow as tf
from helpers import top_singular_value

from kerasnorm.errors import KerasNormTypeError, KerasNormValueError


def _kernel_with_singular_values(rows, values):
    """A random (rows, len(values)) matrix with the given singular values."""
    left, _ = np.linalg.qr(np.random.normal(size=(rows, len(values))))
    right, _ = np.linalg.qr(np.random.normal(size=(len(values), len(values))))
    return (left * np.asarray(values)) @ right.T


def _dense_wrapper(adapter, units=5, inputs=7, **kwargs):
    wrapper = adapter.SpectralNormalization(
        adapter.layers.Dense(units, use_bias=False), **kwargs
    )
    wrapper.build((None, inputs))
    return wrapper


def test_output_uses_w_over_sigma_and_leaves_the_raw_kernel(adapter):
    wrapper = _dense_wrapper(adapter)
    kernel = _kernel_with_singular_values(7, [3.0, 2.0, 1.5, 1.0, 0.5]).astype(
        "float32"
    )
    wrapper.layer.kernel.assign(kernel)  # after the warm start: v must catch up
    x = np.random.normal(size=(4, 7)).astype("float32")
    for _ in range(8):
        y = np.asarray(wrapper(x, training=True))
    np.testing.assert_allclose(
        y, x @ (kernel / top_singular_value(kernel)), rtol=1e-4, atol=1e-5
    )
    np.testing.assert_array_equal(wrapper.layer.kernel.numpy(), kernel)


def test_inference_is_deterministic_and_changes_no_variable(adapter):
    wrapper = _dense_wrapper(adapter)
    wrapper.layer.kernel.assign(np.random.normal(size=(7, 5)).astype("float32"))
    x = np.random.normal(size=(4, 7)).astype("float32")
    before = [w.numpy().copy() for w in wrapper.weights]
    first = np.asarray(wrapper(x, training=False))
    second = np.asarray(wrapper(x))
    np.testing.assert_array_equal(first, second)
    for old, new in zip(before, wrapper.weights, strict=True):
        np.testing.assert_array_equal(old, new.numpy())
    wrapper(x, training=True)
    assert any(
        not np.array_equal(old, new.numpy())
        for old, new in zip(before, wrapper.weights, strict=True)
    ), "a training call updates the tracked vector"


def test_gradient_matches_finite_differences(adapter):
    wrapper = _dense_wrapper(adapter, units=4, inputs=6)
    kernel = _kernel_with_singular_values(6, [2.5, 1.5, 1.0, 0.4])
    wrapper.layer.kernel.assign(kernel.astype("float32"))
    x = np.random.normal(size=(3, 6))
    weights = np.random.normal(size=(3, 4))
    for _ in range(20):
        wrapper(x.astype("float32"), training=True)

    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(
            weights.astype("float32") * wrapper(x.astype("float32"), training=True)
        )
    grad = tape.gradient(loss, wrapper.layer.kernel).numpy()

    def f(w):
        return np.sum(weights * (x @ (w / top_singular_value(w))))

    step = 1e-6
    numeric = np.zeros_like(kernel)
    for index in np.ndindex(*kernel.shape):
        delta = np.zeros_like(kernel)
        delta[index] = step
        numeric[index] = (f(kernel + delta) - f(kernel - delta)) / (2 * step)
    np.testing.assert_allclose(grad, numeric, rtol=1e-3, atol=1e-4)
    # The sigma term matters: without it the gradient would be x.T @ weights / sigma.
    plain = x.T @ weights / top_singular_value(kernel)
    assert np.max(np.abs(plain - numeric)) > 1e-2


# tests/test_kernels.py covers every kind of kernel with a lighter model:
# the 1-D and depthwise cases here run under `-m slow`.
_SLOW = pytest.mark.slow
LAYERS = [
    pytest.param("Conv2D", {"filters": 6, "kernel_size": 3}, (8, 8, 4), id="Conv2D"),
    pytest.param(
        "Conv2DTranspose",
        {"filters": 6, "kernel_size": 3, "strides": 2},
        (5, 5, 4),
        id="Conv2DTranspose",
    ),
    pytest.param(
        "Conv1D", {"filters": 6, "kernel_size": 3}, (9, 4), id="Conv1D", marks=_SLOW
    ),
    pytest.param(
        "DepthwiseConv2D",
        {"kernel_size": 3, "depth_multiplier": 2},
        (8, 8, 4),
        id="DepthwiseConv2D",
        marks=_SLOW,
    ),
    pytest.param(
        "SeparableConv2D",
        {"filters": 6, "kernel_size": 3},
        (8, 8, 4),
        id="SeparableConv2D",
    ),
    pytest.param("Dense", {"units": 6}, (5,), id="Dense"),
]


@pytest.mark.parametrize("name, kwargs, shape", LAYERS)
def test_functional_and_sequential_models_train(adapter, name, kwargs, shape):
    keras = adapter.keras
    inputs = keras.Input(shape)
    wrapper = adapter.SpectralNormalization(getattr(adapter.layers, name)(**kwargs))
    functional = keras.Model(inputs, wrapper(inputs))
    sequential = keras.Sequential(
        [
            keras.Input(shape),
            adapter.SpectralNormalization(getattr(adapter.layers, name)(**kwargs)),
        ]
    )
    x = np.random.normal(size=(16, *shape)).astype("float32")
    for model in (functional, sequential):
        y = np.random.normal(size=(16, *model.output_shape[1:])).astype("float32")
        model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="mse")
        history = model.fit(x, y, epochs=3, batch_size=8, verbose=0)
        assert np.all(np.isfinite(history.history["loss"]))
        inner = model.layers[-1]
        folded = inner.fold()
        np.testing.assert_allclose(
            np.asarray(folded(x)),
            np.asarray(inner(x, training=False)),
            rtol=1e-4,
            atol=1e-5,
        )
        for kernel in inner.kernels():
            folded_kernel = next(
                w for w in folded.weights if w.shape == kernel.variable.shape
            )
            np.testing.assert_allclose(
                top_singular_value(np.asarray(folded_kernel), kernel.layout),
                1.0,
                atol=1e-3,
            )


def test_embedding(adapter):
    wrapper = adapter.SpectralNormalization(adapter.layers.Embedding(12, 4))
    ids = np.array([[0, 3, 11]])
    out = np.asarray(wrapper(ids, training=True))
    table = wrapper.layer.embeddings.numpy()
    np.testing.assert_allclose(
        out[0], table[[0, 3, 11]] / top_singular_value(table), rtol=1e-5
    )


def test_fold_returns_a_plain_layer_with_the_inner_name(adapter):
    wrapper = _dense_wrapper(adapter)
    folded = wrapper.fold()
    assert type(folded) is adapter.layers.Dense
    assert folded.name == wrapper.layer.name
    np.testing.assert_allclose(
        top_singular_value(folded.kernel.numpy()), 1.0, rtol=1e-5
    )


def test_fold_before_build_is_an_error(adapter):
    wrapper = adapter.SpectralNormalization(adapter.layers.Dense(3))
    with pytest.raises(KerasNormValueError, match="not built"):
        wrapper.fold()


def test_layer_without_kernel_is_rejected_at_its_first_call(adapter):
    # Whether a layer has kernels is known once it is built.
    wrapper = adapter.SpectralNormalization(adapter.layers.ReLU())
    with pytest.raises(KerasNormValueError, match="no kernel"):
        wrapper(np.ones((1, 3), "float32"))


def test_bad_options(adapter):
    with pytest.raises(KerasNormValueError, match="n_iter"):
        adapter.SpectralNormalization(adapter.layers.Dense(3), n_iter=0)
    with pytest.raises(KerasNormTypeError, match="tol"):
        adapter.SpectralNormalization(adapter.layers.Dense(3), tol="tight")


def test_mixed_precision(adapter):
    keras = adapter.keras
    keras.mixed_precision.set_global_policy("mixed_float16")
    inputs = keras.Input((6, 6, 3))
    wrapper = adapter.SpectralNormalization(adapter.layers.Conv2D(4, 3))
    outputs = wrapper(inputs)
    model = keras.Model(inputs, outputs)
    assert wrapper.layer.kernel.dtype == "float32"
    assert all(w.dtype == "float32" for w in wrapper.non_trainable_weights)
    x = np.random.normal(size=(4, 6, 6, 3)).astype("float32")
    y = np.asarray(model(x, training=True))
    assert y.dtype == np.float16 and np.all(np.isfinite(y))


def test_config_round_trip(adapter):
    wrapper = adapter.SpectralNormalization(
        adapter.layers.Conv2D(3, 2, name="inner"), n_iter=2, tol=1e-3, name="wrapped"
    )
    config = wrapper.get_config()
    # Keras 3's Wrapper.from_config pops "layer" from the dict it is given.
    clone = adapter.SpectralNormalization.from_config(copy.deepcopy(config))
    assert (clone.tracking.n_iter, clone.tracking.tol) == (2, 1e-3)
    assert (clone.name, clone.layer.name) == ("wrapped", "inner")
    assert clone.get_config() == config


def test_auto_tolerance_for_matrices_and_operators(adapter):
    wrapper = adapter.SpectralNormalization(
        adapter.layers.Conv2D(3, 2), operator_norm=True
    )
    assert (wrapper.tracking.tol, wrapper.tracking.max_iter) == (3e-3, 6)
    assert (wrapper.operator_tracking.tol, wrapper.operator_tracking.max_iter) == (
        1e-4,
        24,
    )
    assert wrapper.get_config()["tol"] == "auto"


def test_auto_block_size_for_matrices_and_operators(adapter):
    dense = adapter.SpectralNormalization(adapter.layers.Dense(12))
    dense(np.ones((2, 10), "float32"), training=True)
    conv = adapter.SpectralNormalization(
        adapter.layers.Conv2D(3, 2), operator_norm=True
    )
    conv(np.ones((1, 6, 6, 2), "float32"), training=True)
    assert dense.tracking.block_size == 8 and conv.operator_tracking.block_size == 4
    # The state holds one row per tracked vector.
    assert [w.shape[0] for w in dense.non_trainable_weights] == [8]
    assert [w.shape[0] for w in conv.non_trainable_weights] == [4]
    assert dense.get_config()["block_size"] == "auto"
    explicit = adapter.SpectralNormalization(adapter.layers.Dense(12), block_size=3)
    assert explicit.operator_tracking.block_size == 3
