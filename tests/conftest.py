"""Shared fixtures: every Keras-facing test runs on Keras 3 and on tf-keras."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np
import pytest
import tensorflow as tf

from kerasnorm.adapters import ADAPTERS


@pytest.fixture(params=ADAPTERS, ids=lambda adapter: adapter.name)
def adapter(request):
    """The adapter of one Keras; `adapter.keras` is the Keras package."""
    return request.param


@pytest.fixture(autouse=True)
def _seeded():
    """Each test starts from the same random state and a float32 policy."""
    np.random.seed(0)
    tf.random.set_seed(0)
    yield
    for adapter in ADAPTERS:
        adapter.keras.mixed_precision.set_global_policy("float32")
        adapter.keras.backend.clear_session()
