"""sngan on keras.applications models (weights=None): every kernel, bitwise outputs."""

import numpy as np
import pytest
from helpers import snapshot

import kerasnorm

MODELS = ["ResNet50", "MobileNetV3Small", "EfficientNetB0", "ConvNeXtTiny"]


def _kernel_layers(model, adapter):
    found = []
    for layer in model.layers:
        if adapter.is_model(layer):
            found += _kernel_layers(layer, adapter)
        elif isinstance(
            layer,
            (
                adapter.layers.Conv2D,
                adapter.layers.Dense,
                adapter.layers.DepthwiseConv2D,
            ),
        ):
            found.append(layer)
    return found


def _constraints(layer):
    return [
        getattr(layer, key)
        for key in ("kernel_constraint", "depthwise_constraint")
        if getattr(layer, key, None) is not None
    ]


@pytest.mark.parametrize("name", MODELS)
def test_every_kernel_constrained_outputs_bitwise_identical(adapter, name):
    model = getattr(adapter.keras.applications, name)(
        weights=None, input_shape=(32, 32, 3), classes=10
    )
    before = snapshot(model)
    new = kerasnorm.apply_normalization(model, "sngan", role="discriminator")
    assert snapshot(model) == before
    kernels = _kernel_layers(new, adapter)
    assert len(kernels) == len(_kernel_layers(model, adapter)) > 20
    for layer in kernels:
        constraints = _constraints(layer)
        assert constraints and all(
            isinstance(c, adapter.SpectralNorm) for c in constraints
        ), layer.name
    x = np.random.default_rng(0).uniform(size=(2, 32, 32, 3)).astype("float32")
    np.testing.assert_array_equal(
        np.asarray(new(x, training=False)), np.asarray(model(x, training=False))
    )
