import backend
import numpy as np
import pytest
from helpers import pixel_norm_reference

import kerasnorm
from kerasnorm.errors import KerasNormTypeError, KerasNormValueError


def _model(adapter, shape, **kwargs):
    keras = adapter.keras
    inputs = keras.Input(shape)
    return keras.Model(inputs, adapter.PixelNorm(**kwargs)(inputs))


@pytest.mark.parametrize(
    "shape, axis",
    [((16,), -1), ((7, 8), -1), ((5, 5, 8), -1), ((8, 5, 5), 1), ((3, 4, 5, 6), -1)],
)
def test_layer_in_a_model_matches_numpy(adapter, shape, axis):
    model = _model(adapter, shape, axis=axis)
    x = np.random.normal(size=(2, *shape)).astype("float32")
    np.testing.assert_allclose(
        model.predict(x, verbose=0), pixel_norm_reference(x, axis), rtol=1e-5, atol=1e-6
    )
    assert model.count_params() == 0


def test_exported_class_is_the_active_kerass(adapter):
    # tests run with the default tf.keras: Keras 3
    assert kerasnorm.PixelNorm.__module__ == "kerasnorm.adapters.keras3"
    assert issubclass(adapter.PixelNorm, adapter.layers.Layer)


def test_mixed_precision_policy_outputs_finite_half_values(adapter):
    adapter.keras.mixed_precision.set_global_policy("mixed_float16")
    layer = adapter.PixelNorm()
    x = np.full((2, 4, 4, 8), 1e-4, dtype="float32")
    y = layer(x)
    assert backend.dtype_name(y) == "float16"
    y = np.asarray(y, dtype="float32")
    assert np.all(np.isfinite(y))
    # mean(x**2) equals epsilon here: 1 / sqrt(2), where float16 math gives 0/0.
    np.testing.assert_allclose(y, pixel_norm_reference(x), rtol=1e-3)


def test_zero_input_stays_zero(adapter):
    y = adapter.PixelNorm()(np.zeros((3, 4), dtype="float32"))
    np.testing.assert_array_equal(np.asarray(y), 0.0)


def test_config_round_trip(adapter):
    layer = adapter.PixelNorm(epsilon=1e-6, axis=1, name="pn")
    config = layer.get_config()
    assert (config["epsilon"], config["axis"], config["name"]) == (1e-6, 1, "pn")
    clone = adapter.PixelNorm.from_config(config)
    assert (clone.epsilon, clone.axis) == (1e-6, 1)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"epsilon": 0.0}, KerasNormValueError, "epsilon"),
        ({"epsilon": -1e-8}, KerasNormValueError, "epsilon"),
        ({"epsilon": "small"}, KerasNormTypeError, "epsilon"),
        ({"axis": 1.5}, KerasNormTypeError, "axis"),
    ],
)
def test_bad_arguments(adapter, kwargs, error, match):
    with pytest.raises(error, match=match):
        adapter.PixelNorm(**kwargs)


@pytest.mark.parametrize("axis", [0, 3, -4])
def test_axis_must_be_a_channel_axis(adapter, axis):
    with pytest.raises(KerasNormValueError, match="axis"):
        adapter.PixelNorm(axis=axis)(np.ones((2, 3, 4), dtype="float32"))


def test_rank_one_input_is_rejected(adapter):
    with pytest.raises(KerasNormValueError, match="rank 2"):
        adapter.PixelNorm().build((4,))
