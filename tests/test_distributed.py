"""Rewritten models under tf.distribute.MirroredStrategy, against one device."""

import numpy as np
import pytest
import tensorflow as tf
from helpers import adapter_named, some_by_default

import kerasnorm

STEPS = 4
GLOBAL_BATCH = 8


def _discriminator(k):
    image = k.Input((8, 8, 3), name="image")
    x = k.layers.Conv2D(8, 3, strides=2, padding="same", name="conv_1")(image)
    x = k.layers.LeakyReLU(0.2)(x)
    x = k.layers.Conv2DTranspose(4, 3, strides=2, padding="same", name="deconv")(x)
    x = k.layers.Flatten()(x)
    return k.Model(image, k.layers.Dense(1, name="score")(x), name="discriminator")


def _generator(k):
    z = k.Input((6,), name="z")
    x = k.layers.Dense(4 * 4 * 8, name="fc")(z)
    x = k.layers.LeakyReLU(0.2, name="fc_act")(x)
    x = k.layers.Reshape((4, 4, 8))(x)
    x = k.layers.Conv2DTranspose(8, 3, strides=2, padding="same", name="up")(x)
    x = k.layers.LeakyReLU(0.2, name="up_act")(x)
    image = k.layers.Conv2D(3, 3, padding="same", activation="tanh", name="to_rgb")(x)
    return k.Model(z, image, name="generator")


def _data(model):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(STEPS * GLOBAL_BATCH, *model.input_shape[1:])).astype(
        "float32"
    )
    y = rng.normal(size=(STEPS * GLOBAL_BATCH, *model.output_shape[1:])).astype(
        "float32"
    )
    return x, y


def _build(adapter, strategy, builder, policy, mode):
    k = adapter.keras
    with strategy.scope():
        k.utils.set_random_seed(0)
        model = kerasnorm.apply_normalization(builder(k), policy, mode=mode)
        model.compile(optimizer=k.optimizers.SGD(0.05), loss="mse")
    return model


def _replicas(variable):
    """The per-replica values of a distributed variable, either Keras."""
    distributed = variable if hasattr(variable, "values") else variable.value
    return [np.asarray(v) for v in distributed.values]


def _spectral_states(model, adapter):
    states = []
    for layer in model.layers:
        if isinstance(layer, adapter.SpectralNormalization):
            states += list(layer._states)
        constraint = getattr(layer, "kernel_constraint", None)
        if isinstance(constraint, adapter.SpectralNorm):
            states += [state for _, state, _ in constraint._states.values()]
    return states


def _train_custom(model, strategy, x, y):
    k = model.optimizer
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(GLOBAL_BATCH)
    dataset = strategy.experimental_distribute_dataset(dataset)

    def replica_step(inputs, targets):
        with tf.GradientTape() as tape:
            outputs = model(inputs, training=True)
            per_example = tf.reduce_mean(
                tf.square(outputs - targets), axis=[1, 2, 3][: len(outputs.shape) - 1]
            )
            loss = tf.nn.compute_average_loss(
                per_example, global_batch_size=GLOBAL_BATCH
            )
        grads = tape.gradient(loss, model.trainable_variables)
        k.apply_gradients(zip(grads, model.trainable_variables, strict=True))

    @tf.function
    def step(inputs, targets):
        strategy.run(replica_step, args=(inputs, targets))

    for inputs, targets in dataset:
        step(inputs, targets)


NETS = {
    "discriminator": (_discriminator, "sngan"),
    "generator": (_generator, ["progan", "sagan"]),
}
# Every combination runs under `-m slow`; the default run covers each Keras,
# net, mode and loop once.
COMBINATIONS = some_by_default(
    {
        ("keras3", "generator", "reparam", "custom"),
        ("tf_keras", "discriminator", "constraint", "fit"),
    },
    ["keras3", "tf_keras"],
    list(NETS),
    ["constraint", "reparam"],
    ["fit", "custom"],
)


@pytest.mark.parametrize("flavour, net, mode, loop", COMBINATIONS)
def test_mirrored_training_matches_one_device(
    mirrored_strategy, flavour, net, mode, loop
):
    adapter = adapter_named(flavour)
    builder, policy = NETS[net]
    single = tf.distribute.OneDeviceStrategy("/cpu:0")
    results = {}
    for label, strategy in (("mirrored", mirrored_strategy), ("single", single)):
        model = _build(adapter, strategy, builder, policy, mode)
        x, y = _data(model)
        if loop == "fit":
            model.fit(x, y, batch_size=GLOBAL_BATCH, shuffle=False, verbose=0)
        else:
            _train_custom(model, strategy, x, y)
        results[label] = model
    mirrored, single_model = results["mirrored"], results["single"]
    assert int(np.asarray(mirrored.optimizer.iterations)) == STEPS
    for a, b in zip(
        mirrored.trainable_weights, single_model.trainable_weights, strict=True
    ):
        np.testing.assert_allclose(
            np.asarray(a), np.asarray(b), atol=1e-5, err_msg=a.name
        )
    states = _spectral_states(mirrored, adapter)
    assert states, "the policy normalized nothing"
    for state in states:
        first, second = _replicas(state)
        np.testing.assert_array_equal(first, second)
    if net == "generator":
        assert any(isinstance(layer, adapter.PixelNorm) for layer in mirrored.layers)


def test_rewriting_inside_the_scope_moves_a_model_into_it(adapter, mirrored_strategy):
    built_outside = _discriminator(adapter.keras)
    with mirrored_strategy.scope():
        model = kerasnorm.apply_normalization(built_outside, "sngan")
        model.compile(optimizer="sgd", loss="mse")
    x, y = _data(model)
    model.fit(x, y, batch_size=GLOBAL_BATCH, verbose=0)
    kernel = np.asarray(model.get_layer("conv_1").kernel).reshape(-1, 8)
    np.testing.assert_allclose(np.linalg.norm(kernel, 2), 1.0, atol=1e-3)


def test_a_model_rewritten_outside_the_scope_cannot_train_inside(
    adapter, mirrored_strategy
):
    model = kerasnorm.apply_normalization(_discriminator(adapter.keras), "sngan")
    x, y = _data(model)
    # Keras's rule for any model: its variables must be created in the scope.
    with pytest.raises((ValueError, AssertionError)):
        with mirrored_strategy.scope():
            model.compile(optimizer="sgd", loss="mse")
        model.fit(x, y, batch_size=GLOBAL_BATCH, verbose=0)
