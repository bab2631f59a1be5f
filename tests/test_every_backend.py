"""Every public function of kerasnorm, on the Keras 3 backend of this process.

Written against `keras` and `keras.ops` only, so that tests/test_backends.py
runs it again on JAX and PyTorch; here it runs on TensorFlow. With
`KERASNORM_REFERENCE` set to a file that `write_reference` wrote on
TensorFlow, it also checks that this backend computes the same numbers.
"""

from __future__ import annotations

import os
import pathlib
import warnings

import keras
import numpy as np
import pytest
from backend import NAME

import kerasnorm
from kerasnorm import cli, demo
from kerasnorm.callbacks import SpectralNormMonitor, normalized_sigmas
from kerasnorm.demo import build_discriminator, build_generator
from kerasnorm.ops.operators import ConvOperator

MODES = ["constraint", "reparam"]


def _data(count: int = 32, seed: int = 0):
    rng = np.random.default_rng(seed)
    images = rng.uniform(-1, 1, (count, 16, 16, 3)).astype("float32")
    return images, rng.normal(size=(count, 1)).astype("float32")


def _fit(model, steps: int = 4, learning_rate: float = 1e-3):
    images, scores = _data(8 * steps)
    model.compile(optimizer=keras.optimizers.SGD(learning_rate), loss="mse")
    with warnings.catch_warnings():
        # On JAX the constraint says its state is not carried: tested below.
        warnings.simplefilter("ignore", UserWarning)
        return model.fit(images, scores, batch_size=8, shuffle=False, verbose=0)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    # sagan and biggan normalize a discriminator as sngan does: under -m slow.
    "policy",
    ["sngan", *(pytest.param(p, marks=pytest.mark.slow) for p in ("sagan", "biggan"))],
)
def test_policies_normalize_and_train(policy, mode):
    keras.utils.set_random_seed(0)
    original = build_discriminator(keras)
    model = kerasnorm.apply_normalization(original, policy, mode=mode)
    if mode == "constraint":
        # Kernels are projected at the first optimizer step, not before.
        images, _ = _data(4)
        expected = original.predict(images, verbose=0)
        assert np.allclose(model.predict(images, verbose=0), expected, atol=1e-5)
    before = original.get_weights()
    _fit(model)
    sigmas = normalized_sigmas(model)
    assert sorted(sigmas) == ["conv1", "conv2", "score"]
    assert max(abs(sigma - 1) for sigma in sigmas.values()) < 2e-3
    # Training the rewritten model neither moved nor freed (JAX donates the
    # arrays a compiled step trains) the original's weights.
    for old, new in zip(before, original.get_weights(), strict=True):
        np.testing.assert_array_equal(old, new)


def test_progan_inserts_pixel_norm_and_keeps_the_weights():
    keras.utils.set_random_seed(0)
    original = build_generator(keras)
    plan = kerasnorm.plan(original, "progan")
    model = kerasnorm.apply_normalization(original, "progan")
    pixel_norms = [
        layer for layer in model.layers if isinstance(layer, kerasnorm.PixelNorm)
    ]
    assert len(pixel_norms) == len(plan.edits) == 4
    assert all(
        np.array_equal(a, b)
        for a, b in zip(original.get_weights(), model.get_weights(), strict=True)
    )
    z = np.random.default_rng(0).normal(size=(2, demo.LATENT)).astype("float32")
    assert model.predict(z, verbose=0).shape == (2, 16, 16, 3)


def test_the_decorator_normalizes_what_the_builder_returns():
    @kerasnorm.normalize(policy="sngan", mode="reparam")
    def build():
        return build_discriminator(keras)

    model = build()
    wrapped = [
        layer
        for layer in model.layers
        if isinstance(layer, kerasnorm.SpectralNormalization)
    ]
    assert len(wrapped) == 3


@pytest.mark.parametrize("mode", MODES)
def test_keras_files_and_fold_keep_the_outputs(mode, tmp_path):
    keras.utils.set_random_seed(0)
    model = kerasnorm.apply_normalization(
        build_discriminator(keras), "sngan", mode=mode
    )
    _fit(model, learning_rate=1e-2)
    images, _ = _data(4)
    expected = model.predict(images, verbose=0)
    model.save(tmp_path / "d.keras")
    loaded = keras.models.load_model(tmp_path / "d.keras")
    assert np.allclose(loaded.predict(images, verbose=0), expected, atol=1e-6)
    folded = kerasnorm.fold(model)
    assert np.allclose(folded.predict(images, verbose=0), expected, atol=1e-5)
    assert not any(
        isinstance(layer, kerasnorm.SpectralNormalization) for layer in folded.layers
    )


def test_equalized_lr_keeps_the_function_and_scales_sgd_steps(tmp_path):
    keras.utils.set_random_seed(0)
    original = build_discriminator(keras)
    model = kerasnorm.apply_normalization(original, "equalized_lr")
    images, _ = _data(8)
    expected = original.predict(images, verbose=0)
    assert np.allclose(model.predict(images, verbose=0), expected, atol=1e-5)
    # One SGD step on the same batch: the effective kernel moves c**2 times
    # as far as the plain model's.
    before = kerasnorm.fold(model).get_weights()
    _fit(model, steps=1, learning_rate=1e-3)
    _fit(original, steps=1, learning_rate=1e-3)
    after = kerasnorm.fold(model).get_weights()
    c = model.get_layer("conv1").coefficients()["kernel"]
    moved = original.get_layer("conv1").kernel.numpy() - before[0]
    assert np.allclose(after[0] - before[0], c**2 * moved, rtol=1e-3, atol=1e-7)
    assert np.abs(moved).max() > 1e-4
    model.save(tmp_path / "d.keras")
    loaded = keras.models.load_model(tmp_path / "d.keras")
    now = model.predict(images, verbose=0)
    assert np.allclose(loaded.predict(images, verbose=0), now, atol=1e-6)
    assert np.allclose(kerasnorm.fold(model).predict(images, verbose=0), now, atol=1e-5)


def test_the_monitor_logs_sigma_and_writes_tensorboard_scalars(tmp_path):
    model = kerasnorm.apply_normalization(build_discriminator(keras), "sngan")
    images, scores = _data(16)
    model.compile(optimizer="sgd", loss="mse")
    monitor = SpectralNormMonitor.for_model(model, log_dir=str(tmp_path), every=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        history = model.fit(
            images, scores, batch_size=8, callbacks=[monitor], verbose=0
        )
    assert abs(history.history["sigma/conv2"][-1] - 1) < 1e-3
    assert list(tmp_path.glob("events.out.tfevents.*"))


def test_the_command_plans_and_applies(tmp_path, capsys):
    source = tmp_path / "d.keras"
    build_discriminator(keras).save(source)
    assert cli.main(["plan", str(source), "--policy", "sngan"]) == 0
    assert "Plan for model 'discriminator'" in capsys.readouterr().out
    target = tmp_path / "d_sn.keras"
    assert cli.main(["apply", str(source), str(target), "--policy", "sngan"]) == 0
    loaded = keras.models.load_model(target)
    assert kerasnorm.constraint_states(loaded)


def test_the_demo_trains(tmp_path):
    sigmas = demo.run(steps=3, out=tmp_path)
    assert max(abs(sigma - 1) for sigma in sigmas.values()) < 1e-3
    assert (tmp_path / "samples.png").stat().st_size > 0


@pytest.mark.skipif(NAME != "jax", reason="JAX's fit is the stateless one")
def test_jax_fit_says_the_constraint_state_is_not_carried():
    model = kerasnorm.apply_normalization(build_discriminator(keras), "sngan")
    images, scores = _data(8)
    model.compile(optimizer="sgd", loss="mse")
    with pytest.warns(UserWarning, match="does not carry the constraint's state"):
        model.fit(images, scores, verbose=0)


def test_a_constraint_given_by_hand_normalizes_in_fit():
    # No state is built before training: inside JAX's stateless step none can
    # be made, so each step solves sigma from scratch, and says so.
    dense = keras.layers.Dense(3, kernel_constraint=kerasnorm.SpectralNorm())
    model = keras.Sequential([keras.Input((4,)), dense])
    model.compile(optimizer=keras.optimizers.SGD(0.5), loss="mse")
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(16, 4)), rng.normal(size=(16, 3)) * 10
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.fit(x, y, batch_size=8, epochs=2, verbose=0)
    said = [w for w in caught if "sigma from scratch" in str(w.message)]
    assert bool(said) == (NAME == "jax")
    kernel = keras.ops.convert_to_numpy(dense.kernel).astype("float64")
    assert abs(np.linalg.svd(kernel, compute_uv=False)[0] - 1) < 1e-5


@pytest.mark.parametrize("mode", MODES)
def test_operator_norm_holds_each_convolution_on_its_input(mode):
    keras.utils.set_random_seed(0)
    model = kerasnorm.apply_normalization(
        build_discriminator(keras), "sngan", mode=mode, operator_norm=True
    )
    _fit(model)
    if mode == "reparam":
        model(_data(1)[0], training=True)  # tracked on the last update
    for name in ("conv1", "conv2"):
        layer = model.get_layer(name)
        conv = getattr(layer, "layer", layer)
        if mode == "reparam":
            kernel = layer.effective_kernels()["kernel"]
        else:
            kernel = conv.kernel
        geometry = kerasnorm.ConvGeometry.of_layer(conv, layer.input.shape)
        operator = ConvOperator(kernel, "dense", geometry)
        basis = np.eye(operator.shape[0], dtype="float32")
        matrix = keras.ops.convert_to_numpy(operator.forward(basis)).astype("float64")
        assert abs(np.linalg.svd(matrix, compute_uv=False)[0] - 1) < 1e-3
    assert kerasnorm.lipschitz_bound(model).product == pytest.approx(1.0, abs=3e-3)


def write_reference(path: pathlib.Path) -> None:
    """Writes the weights and outputs of `_reference_run` on this backend."""
    np.savez(path, *_reference_run())


def _reference_run() -> list[np.ndarray]:
    """A normalized GAN pair trained a few steps, from weights that do not
    depend on the backend's random numbers."""
    rng = np.random.default_rng(1)
    results = []
    for mode in MODES:
        d = kerasnorm.apply_normalization(
            build_discriminator(keras), "sngan", mode=mode
        )
        g = kerasnorm.apply_normalization(build_generator(keras), "progan")
        for model in (d, g):
            model.set_weights(
                [
                    rng.normal(0, 0.2, w.shape).astype("float32")
                    for w in model.get_weights()
                ]
            )
        _fit(d, learning_rate=1e-2)
        images, _ = _data(4, seed=2)
        z = rng.normal(size=(4, demo.LATENT)).astype("float32")
        # Trainable weights only: the trackers' singular vectors may come out
        # with the other sign on another backend.
        trained = [keras.ops.convert_to_numpy(w) for w in d.trainable_weights]
        results += [*trained, d.predict(images, verbose=0), g.predict(z, verbose=0)]
    return results


@pytest.mark.skipif(
    "KERASNORM_REFERENCE" not in os.environ, reason="no reference run to compare with"
)
def test_the_same_numbers_as_tensorflow():
    reference = np.load(os.environ["KERASNORM_REFERENCE"])
    ours = _reference_run()
    assert len(ours) == len(reference.files)
    for index, value in enumerate(ours):
        assert np.allclose(value, reference[f"arr_{index}"], rtol=1e-4, atol=1e-5), (
            index
        )
