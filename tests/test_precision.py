"""Mixed precision and XLA: rewritten models train, finite and normalized."""

import numpy as np
import pytest
import zoo
from helpers import adapter_named, some_by_default, top_singular_value

import kerasnorm

STEPS = 20


def _kernels_and_layouts(model, adapter):
    """(effective kernel, layout) of every normalized layer of `model`."""
    found = []
    for layer in model.layers:
        if isinstance(layer, adapter.SpectralNormalization):
            kernels = layer.effective_kernels().values()
            found += [
                (np.asarray(k, "float32"), kernel.layout)
                for k, kernel in zip(kernels, layer.kernels(), strict=True)
            ]
        elif isinstance(
            getattr(layer, "kernel_constraint", None), adapter.SpectralNorm
        ):
            found.append(
                (np.asarray(layer.kernel, "float32"), layer.kernel_constraint.layout)
            )
    return found


def _train(model, adapter, steps=STEPS, jit_compile=False):
    model.compile(
        optimizer=adapter.keras.optimizers.Adam(1e-3),
        loss="mse",
        jit_compile=jit_compile,
    )
    x = np.random.default_rng(0).normal(size=(steps * 4, *model.input_shape[1:]))
    y = np.random.default_rng(1).normal(size=(steps * 4, *model.output_shape[1:]))
    history = model.fit(
        x.astype("float32"), y.astype("float32"), batch_size=4, verbose=0
    )
    return history.history["loss"]


@pytest.mark.parametrize("mode", ["constraint", "reparam"])
@pytest.mark.parametrize(
    "policy", ["mixed_float16", pytest.param("mixed_bfloat16", marks=pytest.mark.slow)]
)
def test_mixed_precision_global_policy(adapter, mode, policy):
    adapter.keras.mixed_precision.set_global_policy(policy)
    model = kerasnorm.apply_normalization(
        zoo.dcgan_discriminator(adapter.keras), "sngan", mode=mode
    )
    assert model.get_layer("conv_1").compute_dtype == policy.split("_")[1]
    losses = _train(model, adapter)
    assert np.all(np.isfinite(losses))
    assert all(np.all(np.isfinite(np.asarray(w))) for w in model.weights)
    normalized = _kernels_and_layouts(model, adapter)
    assert len(normalized) == 3
    for kernel, layout in normalized:
        np.testing.assert_allclose(top_singular_value(kernel, layout), 1.0, atol=1e-2)
    _assert_sigma_states_in(model, adapter, "float32")


def _assert_sigma_states_in(model, adapter, dtype: str) -> None:
    """Every tracked-vector state of `model`, wrapper's or constraint's, is `dtype`."""
    for layer in model.layers:
        for weight in layer.non_trainable_weights:
            if "vectors" in weight.name:
                assert weight.dtype == dtype
        constraint = getattr(layer, "kernel_constraint", None)
        if isinstance(constraint, adapter.SpectralNorm):
            for _, state, _ in constraint._states.values():
                assert state.dtype == dtype


@pytest.mark.parametrize("mode", ["constraint", "reparam"])
def test_float64_models_train_with_float64_sigma(adapter, mode):
    # The vectors follow the kernel's precision: float64 kernels keep it.
    adapter.keras.mixed_precision.set_global_policy("float64")
    model = kerasnorm.apply_normalization(
        zoo.dcgan_discriminator(adapter.keras), "sngan", mode=mode
    )
    conv = model.get_layer("conv_1")
    assert (conv.layer if mode == "reparam" else conv).kernel.dtype == "float64"
    losses = _train(model, adapter, steps=4)
    assert np.all(np.isfinite(losses))
    normalized = _kernels_and_layouts(model, adapter)
    assert len(normalized) == 3
    for kernel, layout in normalized:
        assert top_singular_value(kernel, layout) == pytest.approx(1.0, abs=1e-3)
    _assert_sigma_states_in(model, adapter, "float64")


@pytest.mark.parametrize("mode", ["constraint", "reparam"])
def test_per_layer_dtype_policies(adapter, mode):
    model = zoo.mixed_precision_discriminator(adapter.keras)
    new = kerasnorm.apply_normalization(model, "sngan", mode=mode)
    # A wrapper computes as the layer it wraps, not in the global float32.
    for old, layer in zip(model.layers, new.layers, strict=True):
        assert layer.dtype_policy.name == old.dtype_policy.name, layer.name
    losses = _train(new, adapter)
    assert np.all(np.isfinite(losses))
    for kernel, layout in _kernels_and_layouts(new, adapter):
        np.testing.assert_allclose(top_singular_value(kernel, layout), 1.0, atol=1e-2)


def test_mixed_float16_generator_with_pixel_norm(adapter):
    adapter.keras.mixed_precision.set_global_policy("mixed_float16")
    model = kerasnorm.apply_normalization(
        zoo.progan_generator(adapter.keras), ["progan", "sagan"]
    )
    norms = [layer for layer in model.layers if isinstance(layer, adapter.PixelNorm)]
    assert norms and all(layer.compute_dtype == "float16" for layer in norms)
    assert np.all(np.isfinite(_train(model, adapter)))


# XLA compiles each kernel's tracking loop, 10-20 s a model: the default
# run covers one case, `-m slow` the others.
JIT_CASES = some_by_default(
    {("keras3", "constraint")}, ["keras3", "tf_keras"], ["constraint", "reparam"]
)


@pytest.mark.parametrize("flavour, mode", JIT_CASES)
def test_jit_compiled_train_steps(flavour, mode):
    adapter = adapter_named(flavour)
    # zoo.gan's generator upsamples with Conv2DTranspose: tf-keras's
    # UpSampling2D has a gradient XLA cannot compile on CPU.
    generator = kerasnorm.apply_normalization(
        zoo.gan(adapter.keras)[0], ["progan", "sagan"], mode=mode
    )
    assert any(isinstance(layer, adapter.PixelNorm) for layer in generator.layers)
    discriminator = kerasnorm.apply_normalization(
        zoo.dcgan_discriminator(adapter.keras), "sngan", mode=mode
    )
    for model in (generator, discriminator):
        losses = _train(model, adapter, steps=3, jit_compile=True)
        assert np.all(np.isfinite(losses))
        for kernel, layout in _kernels_and_layouts(model, adapter):
            np.testing.assert_allclose(
                top_singular_value(kernel, layout), 1.0, atol=1e-3
            )
