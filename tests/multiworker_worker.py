"""One worker of the MultiWorkerMirroredStrategy test (run by test_multiworker.py).

Usage: python multiworker_worker.py KERAS MODE OUT.npz, with TF_CONFIG set.

It trains with a custom loop: Keras 3's `fit` does not run under
MultiWorkerMirroredStrategy (keras-team/keras#20585), whatever the model.
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np
import tensorflow as tf

import kerasnorm
from kerasnorm.adapters import ADAPTERS

GLOBAL_BATCH = 8


def main(flavour: str, mode: str, out: str) -> None:
    keras = next(a for a in ADAPTERS if a.name == flavour).keras
    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    with strategy.scope():
        keras.utils.set_random_seed(0)
        image = keras.Input((8, 8, 3))
        x = keras.layers.Conv2D(8, 3, strides=2, padding="same", name="conv")(image)
        x = keras.layers.LeakyReLU(0.2)(x)
        x = keras.layers.Flatten()(x)
        model = keras.Model(
            image, keras.layers.Dense(1, name="score")(x), name="critic"
        )
        model = kerasnorm.apply_normalization(model, "sngan", mode=mode)
        optimizer = keras.optimizers.SGD(0.05)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(32, 8, 8, 3)).astype("float32")
    y = rng.normal(size=(32, 1)).astype("float32")
    data = tf.data.Dataset.from_tensor_slices((x, y)).batch(GLOBAL_BATCH)
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = (
        tf.data.experimental.AutoShardPolicy.DATA
    )
    data = strategy.experimental_distribute_dataset(data.with_options(options))

    def replica_step(inputs, targets):
        with tf.GradientTape() as tape:
            errors = tf.reduce_mean(
                tf.square(model(inputs, training=True) - targets), 1
            )
            loss = tf.nn.compute_average_loss(errors, global_batch_size=GLOBAL_BATCH)
        variables = model.trainable_variables
        gradients = tape.gradient(loss, variables)
        optimizer.apply_gradients(zip(gradients, variables, strict=True))

    @tf.function
    def step(inputs, targets):
        strategy.run(replica_step, args=(inputs, targets))

    for inputs, targets in data:
        step(inputs, targets)
    np.savez(out, *[np.asarray(w) for w in model.weights])


if __name__ == "__main__":
    main(*sys.argv[1:4])
