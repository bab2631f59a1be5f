import numpy as np
import pytest
import tensorflow as tf
from helpers import top_singular_value

import kerasnorm
from kerasnorm import demo
from kerasnorm.adapters import ADAPTERS
from kerasnorm.errors import KerasNormTypeError, KerasNormValueError
from kerasnorm.ops import layouts
from kerasnorm.ops import sigma as sigma_ops

# (layer class name, layer kwargs, input shape, {constraint arg: layout})
LAYERS = [
    ("Dense", {"units": 16}, (8,), {"kernel_constraint": "dense"}),
    (
        "Conv1D",
        {"filters": 8, "kernel_size": 3},
        (10, 4),
        {"kernel_constraint": "dense"},
    ),
    (
        "Conv2D",
        {"filters": 8, "kernel_size": 3},
        (6, 6, 4),
        {"kernel_constraint": "dense"},
    ),
    (
        "Conv2DTranspose",
        {"filters": 8, "kernel_size": 3, "strides": 2},
        (4, 4, 4),
        {"kernel_constraint": "transpose"},
    ),
    (
        "Conv3DTranspose",
        {"filters": 3, "kernel_size": 2},
        (3, 3, 3, 2),
        {"kernel_constraint": "transpose"},
    ),
    (
        "DepthwiseConv2D",
        {"kernel_size": 3, "depth_multiplier": 2},
        (6, 6, 4),
        {"depthwise_constraint": "depthwise"},
    ),
    (
        "SeparableConv2D",
        {"filters": 8, "kernel_size": 3, "depth_multiplier": 2},
        (6, 6, 4),
        {"depthwise_constraint": "depthwise", "pointwise_constraint": "dense"},
    ),
]


class SigmaRecorder:
    """Records sigma of chosen kernels after every optimizer step."""

    def __init__(self, adapter, kernels):
        recorder = self

        class Callback(adapter.keras.callbacks.Callback):
            def on_train_batch_end(self, batch, logs=None):
                recorder.sigmas.append(
                    [top_singular_value(np.asarray(k), layout) for k, layout in kernels]
                )

        self.sigmas = []
        self.callback = Callback()


def _kernel_of(layer, constraint_key):
    name = {
        "kernel_constraint": "kernel",
        "depthwise_constraint": "depthwise_kernel",
        "pointwise_constraint": "pointwise_kernel",
        "embeddings_constraint": "embeddings",
    }[constraint_key]
    return getattr(layer, name, None) if hasattr(layer, name) else layer.kernel


@pytest.mark.parametrize(
    "name, kwargs, shape, constraints", LAYERS, ids=[c[0] for c in LAYERS]
)
def test_sigma_is_one_after_every_fit_step(adapter, name, kwargs, shape, constraints):
    keras = adapter.keras
    layer = getattr(adapter.layers, name)(
        **kwargs,
        **{
            key: adapter.SpectralNorm(layout=layout)
            for key, layout in constraints.items()
        },
    )
    inputs = keras.Input(shape)
    model = keras.Model(inputs, layer(inputs))
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="mse")
    kernels = [(_kernel_of(layer, key), layout) for key, layout in constraints.items()]
    recorder = SigmaRecorder(adapter, kernels)
    x = np.random.normal(size=(64, *shape)).astype("float32")
    y = np.random.normal(size=(64, *model.output_shape[1:])).astype("float32")
    model.fit(x, y, batch_size=8, epochs=3, verbose=0, callbacks=[recorder.callback])
    sigmas = np.array(recorder.sigmas)
    assert sigmas.shape == (24, len(constraints))
    np.testing.assert_allclose(sigmas, 1.0, atol=1e-3)


def test_embedding_kernel(adapter):
    keras = adapter.keras
    layer = adapter.layers.Embedding(
        20, 8, embeddings_constraint=adapter.SpectralNorm()
    )
    inputs = keras.Input((5,), dtype="int32")
    model = keras.Model(inputs, layer(inputs))
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="mse")
    recorder = SigmaRecorder(adapter, [(layer.embeddings, "dense")])
    x = np.random.randint(0, 20, size=(32, 5))
    y = np.random.normal(size=(32, 5, 8)).astype("float32")
    model.fit(x, y, batch_size=8, epochs=2, verbose=0, callbacks=[recorder.callback])
    np.testing.assert_allclose(recorder.sigmas, 1.0, atol=1e-3)


def test_custom_train_step_with_gradient_tape(adapter):
    keras = adapter.keras
    layer = adapter.layers.Conv2D(6, 3, kernel_constraint=adapter.SpectralNorm())
    model = keras.Sequential([keras.Input((8, 8, 3)), layer])
    optimizer = keras.optimizers.Adam(1e-2)

    @tf.function
    def step(x):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.square(model(x, training=True) - 1.0))
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables, strict=True))

    for _ in range(10):
        step(tf.random.normal((4, 8, 8, 3)))
        np.testing.assert_allclose(
            top_singular_value(np.asarray(layer.kernel)), 1.0, atol=1e-3
        )


def test_direct_call_on_a_tensor(adapter):
    kernel = np.random.normal(size=(3, 3, 4, 5)).astype("float32")
    out = np.asarray(adapter.SpectralNorm()(tf.constant(kernel)))
    np.testing.assert_allclose(top_singular_value(out), 1.0, rtol=1e-5)
    np.testing.assert_allclose(
        out * top_singular_value(kernel), kernel, rtol=1e-4, atol=1e-6
    )


def test_direct_call_on_a_variable_keeps_state_per_variable(adapter):
    constraint = adapter.SpectralNorm()
    a = tf.Variable(np.random.normal(size=(6, 4)).astype("float32"))
    b = tf.Variable(np.random.normal(size=(9, 3)).astype("float32"))
    for variable in (a, b, a):
        variable.assign(constraint(variable))
        np.testing.assert_allclose(top_singular_value(variable.numpy()), 1.0, rtol=1e-5)
    assert len(constraint._states) == 2
    assert [tuple(state.shape) for _, state, _ in constraint._states.values()] == [
        (2, 4),
        (2, 3),
    ]


def test_zero_kernel_stays_zero(adapter):
    constraint = adapter.SpectralNorm()
    variable = tf.Variable(tf.zeros((3, 3, 2, 4)))
    out = constraint(variable)
    np.testing.assert_array_equal(np.asarray(out), 0.0)
    variable.assign(np.random.normal(size=(3, 3, 2, 4)).astype("float32"))
    np.testing.assert_allclose(
        top_singular_value(np.asarray(constraint(variable))), 1.0, rtol=1e-4
    )


@pytest.mark.parametrize("clip", [False, True])
def test_target_sigma_and_clip(adapter, clip):
    big = np.diag([4.0, 1.0]).astype("float32")
    small = np.diag([0.5, 0.1]).astype("float32")
    constraint = adapter.SpectralNorm(sigma=2.0, clip=clip)
    np.testing.assert_allclose(
        np.asarray(constraint(tf.constant(big))), big / 2.0, rtol=1e-6
    )
    expected = small if clip else small * 4.0
    np.testing.assert_allclose(
        np.asarray(constraint(tf.constant(small))), expected, rtol=1e-6
    )


def test_clip_bounds_sigma_within_the_tracking_error_as_the_kernel_grows(adapter):
    # The estimate is a Ritz value, never above the true sigma: clipping on
    # it holds sigma at the target only up to the tracking error.
    constraint = adapter.SpectralNorm(clip=True)
    rng = np.random.default_rng(0)
    variable = tf.Variable((0.01 * rng.normal(size=(3, 3, 32, 48))).astype("float32"))
    sigmas = []
    for _ in range(40):
        grown = np.asarray(variable) * 1.3 + 0.01 * rng.normal(size=variable.shape)
        variable.assign(grown.astype("float32"))
        variable.assign(constraint(variable))
        sigmas.append(top_singular_value(np.asarray(variable)))
    assert min(sigmas) < 0.9  # left alone while below the target
    assert max(sigmas) <= 1.0 + 1e-3
    assert sigmas[-1] == pytest.approx(1.0, abs=1e-3)


def test_half_precision_kernel(adapter):
    kernel = tf.constant(np.random.normal(size=(16, 8)), dtype=tf.float16)
    out = adapter.SpectralNorm()(kernel)
    assert out.dtype == tf.float16
    np.testing.assert_allclose(
        top_singular_value(np.asarray(out, "float32")), 1.0, atol=2e-3
    )


def test_config_round_trip(adapter):
    constraint = adapter.SpectralNorm(
        layout="transpose", n_iter=3, tol=1e-4, max_iter=9, sigma=0.5, clip=True
    )
    config = constraint.get_config()
    clone = adapter.SpectralNorm.from_config(config)
    assert (
        clone.get_config()
        == config
        == {
            "layout": "transpose",
            "n_iter": 3,
            "tol": 1e-4,
            "max_iter": 9,
            "block_size": 2,
            "eps": 1e-12,
            "sigma": 0.5,
            "clip": True,
            "geometry": None,
        }
    )
    restored = adapter.keras.constraints.deserialize(
        adapter.keras.constraints.serialize(constraint)
    )
    assert type(restored) is adapter.SpectralNorm
    assert restored.get_config() == config


def test_auto_tolerance_by_what_sigma_is_of(adapter):
    geometry = {"input_shape": (8, 8, 3), "strides": 1, "padding": "same"}
    matrix, operator = adapter.SpectralNorm(), adapter.SpectralNorm(geometry=geometry)
    assert (matrix.tracking.tol, matrix.tracking.max_iter) == (5e-3, 6)
    assert (operator.tracking.tol, operator.tracking.max_iter) == (1e-4, 24)
    assert operator.get_config()["tol"] == operator.get_config()["max_iter"] == "auto"
    clone = adapter.SpectralNorm.from_config(operator.get_config())
    assert (clone.tracking.tol, clone.tracking.max_iter) == (1e-4, 24)
    given = adapter.SpectralNorm(geometry=geometry, tol=1e-3, n_iter=30)
    assert (given.tracking.tol, given.tracking.max_iter) == (1e-3, 30)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"layout": "nhwc"}, KerasNormValueError, "layout"),
        ({"tol": "tight"}, KerasNormTypeError, '"auto"'),
        ({"max_iter": "many"}, KerasNormTypeError, '"auto"'),
        ({"n_iter": 0}, KerasNormValueError, "n_iter"),
        ({"n_iter": 1.5}, KerasNormTypeError, "n_iter"),
        ({"tol": -1.0}, KerasNormValueError, "tol"),
        ({"sigma": 0}, KerasNormValueError, "sigma"),
        ({"max_iter": 0}, KerasNormValueError, "max_iter"),
        ({"n_iter": 4, "max_iter": 2}, KerasNormValueError, "at least `n_iter`"),
        ({"block_size": 0}, KerasNormValueError, "block_size"),
    ],
)
def test_bad_arguments(adapter, kwargs, error, match):
    with pytest.raises(error, match=match):
        adapter.SpectralNorm(**kwargs)


def test_a_kernel_replaced_behind_its_back_is_followed_past_max_iter(adapter):
    # After load_weights or a hand-made assign, the kept vectors belong to
    # another kernel: `max_iter` iterations cannot follow, so the step
    # iterates on (up to RESCUE_ITERATIONS more) instead of returning a
    # half-converged sigma.
    constraint = adapter.SpectralNorm(max_iter=2)
    rng = np.random.default_rng(0)
    variable = tf.Variable(rng.normal(size=(3, 3, 64, 96)).astype("float32"))
    variable.assign(constraint(variable))
    state = tf.convert_to_tensor(constraint.build(variable))
    assert np.asarray(state).any(), "solved for the first kernel, not empty"
    replacement = rng.normal(size=(3, 3, 64, 96)).astype("float32")
    variable.assign(replacement)
    matrix = layouts.kernel_matrix(tf.constant(replacement))
    # The budget alone stops short of the tolerance on this kernel...
    alone = sigma_ops.track(matrix, state, n_iter=1, tol=3e-3, max_iter=2)
    assert not bool(alone.converged)
    assert top_singular_value(replacement / float(alone.sigma)) > 1.0 + 1e-3
    # ... the constraint's step goes on, restarting, until it converges.
    projected = np.asarray(constraint(variable))
    assert top_singular_value(projected) == pytest.approx(1.0, abs=1e-3)


@pytest.mark.parametrize(
    "flavor, tol, within",
    [("keras3", "auto", 1e-3), ("tf_keras", "auto", 1e-3), ("keras3", 1e-2, None)],
)
def test_the_default_tol_holds_sigma_where_a_direction_rises(flavor, tol, within):
    """The demo's GAN: around step 60 a direction outside the tracked block
    rises past conv2's top one. At tol=1e-2 the block's own pair passes
    the residual test and sigma is 6.9e-3 low; the default catches it."""
    keras = next(adapter.keras for adapter in ADAPTERS if adapter.name == flavor)
    keras.utils.set_random_seed(0)
    # Built before either rewrite, as the demo builds them: a rewrite's
    # clones draw from the random generator.
    generator, discriminator = (
        demo.build_generator(keras),
        demo.build_discriminator(keras),
    )
    generator = kerasnorm.apply_normalization(generator, "progan")
    discriminator = kerasnorm.apply_normalization(discriminator, "sngan", tol=tol)
    worst = 0.0
    for _ in demo.train(generator, discriminator, steps=64, seed=0):
        conv2 = demo.kernel_sigmas(discriminator)["conv2"]
        worst = max(worst, abs(conv2 - 1.0))
    if within is None:
        assert worst > 1e-3  # the case is still one a loose test misses
    else:
        assert worst < within
