"""Every kind of kernel, one layer at a time: found, normalized, trained, saved.

Each case is a one-layer discriminator (input -> the layer -> a Dense score)
on both Kerases, in both modes: the plan finds every kernel the tests' own
rule counts (`helpers.is_kernel`), with the layout the layer's linear map
defines; after two Adam steps every kernel's sigma, taken of that map's
matrix by SVD (`helpers.reference_sigma`), is 1; the model saves to and
loads from `.keras` computing the same, and its constraints keep working.
"""

import numpy as np
import pytest
import tensorflow as tf
from helpers import is_kernel, kernel_weights, reference_sigma

import kerasnorm
from kerasnorm.adapters import ADAPTERS
from kerasnorm.layers.kernels import find_kernels


def _mha(layers):
    return layers.MultiHeadAttention(2, 4, name="layer"), (5, 8), "two inputs"


def _custom_layers(k):
    """A layer of one's own with a constraint argument, and one holding Dense."""

    class Scaled(k.layers.Layer):
        def __init__(self, units=3, kernel_constraint=None, **kwargs):
            super().__init__(**kwargs)
            self.units = units
            self.kernel_constraint = k.constraints.get(kernel_constraint)

        def build(self, input_shape):
            self.kernel = self.add_weight(
                name="kernel",
                shape=(input_shape[-1], self.units),
                constraint=self.kernel_constraint,
            )

        def call(self, x):
            return 2.0 * tf.matmul(x, self.kernel)

        def get_config(self):
            constraint = k.constraints.serialize(self.kernel_constraint)
            return {
                **super().get_config(),
                "units": self.units,
                "kernel_constraint": constraint,
            }

    class Gated(k.layers.Layer):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.value = k.layers.Dense(3, name="value")
            self.gate = k.layers.Dense(3, activation="sigmoid", name="gate")

        def call(self, x):
            return self.value(x) * self.gate(x)

    return Scaled, Gated


# name -> (factory of (layer, input shape, how it is called), kernel count)
CASES = {
    "Conv1D": (lambda layers: (layers.Conv1D(3, 3, name="layer"), (8, 2), None), 1),
    "Conv3D": (
        lambda layers: (layers.Conv3D(2, 2, name="layer"), (4, 4, 4, 2), None),
        1,
    ),
    "Conv1DTranspose": (
        lambda layers: (
            layers.Conv1DTranspose(3, 3, strides=2, name="layer"),
            (8, 2),
            None,
        ),
        1,
    ),
    "Conv3DTranspose": (
        lambda layers: (layers.Conv3DTranspose(2, 2, name="layer"), (3, 3, 3, 2), None),
        1,
    ),
    "DepthwiseConv1D": (
        lambda layers: (
            layers.DepthwiseConv1D(3, depth_multiplier=2, name="layer"),
            (8, 3),
            None,
        ),
        1,
    ),
    "SeparableConv1D": (
        lambda layers: (layers.SeparableConv1D(4, 3, name="layer"), (8, 3), None),
        2,
    ),
    "EinsumDense": (
        lambda layers: (
            layers.EinsumDense("abc,cd->abd", (5, 4), bias_axes="d", name="layer"),
            (5, 6),
            None,
        ),
        1,
    ),
    "MultiHeadAttention": (_mha, 4),
    "SimpleRNN": (lambda layers: (layers.SimpleRNN(4, name="layer"), (5, 3), None), 2),
    "LSTM": (lambda layers: (layers.LSTM(4, name="layer"), (5, 3), None), 2),
    "GRU": (lambda layers: (layers.GRU(4, name="layer"), (5, 3), None), 2),
    "ConvLSTM1D": (
        lambda layers: (layers.ConvLSTM1D(2, 3, name="layer"), (3, 6, 2), None),
        2,
    ),
    "RNN(LSTMCell)": (
        lambda layers: (
            layers.RNN(layers.LSTMCell(4, name="cell"), name="layer"),
            (5, 3),
            None,
        ),
        2,
    ),
    "StackedRNNCells": (
        lambda layers: (
            layers.RNN(
                layers.StackedRNNCells(
                    [layers.GRUCell(4, name="a"), layers.SimpleRNNCell(3, name="b")]
                ),
                name="layer",
            ),
            (5, 3),
            None,
        ),
        4,
    ),
    "Bidirectional(LSTM)": (
        lambda layers: (
            layers.Bidirectional(layers.LSTM(4), name="layer"),
            (5, 3),
            None,
        ),
        4,
    ),
    "Bidirectional(GRU, backward_layer)": (
        lambda layers: (
            layers.Bidirectional(
                layers.GRU(4, name="forward"),
                backward_layer=layers.GRU(4, go_backwards=True, name="backward"),
                name="layer",
            ),
            (5, 3),
            None,
        ),
        4,
    ),
    "TimeDistributed(Conv2D)": (
        lambda layers: (
            layers.TimeDistributed(layers.Conv2D(2, 3, name="conv"), name="layer"),
            (3, 6, 6, 2),
            None,
        ),
        1,
    ),
}
KERAS3_ONLY = {
    "GroupedQueryAttention": (
        lambda layers: (
            layers.GroupQueryAttention(4, 2, 1, name="layer"),
            (5, 8),
            "two inputs",
        ),
        4,
    ),
}


def _build(k, case):
    """A one-layer discriminator around the case's layer."""
    factory, _ = {**CASES, **KERAS3_ONLY}[case]
    layer, shape, called = factory(k.layers)
    x = k.Input(shape, name="x")
    y = layer(x, x) if called == "two inputs" else layer(x)
    score = k.layers.Dense(1, name="score")(k.layers.Flatten()(y))
    return k.Model(x, score, name=f"critic_{case.split('(')[0].lower()}")


def _custom_model(k, which):
    scaled, gated = _custom_layers(k)
    layer = (scaled if which == "scaled" else gated)(name="layer")
    x = k.Input((6,), name="x")
    return k.Model(x, k.layers.Dense(1, name="score")(layer(x)), name="critic")


def _cases(adapter_name):
    return [*CASES, *(KERAS3_ONLY if adapter_name == "keras3" else {})]


def _params():
    for adapter in ADAPTERS:
        for case in _cases(adapter.name):
            for mode in ("constraint", "reparam"):
                yield pytest.param(
                    adapter, case, mode, id=f"{adapter.name}-{case}-{mode}"
                )


def _batch(model):
    shape = (2, *model.input_shape[1:])
    return np.random.default_rng(0).normal(size=shape).astype("float32")


def _train(k, model, batch, steps=2):
    optimizer = k.optimizers.Adam(1e-3)
    for _ in range(steps):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.square(model(batch, training=True)))
        grads = tape.gradient(loss, model.trainable_weights)
        optimizer.apply_gradients(zip(grads, model.trainable_weights, strict=True))


def _sigmas(adapter, model):
    """sigma of every kernel `model` computes with, by SVD of its map's matrix."""
    sigmas = {}
    for layer in model.layers:
        if isinstance(layer, adapter.SpectralNormalization):
            effective = layer.effective_kernels()
            for kernel in layer.kernels():
                sigmas[f"{layer.name}/{kernel.path}"] = reference_sigma(
                    layer.layer, kernel.variable, effective[kernel.path]
                )
        else:
            for index, weight in enumerate(kernel_weights(layer)):
                assert isinstance(
                    weight.constraint, (adapter.SpectralNorm, adapter.ConstraintChain)
                ), weight.name
                key = f"{layer.name}/{index}:{weight.name}"
                sigmas[key] = reference_sigma(layer, weight)
    return sigmas


def _check_normalized(adapter, model, batch, mode, expected_count):
    if mode == "reparam":
        # The wrapper follows the kernel at its training calls.
        model(batch, training=True)
    sigmas = _sigmas(adapter, model)
    assert len(sigmas) == expected_count + 1  # and the score's
    tolerance = 1e-3 if mode == "constraint" else 5e-3
    for name, sigma in sigmas.items():
        assert sigma == pytest.approx(1.0, abs=tolerance), name


@pytest.mark.parametrize("adapter, case, mode", _params())
def test_each_kind_of_kernel_is_normalized_trained_and_saved(
    adapter, case, mode, tmp_path
):
    k = adapter.keras
    model = _build(k, case)
    batch = _batch(model)
    _, count = {**CASES, **KERAS3_ONLY}[case]
    layer = model.get_layer("layer")
    assert len(find_kernels(layer, adapter)) == count
    assert sum(is_kernel(w) for w in layer.trainable_weights) == count
    plan = kerasnorm.plan(model, "sngan", mode=mode, strict=True)
    assert [s.status for s in plan.kernels()] == ["normalized"] * (count + 1)

    new = kerasnorm.apply_normalization(model, "sngan", mode=mode)
    if mode == "constraint":
        np.testing.assert_array_equal(np.asarray(new(batch)), np.asarray(model(batch)))
    _train(k, new, batch)
    _check_normalized(adapter, new, batch, mode, count)

    path = str(tmp_path / "critic.keras")
    new.save(path)
    loaded = k.models.load_model(path)
    np.testing.assert_allclose(
        np.asarray(loaded(batch)), np.asarray(new(batch)), rtol=1e-5, atol=1e-6
    )
    # Folded for export: plain layers computing what the model computes.
    folded = kerasnorm.fold(new)
    assert not any(
        isinstance(w.constraint, adapter.SpectralNorm) for w in folded.weights
    )
    np.testing.assert_allclose(
        np.asarray(folded(batch)), np.asarray(new(batch)), rtol=1e-5, atol=1e-6
    )
    # The loaded constraints or wrappers find their kernels again.
    _train(k, loaded, batch, steps=1)
    _check_normalized(adapter, loaded, batch, mode, count)


@pytest.mark.parametrize("mode", ["constraint", "reparam"])
def test_a_layer_of_ones_own_with_a_constraint_argument(adapter, mode, tmp_path):
    k = adapter.keras
    model = _custom_model(k, "scaled")
    batch = _batch(model)
    plan = kerasnorm.plan(model, "sngan", mode=mode, strict=True)
    (status,) = [s for s in plan.kernels() if s.layer == "layer"]
    assert status.kernel.path == "kernel" and status.status == "normalized"
    assert status.kernel.assumed_layout
    new = kerasnorm.apply_normalization(model, "sngan", mode=mode)
    _train(k, new, batch)
    _check_normalized(adapter, new, batch, mode, 1)


def test_a_layer_of_ones_own_holding_kernel_layers(adapter):
    k = adapter.keras
    model = _custom_model(k, "gated")
    batch = _batch(model)
    constraint = kerasnorm.plan(model, "sngan")
    statuses = {s.kernel.path: s for s in constraint.kernels() if s.layer == "layer"}
    assert sorted(statuses) == ["gate/kernel", "value/kernel"]
    for status in statuses.values():
        assert status.status == "skipped"
        assert "mode='reparam'" in status.reason
    new = kerasnorm.apply_normalization(model, "sngan", mode="reparam")
    _train(k, new, batch)
    _check_normalized(adapter, new, batch, "reparam", 2)
