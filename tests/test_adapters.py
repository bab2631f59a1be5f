import os
import subprocess
import sys

import keras
import pytest
import tf_keras

import kerasnorm
from kerasnorm.adapters import adapter_for, keras3
from kerasnorm.errors import KerasNormError, KerasNormTypeError, UnsupportedKerasError


def test_each_keras_object_finds_its_adapter():
    assert adapter_for(keras.layers.Dense(2)).name == "keras3"
    assert adapter_for(tf_keras.layers.Dense(2)).name == "tf_keras"
    assert adapter_for(keras.Sequential([keras.Input((2,))])).name == "keras3"
    assert adapter_for(tf_keras.constraints.MaxNorm()).name == "tf_keras"


@pytest.mark.parametrize("obj", [object(), "model", None, 3.0])
def test_anything_else_is_a_type_error(obj):
    with pytest.raises(KerasNormTypeError, match="Keras 3 or tf-keras"):
        adapter_for(obj)


def test_keras3_on_a_backend_that_does_not_train_is_refused(monkeypatch):
    monkeypatch.setattr(keras3.keras.backend, "backend", lambda: "numpy")
    with pytest.raises(UnsupportedKerasError, match="does not train models") as info:
        adapter_for(keras.layers.Dense(2))
    assert isinstance(info.value, KerasNormError)


def test_classes_of_each_keras_subclass_that_kerass_bases(adapter):
    assert issubclass(adapter.PixelNorm, adapter.keras.layers.Layer)
    assert issubclass(adapter.SpectralNorm, adapter.keras.constraints.Constraint)
    assert issubclass(adapter.SpectralNormalization, adapter.keras.layers.Wrapper)
    assert adapter.PixelNorm.__doc__ and "ProGAN" in adapter.PixelNorm.__doc__


@pytest.mark.parametrize("legacy, expected", [("0", "keras3"), ("1", "tf_keras")])
def test_top_level_classes_follow_tf_keras(legacy, expected):
    script = (
        "import kerasnorm, tensorflow as tf;"
        "print(kerasnorm.PixelNorm.__module__,"
        " kerasnorm.SpectralNormalization.__module__,"
        " issubclass(kerasnorm.PixelNorm, tf.keras.layers.Layer))"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "TF_USE_LEGACY_KERAS": legacy},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    module = f"kerasnorm.adapters.{expected}"
    assert result.stdout.split() == [module, module, "True"]


def test_default_process_exports_keras3_classes():
    assert kerasnorm.PixelNorm is keras3.PixelNorm
    assert kerasnorm.SpectralNorm is keras3.SpectralNorm
