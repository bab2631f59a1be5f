"""Models holding kerasnorm layers save and load with nothing but `import kerasnorm`."""

import subprocess
import sys
import textwrap

import numpy as np
import pytest


def _model(adapter):
    keras, layers = adapter.keras, adapter.layers
    inputs = keras.Input((8, 8, 3))
    x = layers.Conv2D(
        8, 3, kernel_constraint=adapter.SpectralNorm(n_iter=2), name="conv"
    )(inputs)
    x = layers.LeakyReLU(0.2)(x)
    x = adapter.PixelNorm(name="pixel_norm")(x)
    x = layers.Conv2DTranspose(
        4, 3, strides=2, kernel_constraint=adapter.SpectralNorm(layout="transpose")
    )(x)
    x = layers.Flatten()(x)
    outputs = adapter.SpectralNormalization(layers.Dense(2), name="sn_dense")(x)
    model = keras.Model(inputs, outputs, name="holder")
    model.compile(optimizer="adam", loss="mse")
    x = np.random.normal(size=(8, 8, 8, 3)).astype("float32")
    model.fit(x, np.random.normal(size=(8, 2)).astype("float32"), verbose=0)
    return model


def _formats(adapter):
    return (
        ["model.keras", "model.h5", "saved_model"]
        if adapter.name == "tf_keras"
        else ["model.keras"]
    )


def _load(adapter, path):
    if adapter.name == "tf_keras":
        return adapter.keras.models.load_model(path)
    return adapter.keras.saving.load_model(path)


@pytest.mark.filterwarnings("ignore:You are saving your model as an HDF5")
def test_save_and_load_every_format(adapter, tmp_path):
    model = _model(adapter)
    x = np.random.normal(size=(4, 8, 8, 3)).astype("float32")
    expected = np.asarray(model(x, training=False))
    for name in _formats(adapter):
        path = str(tmp_path / name)
        if name == "saved_model":
            model.save(path, save_format="tf")
        else:
            model.save(path)
        loaded = _load(adapter, path)
        np.testing.assert_array_equal(
            np.asarray(loaded(x, training=False)), expected, err_msg=name
        )
        conv = loaded.get_layer("conv")
        assert type(conv.kernel_constraint) is adapter.SpectralNorm
        assert conv.kernel_constraint.tracking.n_iter == 2
        assert type(loaded.get_layer("pixel_norm")) is adapter.PixelNorm
        wrapper = loaded.get_layer("sn_dense")
        assert type(wrapper) is adapter.SpectralNormalization
        original = model.get_layer("sn_dense")
        for saved, restored in zip(
            original.non_trainable_weights, wrapper.non_trainable_weights, strict=True
        ):
            np.testing.assert_array_equal(
                np.asarray(restored), np.asarray(saved), err_msg=name
            )


def test_weights_round_trip(adapter, tmp_path):
    model = _model(adapter)
    path = str(tmp_path / "weights.weights.h5")
    model.save_weights(path)
    fresh = _model(adapter)
    fresh.load_weights(path)
    for saved, restored in zip(model.weights, fresh.weights, strict=True):
        np.testing.assert_array_equal(np.asarray(restored), np.asarray(saved))


@pytest.mark.parametrize("name", ["keras3", "tf_keras"])
def test_a_fresh_process_loads_with_only_import_kerasnorm(name, tmp_path):
    from kerasnorm.adapters import ADAPTERS

    adapter = next(a for a in ADAPTERS if a.name == name)
    path = str(tmp_path / "model.keras")
    model = _model(adapter)
    model.save(path)
    x = np.ones((1, 8, 8, 3), dtype="float32")
    np.save(tmp_path / "expected.npy", np.asarray(model(x, training=False)))
    loader = (
        "tf_keras.models.load_model"
        if name == "tf_keras"
        else "keras.saving.load_model"
    )
    script = textwrap.dedent(
        f"""
        import numpy as np, keras, tf_keras
        import kerasnorm
        model = {loader}({path!r})
        out = np.asarray(model(np.ones((1, 8, 8, 3), dtype="float32"), training=False))
        np.testing.assert_array_equal(out, np.load({str(tmp_path / "expected.npy")!r}))
        print("loaded", type(model.get_layer("pixel_norm")).__module__)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"loaded kerasnorm.adapters.{name}" in result.stdout
