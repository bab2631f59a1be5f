"""`lipschitz_bound`: each constant against the unrolled operator, both Kerases."""

import numpy as np
import pytest
from helpers import adapter_named, some_by_default

import kerasnorm
from kerasnorm.demo import build_discriminator


def _unrolled_norm(layer, shape) -> float:
    """The largest singular value of `layer` (bias zeroed) on one sample of
    `shape`, from its outputs on every basis vector."""
    size = int(np.prod(shape))
    basis = np.eye(size, dtype="float32").reshape((size, *shape))
    outputs = layer(basis).numpy().reshape(size, -1).astype("float64")
    if getattr(layer, "use_bias", False):
        outputs -= layer(np.zeros((1, *shape), "float32")).numpy().reshape(1, -1)
    return float(np.linalg.svd(outputs, compute_uv=False)[0])


def test_each_constant_is_the_layers_operator_norm(adapter):
    model = build_discriminator(adapter.keras)
    report = kerasnorm.lipschitz_bound(model)
    constants = {layer.node: layer.constant for layer in report.layers}
    for name, shape in (("conv1", (16, 16, 3)), ("conv2", (8, 8, 32))):
        exact = _unrolled_norm(model.get_layer(name), shape)
        assert constants[name] == pytest.approx(exact, rel=1e-4)
    kernel = model.get_layer("score").kernel.numpy().astype("float64")
    assert constants["score"] == pytest.approx(
        np.linalg.svd(kernel, compute_uv=False)[0], rel=1e-5
    )
    assert constants["act1"] == 1.0 and constants["flatten"] == 1.0
    assert report.is_bound
    assert report.product == pytest.approx(np.prod(list(constants.values())))
    # And it bounds the model: no pair of inputs moves the output more.
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(2, 64, 16, 16, 3)).astype("float32")
    moved = np.abs(np.asarray(model(x) - model(y)))[:, 0]
    apart = np.linalg.norm((x - y).reshape(64, -1), axis=1)
    assert np.all(moved <= report.product * apart)


# Each Keras and each mode once by default; every combination under -m slow.
@pytest.mark.parametrize(
    "flavour, mode",
    some_by_default(
        {("keras3", "reparam"), ("tf_keras", "constraint")},
        ["keras3", "tf_keras"],
        ["constraint", "reparam"],
    ),
)
def test_operator_norm_sngan_makes_the_discriminator_1_lipschitz(flavour, mode):
    adapter = adapter_named(flavour)
    keras = adapter.keras
    model = kerasnorm.apply_normalization(
        build_discriminator(keras), "sngan", mode=mode, operator_norm=True
    )
    model.compile(keras.optimizers.Adam(1e-3), "mse")
    rng = np.random.default_rng(0)
    images = rng.normal(size=(8, 16, 16, 3)).astype("float32")
    model.train_on_batch(images, np.zeros((8, 1), "float32"))
    if mode == "reparam":
        model(images, training=True)
    report = kerasnorm.lipschitz_bound(model)
    assert report.is_bound
    assert report.product == pytest.approx(1.0, abs=3e-3)
    # The reshaped-kernel normalization leaves the same model above 1.
    plain_sn = kerasnorm.apply_normalization(
        build_discriminator(keras), "sngan", mode=mode
    )
    assert kerasnorm.lipschitz_bound(plain_sn).product > 1.2


def test_parameter_free_layers_have_their_exact_constants(adapter):
    keras = adapter.keras
    layers = keras.layers
    inputs = keras.Input((8, 8, 2))
    x = layers.MaxPooling2D(2, name="max")(inputs)
    x = layers.MaxPooling2D(3, strides=1, padding="same", name="overlap")(x)
    x = layers.AveragePooling2D(2, name="mean")(x)
    x = layers.UpSampling2D(2, name="up")(x)
    x = layers.BatchNormalization(name="bn")(x)
    x = layers.Activation("sigmoid", name="sigmoid")(x)
    model = keras.Model(inputs, x)
    bn = model.get_layer("bn")
    bn.gamma.assign(np.array([0.5, -3.0], "float32"))
    bn.moving_variance.assign(np.array([1.0, 4.0], "float32"))
    constants = {b.node: b.constant for b in kerasnorm.lipschitz_bound(model).layers}
    assert constants["max"] == 1.0
    assert constants["overlap"] == pytest.approx(3.0)
    assert constants["mean"] == pytest.approx(0.5)
    assert constants["up"] == pytest.approx(2.0)
    assert constants["bn"] == pytest.approx(3.0 / np.sqrt(4.0 + bn.epsilon))
    assert constants["sigmoid"] == 0.25
    # The average pooling and upsampling constants are the operators' norms.
    assert _unrolled_norm(model.get_layer("mean"), (4, 4, 2)) == pytest.approx(0.5)
    assert _unrolled_norm(model.get_layer("up"), (2, 2, 2)) == pytest.approx(2.0)


def _doubled(x):
    return 2.0 * x


def test_where_the_product_is_not_a_bound_it_says_so(adapter):
    keras = adapter.keras
    layers = keras.layers
    inputs = keras.Input((8, 8, 4))
    x = layers.Conv2D(4, 3, padding="same", name="conv")(inputs)
    x = layers.Add(name="residual")([x, inputs])
    x = kerasnorm.adapter_for(keras.Model(inputs, x)).PixelNorm(name="pixel")(x)
    x = layers.LayerNormalization(name="ln")(x)
    x = layers.Dense(3, activation=_doubled, name="custom")(x)
    report = kerasnorm.lipschitz_bound(keras.Model(inputs, x))
    assert not report.is_bound
    reasons = {b.node: b.reason for b in report.layers if b.constant is None}
    assert set(reasons) == {"residual", "pixel", "ln", "custom"}
    assert "sum of its branches" in reasons["residual"]
    assert "no known slope" in reasons["custom"]
    assert len(report.caveats) == 4
    text = str(report)
    assert "not a bound" in text and "residual" in text
