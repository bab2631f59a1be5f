"""`operator_norm=True`: every convolution held at its operator norm, both Kerases.

The norm is checked on the operator itself (the convolution applied to
every basis vector of one input sample; tests/test_ops_operators.py proves
that `ConvOperator` is the layer's own map), never on the reshaped kernel.
"""

import numpy as np
import pytest
from helpers import adapter_named, some_by_default

import kerasnorm
from kerasnorm.errors import KerasNormTypeError, KerasNormValueError
from kerasnorm.layers.kernels import find_kernels
from kerasnorm.ops.operators import ConvGeometry, ConvOperator

MODES = ("constraint", "reparam")

# Training with the operator norm takes 10-20 s a case: by default each
# Keras and each mode once, every combination under -m slow.
TRAINED_CASES = some_by_default(
    {("keras3", "reparam"), ("tf_keras", "constraint")}, ["keras3", "tf_keras"], MODES
)

# Each convolution's kernels: path -> (layout, the input shape it sees).
KERNELS = {
    "conv": {"kernel": ("dense", (8, 8, 3))},
    "separable": {
        "depthwise_kernel": ("depthwise", (4, 4, 6)),
        "pointwise_kernel": ("dense", (4, 4, 6)),
    },
    "depthwise": {"depthwise_kernel": ("depthwise", (4, 4, 6))},
    "transpose": {"kernel": ("transpose", (2, 2, 12))},
}


def operator_norm(kernel, layout: str, geometry: ConvGeometry) -> float:
    operator = ConvOperator(np.asarray(kernel, "float32"), layout, geometry)
    size = operator.shape[0]
    matrix = np.asarray(operator.forward(np.eye(size, dtype="float32")), "float64")
    return float(np.linalg.svd(matrix, compute_uv=False)[0])


def _discriminator(keras):
    """Every convolution kind kerasnorm computes an operator norm for."""
    layers = keras.layers
    inputs = keras.Input((8, 8, 3))
    x = layers.Conv2D(6, 4, strides=2, padding="same", name="conv")(inputs)
    x = layers.LeakyReLU(0.2)(x)
    x = layers.SeparableConv2D(6, 3, padding="same", name="separable")(x)
    x = layers.DepthwiseConv2D(3, depth_multiplier=2, name="depthwise")(x)
    x = layers.Conv2DTranspose(4, 3, strides=2, padding="same", name="transpose")(x)
    x = layers.Flatten()(x)
    outputs = layers.Dense(1, name="dense")(x)
    return keras.Model(inputs, outputs)


def _used_kernels(layer, adapter, mode) -> dict:
    """The kernels the layer computes with, by path."""
    if mode == "reparam":
        return {path: np.asarray(k) for path, k in layer.effective_kernels().items()}
    return {k.path: k.variable.numpy() for k in find_kernels(layer, adapter)}


def _geometry(model, name, path):
    layout, shape = KERNELS[name][path]
    layer = model.get_layer(name)
    inner = getattr(layer, "layer", layer)
    config = inner.get_config()
    if path == "pointwise_kernel":
        return layout, ConvGeometry(shape)
    return layout, ConvGeometry(
        shape,
        strides=tuple(config["strides"]),
        padding=config["padding"],
        dilation_rate=tuple(config["dilation_rate"]),
        output_padding=config.get("output_padding"),
    )


def _train(model, keras, steps=5):
    model.compile(keras.optimizers.Adam(1e-3), "mse")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(16, 8, 8, 3)).astype("float32")
    y = rng.normal(size=(16, 1)).astype("float32")
    for _ in range(steps):
        model.train_on_batch(x, y)


@pytest.mark.parametrize("flavour, mode", TRAINED_CASES)
def test_every_convolution_is_held_at_operator_norm_one(flavour, mode):
    adapter = adapter_named(flavour)
    keras = adapter.keras
    model = _discriminator(keras)
    normalized = kerasnorm.apply_normalization(
        model, "sngan", role="discriminator", mode=mode, operator_norm=True
    )
    _train(normalized, keras)
    if mode == "reparam":
        # The wrapper tracks sigma at a training call, on the kernels as
        # they are then: one more call sees the last update.
        normalized(np.zeros((1, 8, 8, 3), "float32"), training=True)
    for name, kernels in KERNELS.items():
        layer = normalized.get_layer(name)
        used = _used_kernels(layer, adapter, mode)
        for path in kernels:
            layout, geometry = _geometry(normalized, name, path)
            norm = operator_norm(used[path], layout, geometry)
            assert norm == pytest.approx(1.0, abs=1e-3), (name, path, norm)
    # Dense is its own operator: its matrix norm, as without the option.
    dense = _used_kernels(normalized.get_layer("dense"), adapter, mode)["kernel"]
    assert np.linalg.svd(dense, compute_uv=False)[0] == pytest.approx(1.0, abs=1e-3)
    # The user's model is untouched.
    assert model.get_layer("conv").kernel.constraint is None


def test_the_reshaped_norm_leaves_the_operator_above_one(adapter):
    # Why the option exists, on the same model: SNGAN's normalization of
    # the reshaped kernel leaves the strided convolution's operator norm
    # well above 1.
    keras = adapter.keras
    normalized = kerasnorm.apply_normalization(
        _discriminator(keras), "sngan", role="discriminator"
    )
    _train(normalized, keras, steps=1)
    layout, geometry = _geometry(normalized, "conv", "kernel")
    kernel = normalized.get_layer("conv").kernel.numpy()
    assert operator_norm(kernel, layout, geometry) > 1.1


def test_the_plan_says_which_norm_and_on_which_input(adapter):
    plan = kerasnorm.plan(
        _discriminator(adapter.keras), "sngan", role="discriminator", operator_norm=True
    )
    details = {edit.node: edit.detail for edit in plan.changes}
    assert "operator norm on input (8, 8, 3)" in details["conv"]
    assert "operator norm on input (2, 2, 12)" in details["transpose"]
    assert "operator norm" not in details["dense"]


def test_sigma_and_clip_apply_to_the_operator_norm(adapter):
    keras = adapter.keras
    normalized = kerasnorm.apply_normalization(
        _discriminator(keras),
        "sngan",
        role="discriminator",
        operator_norm=True,
        sigma=2.0,
    )
    _train(normalized, keras, steps=2)
    layout, geometry = _geometry(normalized, "conv", "kernel")
    kernel = normalized.get_layer("conv").kernel.numpy()
    assert operator_norm(kernel, layout, geometry) == pytest.approx(2.0, abs=2e-3)


@pytest.mark.parametrize("flavour, mode", TRAINED_CASES)
def test_saved_models_keep_the_option_and_the_outputs(flavour, mode, tmp_path):
    adapter = adapter_named(flavour)
    keras = adapter.keras
    normalized = kerasnorm.apply_normalization(
        _discriminator(keras),
        "sngan",
        role="discriminator",
        mode=mode,
        operator_norm=True,
    )
    _train(normalized, keras, steps=2)
    path = tmp_path / "d.keras"
    normalized.save(path)
    loaded = keras.models.load_model(path)
    x = np.random.default_rng(1).normal(size=(4, 8, 8, 3)).astype("float32")
    np.testing.assert_allclose(
        np.asarray(loaded(x, training=False)),
        np.asarray(normalized(x, training=False)),
        rtol=1e-5,
        atol=1e-6,
    )
    conv = loaded.get_layer("conv")
    if mode == "reparam":
        assert conv.get_config()["operator_norm"] is True
    else:
        assert conv.kernel.constraint.geometry == ConvGeometry(
            (8, 8, 3), strides=2, padding="same"
        )


def _planned_skips(model, **options):
    plan = kerasnorm.plan(model, "sngan", role="discriminator", **options)
    return {edit.node: edit.skipped for edit in plan.edits if edit.skipped}


def test_an_unknown_input_size_is_listed_and_strict_refuses_it(adapter):
    keras = adapter.keras
    inputs = keras.Input((None, None, 3))
    x = keras.layers.Conv2D(4, 3, name="conv")(inputs)
    model = keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(x))
    skips = _planned_skips(model, operator_norm=True)
    assert "unknown size" in skips["conv"]
    with pytest.raises(KerasNormValueError, match="unknown size"):
        kerasnorm.apply_normalization(
            model, "sngan", role="discriminator", operator_norm=True, strict=True
        )
    # Without the option the same model is normalized as before.
    assert not _planned_skips(model)


def test_a_convolution_called_on_two_shapes_is_listed(adapter):
    keras = adapter.keras
    conv = keras.layers.Conv2D(3, 3, padding="same", name="shared")
    small, large = keras.Input((4, 4, 3)), keras.Input((8, 8, 3))
    pooled = [keras.layers.GlobalAveragePooling2D()(conv(x)) for x in (small, large)]
    model = keras.Model([small, large], keras.layers.Add()(pooled))
    skips = _planned_skips(model, operator_norm=True)
    assert "inputs of shapes" in skips["shared"]


def test_nested_and_recurrent_convolutions_are_listed(adapter):
    keras = adapter.keras
    inputs = keras.Input((3, 6, 6, 2))
    x = keras.layers.TimeDistributed(keras.layers.Conv2D(2, 3), name="frames")(inputs)
    x = keras.layers.ConvLSTM2D(2, 3, name="recurrent")(x)
    model = keras.Model(inputs, keras.layers.Flatten()(x))
    skips = _planned_skips(model, operator_norm=True, mode="reparam")
    assert "inside the layer" in skips["frames"]
    assert "no operator norm" in skips["recurrent"]


def test_bad_options_are_refused(adapter):
    keras = adapter.keras
    with pytest.raises(KerasNormTypeError, match="operator_norm"):
        kerasnorm.apply_normalization(
            _discriminator(keras), "sngan", role="discriminator", operator_norm="yes"
        )
    with pytest.raises(KerasNormValueError, match="layout"):
        adapter.SpectralNorm(layout={"a": "dense"}, geometry=ConvGeometry((4, 4, 1)))
    with pytest.raises(KerasNormTypeError, match="geometry"):
        adapter.SpectralNorm(geometry=(4, 4, 1))


def test_a_constraint_given_by_hand_holds_the_operator_norm(adapter):
    keras = adapter.keras
    geometry = ConvGeometry((8, 8, 3), strides=2, padding="same")
    constraint = adapter.SpectralNorm(geometry=geometry)
    inputs = keras.Input((8, 8, 3))
    conv = keras.layers.Conv2D(
        5, 3, strides=2, padding="same", kernel_constraint=constraint
    )
    model = keras.Model(inputs, keras.layers.Flatten()(conv(inputs)))
    model.compile(keras.optimizers.Adam(1e-2), "mse")
    rng = np.random.default_rng(0)
    model.train_on_batch(
        rng.normal(size=(8, 8, 8, 3)).astype("float32"),
        rng.normal(size=(8, 80)).astype("float32"),
    )
    norm = operator_norm(conv.kernel.numpy(), "dense", geometry)
    assert norm == pytest.approx(1.0, abs=1e-3)
    copy = adapter.keras.constraints.deserialize(
        adapter.keras.constraints.serialize(constraint)
    )
    assert copy.geometry == geometry


def test_the_wrapper_needs_an_input_shape_it_can_use(adapter):
    keras = adapter.keras
    wrapper = adapter.SpectralNormalization(
        keras.layers.Conv2D(2, 3), operator_norm=True
    )
    with pytest.raises(KerasNormValueError, match="unknown size"):
        wrapper.build((None, None, None, 3))


def _dcgan64(**options):
    """The benchmark's DCGAN-64 discriminator (Keras 3), normalized.

    Returns the model and, for each convolution, its layer and a compiled
    function from a kernel to its operator norm on the layer's input.
    """
    import tensorflow as tf

    from benchmarks import config, models
    from kerasnorm.ops import sigma as sigma_ops

    plain = models.dcgan_discriminator(
        "keras3", config.FULL.image_size, config.FULL.discriminator_widths
    )
    model = kerasnorm.apply_normalization(
        plain, "sngan", role="discriminator", operator_norm=True, **options
    )
    convolutions = []
    for layer in model.layers:
        inner = getattr(layer, "layer", layer)
        if type(inner).__name__ != "Conv2D":
            continue
        geometry = ConvGeometry.of_layer(inner, layer.input.shape)
        norm_of = tf.function(
            lambda k, g=geometry: sigma_ops.solve(ConvOperator(k, "dense", g)).sigma
        )
        convolutions.append((layer, norm_of))
    return model, convolutions


def _worst(kernels, convolutions) -> float:
    return max(
        abs(float(norm_of(kernel)) - 1)
        for kernel, (_, norm_of) in zip(kernels, convolutions, strict=True)
    )


# On a 64x64 input a convolution's top singular values are a near-continuum:
# an Adam step can lift a direction the tracked vectors do not hold, and a
# loose residual test passes on the old pair. The benchmark's discriminator
# and data, checked after each of the first steps (where that happens).
@pytest.mark.slow
@pytest.mark.parametrize(
    "options, holds",
    [({}, True), ({"tol": 1e-2, "max_iter": 6}, False)],
    ids=["auto", "loose"],
)
def test_a_dcgan64_discriminator_holds_its_operator_norms(options, holds):
    # The defaults hold every convolution within 1e-3, the matrix's
    # tolerance does not.
    import tensorflow as tf

    from benchmarks import config, training
    from benchmarks.sigma_accuracy import image_pool

    model, convolutions = _dcgan64(**options)
    step = training.discriminator_step(model, "keras3")
    worst = 0.0
    for real, fake in image_pool(config.FULL, 7):
        step(real, fake)
        kernels = [tf.convert_to_tensor(layer.kernel) for layer, _ in convolutions]
        worst = max(worst, _worst(kernels, convolutions))
    if holds:
        assert worst <= 1e-3
    else:
        assert worst > 1e-2


@pytest.mark.slow
def test_a_dcgan64_wrapper_holds_at_the_call_not_after_the_update():
    # The wrapper tracks at each training call: the kernels that call
    # computes with are held. Between calls its sigma is taken on vectors
    # the optimizer's update has made stale, and on this input that misses
    # a lifted direction (docs/concepts.md says so and by how much).
    from benchmarks import config, training
    from benchmarks.sigma_accuracy import image_pool

    model, convolutions = _dcgan64(mode="reparam")

    def used():
        return [layer.effective_kernels()["kernel"] for layer, _ in convolutions]

    step = training.discriminator_step(model, "keras3", probe=used)
    at_call, after_update = 0.0, 0.0
    for real, fake in image_pool(config.FULL, 7):
        _, kernels = step(real, fake)
        at_call = max(at_call, _worst(kernels, convolutions))
        after_update = max(after_update, _worst(used(), convolutions))
    assert at_call <= 2e-3
    assert after_update > 1e-2
