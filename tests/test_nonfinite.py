"""A kernel that turns to inf or NaN: the step survives, the user's checks see
it, and restoring good weights recovers fully."""

import numpy as np
import pytest
import tensorflow as tf
from helpers import top_singular_value

import kerasnorm
from kerasnorm.layers.tracking import Tracking


def _data(model, batches=3):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4 * batches, *model.input_shape[1:])).astype("float32")
    y = rng.normal(size=(4 * batches, 1)).astype("float32")
    return x, y


def _fit(adapter, model, callbacks=()):
    x, y = _data(model)
    history = model.fit(x, y, batch_size=4, verbose=0, callbacks=list(callbacks))
    return history.history["loss"]


def _sigmas(model):
    return kerasnorm.callbacks.normalized_sigmas(model)


def _critic(k):
    """A small critic: tracing the SN steps of a big one costs seconds."""
    x = k.Input((8, 8, 2), name="image")
    y = k.layers.Conv2D(4, 3, strides=2, name="conv_1")(x)
    y = k.layers.Dense(1, name="score")(k.layers.Flatten()(y))
    return k.Model(x, y, name="critic")


@pytest.mark.parametrize("mode", ["constraint", "reparam"])
def test_a_non_finite_kernel_stops_training_and_good_weights_recover(adapter, mode):
    k = adapter.keras
    model = kerasnorm.apply_normalization(_critic(k), "sngan", mode=mode)
    model.compile(optimizer=k.optimizers.Adam(1e-3), loss="mse")
    _fit(adapter, model)
    good = [np.asarray(w).copy() for w in model.weights]
    conv = model.get_layer("conv_1")
    kernel = (conv.layer if mode == "reparam" else conv).kernel
    poisoned = np.asarray(kernel).copy()
    poisoned[0, 0, 0, 0] = np.nan
    kernel.assign(poisoned)
    # No error from inside the tracker: the NaN reaches the loss, where
    # TerminateOnNaN stops the run after the first batch.
    losses = _fit(adapter, model, [k.callbacks.TerminateOnNaN()])
    assert len(losses) == 1 and not np.isfinite(losses[0])
    # The optimizer's own moments took the NaN too: a fresh one, as a
    # restart from a checkpoint would restore a good one.
    model.set_weights(good)
    model.compile(optimizer=k.optimizers.Adam(1e-3), loss="mse")
    losses = _fit(adapter, model)
    assert np.all(np.isfinite(losses))
    sigmas = _sigmas(model)
    assert len(sigmas) == 2
    for name, sigma in sigmas.items():
        assert sigma == pytest.approx(1.0, abs=5e-3), name


def test_a_non_finite_matrix_gives_nan_sigma_and_an_empty_state():
    tracking = Tracking(tol=3e-3, max_iter=6)
    matrix = tf.constant(np.random.default_rng(0).normal(size=(12, 8)), tf.float32)
    state = tracking.solve(matrix).state
    for value in (np.nan, np.inf, -np.inf):
        bad = tf.tensor_scatter_nd_update(matrix, [[0, 0]], [value])
        for estimate in (tracking.step(bad, state), tracking.solve(bad)):
            assert np.isnan(float(estimate.sigma))
            assert not np.asarray(estimate.state).any()
    # A NaN state (restored from a bad checkpoint) is solved afresh.
    nan_state = tf.fill(state.shape, np.nan)
    estimate = tracking.step(matrix, nan_state)
    expected = np.linalg.svd(np.asarray(matrix, "float64"), compute_uv=False)[0]
    assert float(estimate.sigma) == pytest.approx(expected, rel=1e-5)


def test_the_constraint_passes_a_non_finite_kernel_through(adapter):
    constraint = adapter.SpectralNorm()
    variable = tf.Variable(np.random.default_rng(0).normal(size=(6, 4)), tf.float32)
    variable.assign(constraint(variable))
    broken = np.asarray(variable).copy()
    broken[1, 2] = np.nan
    variable.assign(broken)
    out = np.asarray(constraint(variable))
    assert np.isnan(out[1, 2])
    fine = np.random.default_rng(1).normal(size=(6, 4)).astype("float32")
    variable.assign(fine)
    assert top_singular_value(np.asarray(constraint(variable))) == pytest.approx(
        1.0, abs=1e-5
    )
