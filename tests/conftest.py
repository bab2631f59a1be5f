"""Shared fixtures: every Keras-facing test runs on Keras 3 and on tf-keras.

On Keras 3's JAX and PyTorch backends (tests/test_backends.py), on Keras 3
alone: kerasnorm serves tf-keras only beside Keras 3 on TensorFlow.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras
import numpy as np
import pytest

from kerasnorm.adapters import ADAPTERS

ON_TENSORFLOW = keras.backend.backend() == "tensorflow"

if ON_TENSORFLOW:
    import tensorflow as tf
    import tf_keras

    # Two logical CPUs for the tf.distribute tests. Devices can be split only
    # before TensorFlow first uses them, so it happens here, at import.
    tf.config.set_logical_device_configuration(
        tf.config.list_physical_devices("CPU")[0],
        [tf.config.LogicalDeviceConfiguration()] * 2,
    )


@pytest.fixture(scope="session")
def mirrored_strategy():
    """One MirroredStrategy over the two logical CPUs for the whole session.

    Several strategies in one process collide in their collective keys.
    """
    return tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])


@pytest.fixture(params=ADAPTERS, ids=lambda adapter: adapter.name)
def adapter(request):
    """The adapter of one Keras; `adapter.keras` is the Keras package."""
    return request.param


@pytest.fixture(autouse=True)
def _seeded():
    """Each test starts from the same random state and a float32 policy."""
    np.random.seed(0)
    if ON_TENSORFLOW:
        tf.random.set_seed(0)
    yield
    for adapter in ADAPTERS:
        adapter.keras.mixed_precision.set_global_policy("float32")
    # Keras 3's clear_session would also run a full garbage collection,
    # which grows with the heap: seconds per test late in a session.
    keras.backend.clear_session(free_memory=False)
    if ON_TENSORFLOW:
        tf_keras.backend.clear_session()
