"""EqualizedLR and the equalized_lr policy: ProGAN's section 4.1 on both Kerases.

The dynamics are checked, not just the shapes: one SGD step moves the
effective kernel by c**2 times what it moves a plain kernel, one Adam step
by c times, biases by lr_multiplier**2 under SGD.
"""

import copy
import math

import numpy as np
import pytest

import kerasnorm
from kerasnorm.demo import build_discriminator, build_generator
from kerasnorm.errors import KerasNormTypeError, KerasNormValueError

# (layer factory, input shape, fan_in of each kernel by path): fan_in is the
# number of inputs each output unit sees, written out by hand.
LAYERS = {
    "Dense": (lambda layers: layers.Dense(6), (4, 10), {"kernel": 10}),
    "Conv1D": (lambda layers: layers.Conv1D(5, 3), (2, 9, 4), {"kernel": 12}),
    "Conv2D": (
        lambda layers: layers.Conv2D(5, 3, padding="same"),
        (2, 8, 8, 3),
        {"kernel": 27},
    ),
    "Conv3D": (lambda layers: layers.Conv3D(2, 2), (2, 4, 4, 4, 3), {"kernel": 24}),
    "Conv2DTranspose": (
        lambda layers: layers.Conv2DTranspose(7, 3, strides=2),
        (2, 5, 5, 4),
        {"kernel": 36},
    ),
    "DepthwiseConv2D": (
        lambda layers: layers.DepthwiseConv2D(3, depth_multiplier=2),
        (2, 7, 7, 3),
        {"depthwise_kernel": 9},
    ),
    "SeparableConv2D": (
        lambda layers: layers.SeparableConv2D(5, 3),
        (2, 7, 7, 3),
        {"depthwise_kernel": 9, "pointwise_kernel": 3},
    ),
}


def _built(adapter, name):
    make, shape, fan_ins = LAYERS[name]
    layer = make(adapter.layers)
    layer.build(shape)
    x = np.random.normal(size=shape).astype("float32")
    return layer, x, fan_ins


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_wrapping_keeps_the_function_and_stores_w_over_c(adapter, name):
    layer, x, fan_ins = _built(adapter, name)
    # A non-zero bias, to see it is left alone at lr_multiplier 1.
    layer.bias.assign(np.random.normal(size=layer.bias.shape).astype("float32"))
    plain = [w.numpy().copy() for w in layer.weights]
    expected = np.asarray(layer(x))
    wrapper = adapter.EqualizedLR(layer)
    got = np.asarray(wrapper(x))
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
    scales = wrapper.coefficients()
    assert sorted(scales) == sorted(fan_ins)
    for path, fan_in in fan_ins.items():
        assert scales[path] == pytest.approx(math.sqrt(2.0 / fan_in), rel=1e-12)
    by_name = {id(k.variable): k.path for k in wrapper.kernels()}
    for weight, before in zip(layer.weights, plain, strict=True):
        path = by_name.get(id(weight))
        stored = weight.numpy()
        if path is None:  # the bias
            np.testing.assert_array_equal(stored, before)
        else:
            np.testing.assert_allclose(stored * scales[path], before, rtol=1e-6)


def _dense_pair(adapter, lr_multiplier=1.0):
    """A plain Dense and an EqualizedLR around a copy of it, same weights."""
    plain = adapter.layers.Dense(3)
    plain.build((None, 8))
    plain.kernel.assign(np.random.normal(size=(8, 3)).astype("float32"))
    plain.bias.assign(np.random.normal(size=(3,)).astype("float32"))
    inner = adapter.layers.Dense(3)
    inner.build((None, 8))
    inner.set_weights(plain.get_weights())
    wrapper = adapter.EqualizedLR(inner, lr_multiplier=lr_multiplier)
    wrapper.build((None, 8))
    return plain, wrapper


def _effective(wrapper):
    return [np.asarray(w) for w in wrapper.folded_weights()]


def _one_step(adapter, layer, optimizer, x, target):
    import tensorflow as tf

    variables = layer.trainable_weights
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(tf.square(layer(x) - target))
    gradients = tape.gradient(loss, variables)
    optimizer.apply_gradients(zip(gradients, variables, strict=True))


@pytest.mark.parametrize("lr_multiplier", [1.0, 0.01])
def test_one_sgd_step_moves_the_kernel_c_squared_times_as_far(adapter, lr_multiplier):
    plain, wrapper = _dense_pair(adapter, lr_multiplier)
    c = wrapper.coefficients()["kernel"]
    assert c == pytest.approx(math.sqrt(2 / 8) * lr_multiplier)
    x = np.random.normal(size=(16, 8)).astype("float32")
    target = np.random.normal(size=(16, 3)).astype("float32")
    np.testing.assert_allclose(wrapper(x), plain(x), rtol=1e-5, atol=1e-5)
    kernel0, bias0 = plain.kernel.numpy().copy(), plain.bias.numpy().copy()
    # The wrapper's rate is divided by lr_multiplier**2, so that both steps
    # move the weights by amounts float32 resolves.
    sgd = adapter.keras.optimizers.SGD
    _one_step(adapter, plain, sgd(0.1), x, target)
    _one_step(adapter, wrapper, sgd(0.1 / lr_multiplier**2), x, target)
    kernel, bias = _effective(wrapper)
    moved = plain.kernel.numpy() - kernel0
    np.testing.assert_allclose(
        kernel - kernel0, (c / lr_multiplier) ** 2 * moved, rtol=1e-3, atol=1e-7
    )
    # Biases learn at lr_multiplier**2 the plain rate (unchanged at 1).
    np.testing.assert_allclose(
        bias - bias0, plain.bias.numpy() - bias0, rtol=1e-3, atol=1e-7
    )


def test_one_adam_step_moves_the_kernel_c_times_as_far(adapter):
    plain, wrapper = _dense_pair(adapter)
    c = wrapper.coefficients()["kernel"]
    x = np.random.normal(size=(16, 8)).astype("float32")
    target = np.random.normal(size=(16, 3)).astype("float32")
    kernel0 = plain.kernel.numpy().copy()
    # An epsilon far below the gradients, so that Adam's step is
    # scale-invariant to float precision.
    adam = adapter.keras.optimizers.Adam
    _one_step(adapter, plain, adam(1e-3, epsilon=1e-12), x, target)
    _one_step(adapter, wrapper, adam(1e-3, epsilon=1e-12), x, target)
    kernel, _ = _effective(wrapper)
    moved = plain.kernel.numpy() - kernel0
    assert np.abs(moved).min() > 1e-4  # every weight moved
    np.testing.assert_allclose(kernel - kernel0, c * moved, rtol=1e-3)


def test_reinitialize_draws_v_from_a_standard_normal(adapter):
    dense = adapter.layers.Dense(256)
    dense.build((None, 256))
    dense.bias.assign(np.full((256,), 0.5, "float32"))
    wrapper = adapter.EqualizedLR(dense, lr_multiplier=0.5, reinitialize=True)
    wrapper.build((None, 256))
    stored = dense.kernel.numpy()
    # V ~ N(0, 1 / lr_multiplier**2): 65,536 draws pin the std to 1 %.
    assert abs(stored.std() - 2.0) < 0.02 and abs(stored.mean()) < 0.02
    kernel, bias = _effective(wrapper)
    np.testing.assert_allclose(kernel, stored * math.sqrt(2 / 256) * 0.5, rtol=1e-6)
    np.testing.assert_allclose(bias, 0.5, rtol=1e-6)  # converted, not redrawn


def _policy_rows(plan, rule_prefix):
    return [e for e in plan.edits if e.rule.startswith(rule_prefix)]


def test_policy_rescales_every_kernel_keeping_the_function(adapter):
    keras = adapter.keras
    model = build_discriminator(keras)
    before = [w.copy() for w in model.get_weights()]
    x = np.random.normal(size=(2, 16, 16, 3)).astype("float32")
    out = kerasnorm.apply_normalization(model, "equalized_lr")
    np.testing.assert_allclose(out(x), model(x), rtol=1e-4, atol=1e-5)
    for old, new in zip(before, model.get_weights(), strict=True):
        np.testing.assert_array_equal(old, new)  # the user's model untouched
    wrapped = {
        layer.name: layer
        for layer in out.layers
        if isinstance(layer, adapter.EqualizedLR)
    }
    kernel_layers = [
        layer.name
        for layer in model.layers
        if getattr(layer, "kernel", None) is not None
    ]
    assert sorted(wrapped) == sorted(kernel_layers)
    # A linear output layer gets gain 1, the others sqrt(2).
    plan = kerasnorm.plan(model, "equalized_lr")
    (output_edit,) = _policy_rows(plan, "equalized_lr: output")
    assert {wrapped[output_edit.layer].gain} == {1.0}
    hidden = [e.layer for e in _policy_rows(plan, "equalized_lr: hidden")]
    assert hidden and all(
        wrapped[n].gain == pytest.approx(math.sqrt(2)) for n in hidden
    )
    statuses = {s.status for s in plan.kernels()}
    assert statuses == {"rescaled"}
    # Applying it again changes nothing: every layer is wrapped already.
    again = kerasnorm.plan(out, "equalized_lr")
    assert not again.changes
    assert {e.skipped for e in again.edits} == {"already wrapped in EqualizedLR"}


def test_progan_section_4_on_a_generator(adapter):
    keras = adapter.keras
    generator = build_generator(keras)
    out = kerasnorm.apply_normalization(
        generator, ["progan", "equalized_lr"], role="generator"
    )
    kinds = [type(layer).__name__ for layer in out.layers]
    assert "PixelNorm" in kinds and "EqualizedLR" in kinds
    plan = kerasnorm.plan(generator, ["progan", "equalized_lr"], role="generator")
    assert not [e for e in plan.edits if e.skipped]
    # Equalized LR keeps the function: the same model with PixelNorm alone
    # computes the same images.
    progan = kerasnorm.apply_normalization(generator, "progan", role="generator")
    z = np.random.normal(size=(3, *generator.input_shape[1:])).astype("float32")
    np.testing.assert_allclose(out(z), progan(z), rtol=1e-4, atol=1e-5)


def test_spectral_normalization_takes_the_layer_first(adapter):
    model = build_discriminator(adapter.keras)
    plan = kerasnorm.plan(model, ["sngan", "equalized_lr"], role="discriminator")
    skipped = _policy_rows(plan, "equalized_lr")
    assert skipped and all(
        e.skipped.startswith("already changed by rule 'sngan") for e in skipped
    )


def test_save_load_and_fold(adapter, tmp_path):
    keras = adapter.keras
    model = build_discriminator(keras)
    out = kerasnorm.apply_normalization(model, "equalized_lr")
    x = np.random.normal(size=(2, 16, 16, 3)).astype("float32")
    path = tmp_path / "d.keras"
    out.save(path)
    loaded = keras.models.load_model(path)
    np.testing.assert_allclose(loaded(x), out(x), rtol=1e-5, atol=1e-6)
    for saved, restored in zip(out.get_weights(), loaded.get_weights(), strict=True):
        np.testing.assert_array_equal(saved, restored)
    folded = kerasnorm.fold(out)
    assert not any(isinstance(layer, adapter.EqualizedLR) for layer in folded.layers)
    np.testing.assert_allclose(folded(x), model(x), rtol=1e-4, atol=1e-5)


def test_mixed_precision(adapter):
    keras = adapter.keras
    keras.mixed_precision.set_global_policy("mixed_float16")
    inputs = keras.Input((6, 6, 3))
    wrapper = adapter.EqualizedLR(adapter.layers.Conv2D(4, 3))
    model = keras.Model(inputs, wrapper(inputs))
    assert wrapper.layer.kernel.dtype == "float32"
    y = np.asarray(model(np.random.normal(size=(2, 6, 6, 3)).astype("float32")))
    assert y.dtype == np.float16 and np.all(np.isfinite(y))


def test_config_round_trip_and_bad_options(adapter):
    wrapper = adapter.EqualizedLR(
        adapter.layers.Dense(3, name="inner"),
        gain=1.0,
        lr_multiplier=0.01,
        name="wrapped",
    )
    config = wrapper.get_config()
    clone = adapter.EqualizedLR.from_config(copy.deepcopy(config))
    assert (clone.gain, clone.lr_multiplier, clone.reinitialize) == (1.0, 0.01, False)
    assert clone.get_config() == config
    with pytest.raises(KerasNormValueError, match="gain"):
        adapter.EqualizedLR(adapter.layers.Dense(3), gain=0)
    with pytest.raises(KerasNormTypeError, match="lr_multiplier"):
        kerasnorm.EqualizeLearningRate(lr_multiplier="fast")
    with pytest.raises(KerasNormValueError, match="coefficients"):
        adapter.EqualizedLR(adapter.layers.Dense(3)).coefficients()


@pytest.mark.parametrize("name", ["LSTM", "MultiHeadAttention", "Embedding"])
def test_composite_layers_keep_the_function_with_a_multiplier(adapter, name):
    layers = adapter.layers
    if name == "LSTM":
        layer, args = layers.LSTM(4), (np.random.normal(size=(2, 5, 3)),)
    elif name == "MultiHeadAttention":
        layer = layers.MultiHeadAttention(num_heads=2, key_dim=3)
        sequence = np.random.normal(size=(2, 5, 6))
        args = (sequence, sequence)
    else:
        layer, args = layers.Embedding(10, 4), (np.array([[1, 2, 9]]),)
    args = tuple(
        np.asarray(a, "int32" if a.dtype.kind == "i" else "float32") for a in args
    )
    expected = np.asarray(layer(*args))
    wrapper = adapter.EqualizedLR(layer, lr_multiplier=0.1)
    np.testing.assert_allclose(wrapper(*args), expected, rtol=1e-4, atol=1e-5)
    scales = wrapper.coefficients()
    kernels = [k.path for k in wrapper.kernels()]
    biases = set(scales) - set(kernels)
    assert bool(biases) == (name != "Embedding")  # an Embedding has none
    assert all(scales[path] == 0.1 for path in biases)
    folded = wrapper.fold() if name != "MultiHeadAttention" else None
    if folded is not None:
        np.testing.assert_allclose(folded(*args), expected, rtol=1e-4, atol=1e-5)


def test_the_plan_graph_shows_the_rescaled_layers(adapter):
    plan = kerasnorm.plan(build_discriminator(adapter.keras), "equalized_lr")
    reasons = dict(plan.to_networkx().nodes(data="reason"))
    rescaled = [n for n, r in reasons.items() if "equalized learning rate" in r]
    assert rescaled == ["conv1", "conv2", "score"]
    assert sorted(e.node for e in plan.changes) == rescaled
