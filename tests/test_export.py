"""`kerasnorm.fold`: plain layers that compute what the normalized model does."""

import json
import zipfile

import numpy as np
import pytest
import zoo

import kerasnorm
from kerasnorm.errors import KerasNormTypeError


def _kerasnorm_classes(model, adapter):
    """Names of the layers of `model` (nested too) that involve an SN class."""
    found = []
    for layer in _all_layers(model, adapter):
        if isinstance(layer, adapter.SpectralNormalization):
            found.append(layer.name)
        for key in (
            "kernel_constraint",
            "depthwise_constraint",
            "pointwise_constraint",
        ):
            if isinstance(
                getattr(layer, key, None),
                (adapter.SpectralNorm, adapter.ConstraintChain),
            ):
                found.append(f"{layer.name}.{key}")
    return found


def _all_layers(model, adapter):
    for layer in model.layers:
        yield layer
        if adapter.is_model(layer):
            yield from _all_layers(layer, adapter)


def _trained(model, adapter, steps=3):
    model.compile(optimizer=adapter.keras.optimizers.Adam(1e-2), loss="mse")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(steps * 4, *model.input_shape[1:])).astype("float32")
    y = rng.normal(size=(steps * 4, *model.output_shape[1:])).astype("float32")
    model.fit(x, y, batch_size=4, verbose=0)
    return x


@pytest.mark.parametrize("mode", ["constraint", "reparam"])
def test_fold_computes_as_the_normalized_model_without_sn(adapter, mode, tmp_path):
    model = kerasnorm.apply_normalization(
        zoo.dcgan_discriminator(adapter.keras), "sngan", mode=mode
    )
    x = _trained(model, adapter)
    assert _kerasnorm_classes(model, adapter)
    folded = kerasnorm.fold(model)
    assert _kerasnorm_classes(folded, adapter) == []
    assert [layer.name for layer in folded.layers] == [
        layer.name for layer in model.layers
    ]
    expected = np.asarray(model(x, training=False))
    np.testing.assert_allclose(np.asarray(folded(x)), expected, atol=1e-6)
    # The model is untouched.
    assert _kerasnorm_classes(model, adapter)
    # Saved, its config names no kerasnorm class: plain Keras loads it.
    path = tmp_path / "critic.keras"
    folded.save(path)
    with zipfile.ZipFile(path) as archive:
        config = json.loads(archive.read("config.json"))
    assert "kerasnorm" not in json.dumps(config)
    loaded = adapter.keras.models.load_model(path)
    np.testing.assert_allclose(np.asarray(loaded(x)), expected, atol=1e-6)


def test_fold_opens_nested_models_and_keeps_pixel_norm_and_sharing(adapter):
    combined = zoo.gan(adapter.keras)[2]
    normalized = kerasnorm.apply_normalization(
        combined, ["progan", "sagan"], mode="reparam"
    )
    folded = kerasnorm.fold(normalized)
    assert _kerasnorm_classes(folded, adapter) == []
    norms = [
        layer
        for layer in _all_layers(folded, adapter)
        if isinstance(layer, adapter.PixelNorm)
    ]
    assert norms
    z_values = np.random.default_rng(0).normal(size=(3, 16))
    np.testing.assert_allclose(
        np.asarray(folded(z_values)),
        np.asarray(normalized(z_values, training=False)),
        atol=1e-5,
    )


def test_fold_keeps_your_own_constraint_from_a_chain(adapter):
    keras = adapter.keras
    image = keras.Input((8,))
    x = keras.layers.Dense(4, kernel_constraint=keras.constraints.NonNeg(), name="fc")(
        image
    )
    model = kerasnorm.apply_normalization(
        keras.Model(image, x), "sngan", role="discriminator"
    )
    assert isinstance(model.get_layer("fc").kernel_constraint, adapter.ConstraintChain)
    folded = kerasnorm.fold(model)
    assert isinstance(
        folded.get_layer("fc").kernel_constraint, keras.constraints.NonNeg
    )


def test_fold_needs_a_graph(adapter):
    with pytest.raises(KerasNormTypeError, match="functional or Sequential"):
        kerasnorm.fold(zoo.subclassed(adapter.keras))
