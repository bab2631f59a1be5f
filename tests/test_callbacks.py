"""SpectralNormMonitor logs the sigma an SVD finds, where Keras users look for it."""

import glob

import numpy as np
import pytest
import tensorflow as tf
import zoo
from helpers import top_singular_value

import kerasnorm
from kerasnorm.adapters import ADAPTERS, active_adapter
from kerasnorm.callbacks import (
    MONITOR_CLASSES,
    SpectralNormMonitor,
    normalized_sigmas,
)
from kerasnorm.errors import KerasNormTypeError, KerasNormValueError

# Layer of the zoo's SNGAN discriminator -> (kernel attribute, layout).
SNGAN_KERNELS = {
    "dwconv": [("depthwise_kernel", "depthwise")],
    "sepconv": [("depthwise_kernel", "depthwise"), ("pointwise_kernel", "dense")],
    "conv": [("kernel", "dense")],
    "dense": [("kernel", "dense")],
    "embedding": [("embeddings", "dense")],
}


def _data(seed=0, count=16):
    rng = np.random.default_rng(seed)
    images = rng.normal(size=(count, *zoo.IMAGE_SHAPE)).astype("float32")
    labels = rng.integers(0, zoo.NUM_CLASSES, size=(count, 1)).astype("int32")
    return [images, labels], rng.normal(size=(count, 1)).astype("float32")


def _kernels(model, adapter) -> dict[str, np.ndarray]:
    """Each normalized kernel, keyed as the monitor keys it, as numpy.

    For a wrapped layer, the kernel its fold() computes with.
    """
    kernels = {}
    for name, slots in SNGAN_KERNELS.items():
        layer = model.get_layer(name)
        if isinstance(layer, adapter.SpectralNormalization):
            layer = layer.fold()
        for attribute, layout in slots:
            key = f"sigma/{name}" + (f"/{attribute}" if len(slots) > 1 else "")
            # Keras 3 calls a DepthwiseConv2D's kernel `kernel`.
            kernel = getattr(layer, attribute, None)
            if kernel is None:
                kernel = layer.kernel
            kernels[key] = (np.array(kernel), layout)
    return kernels


@pytest.mark.parametrize("mode", ["constraint", "reparam"])
def test_logged_sigmas_are_the_svd_of_each_kernel(adapter, mode):
    keras = adapter.keras
    model = kerasnorm.apply_normalization(
        zoo.sngan_discriminator(keras), "sngan", mode=mode
    )
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mse")
    monitor = SpectralNormMonitor.for_model(model)
    batches = []

    def record(batch, logs):
        batches.append((dict(logs), _kernels(model, adapter)))

    recorder = keras.callbacks.LambdaCallback(on_train_batch_end=record)
    x, y = _data()
    history = model.fit(
        x, y, batch_size=4, epochs=2, callbacks=[monitor, recorder], verbose=0
    )
    assert len(batches) == 8
    for logs, kernels in batches:
        assert set(kernels) <= set(logs)
        for key, (kernel, layout) in kernels.items():
            np.testing.assert_allclose(
                logs[key], top_singular_value(kernel, layout), rtol=1e-5, err_msg=key
            )
            # What SN is for: the effective kernel has spectral norm ~1.
            assert abs(logs[key] - 1.0) < 0.05, (key, logs[key])
    # History keeps the epoch logs: one value per epoch, the last one now.
    last = _kernels(model, adapter)
    for key, (kernel, layout) in last.items():
        assert len(history.history[key]) == 2
        np.testing.assert_allclose(
            history.history[key][-1], top_singular_value(kernel, layout), rtol=1e-5
        )


def test_every_other_batch_to_the_logs_and_tensorboard(adapter, tmp_path):
    """`every` counts batches across epochs; TensorBoard gets the same values."""
    keras = adapter.keras
    model = kerasnorm.apply_normalization(zoo.sngan_discriminator(keras), "sngan")
    model.compile(optimizer="adam", loss="mse")
    monitor = SpectralNormMonitor.for_model(model, log_dir=tmp_path, every=2)
    logged = []
    recorder = keras.callbacks.LambdaCallback(
        on_train_batch_end=lambda batch, logs: logged.append(logs.get("sigma/conv"))
    )
    x, y = _data(count=12)
    model.fit(x, y, batch_size=4, epochs=2, callbacks=[monitor, recorder], verbose=0)
    assert [value is not None for value in logged] == [False, True] * 3
    scalars = {}
    for path in glob.glob(str(tmp_path / "events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                assert value.metadata.plugin_data.plugin_name == "scalars"
                scalars.setdefault(value.tag, {})[event.step] = float(
                    tf.make_ndarray(value.tensor)
                )
    assert set(scalars) == set(_kernels(model, adapter))
    assert all(sorted(steps) == [2, 4, 6] for steps in scalars.values())
    np.testing.assert_allclose(
        [scalars["sigma/conv"][step] for step in (2, 4, 6)], logged[1::2], rtol=1e-6
    )
    for key, (kernel, layout) in _kernels(model, adapter).items():
        np.testing.assert_allclose(
            scalars[key][6], top_singular_value(kernel, layout), rtol=1e-5
        )


def test_nested_models_are_keyed_by_path(adapter):
    _, _, combined = zoo.gan(adapter.keras)
    new = kerasnorm.apply_normalization(combined, "sagan", mode="reparam")
    assert sorted(normalized_sigmas(new)) == [
        "discriminator/d_conv_1",
        "discriminator/d_conv_2",
        "discriminator/d_dense",
        "generator/g_deconv_1",
        "generator/g_deconv_2",
        "generator/g_dense",
    ]
    deconv = new.get_layer("generator").get_layer("g_deconv_1").fold()
    np.testing.assert_allclose(
        normalized_sigmas(new)["generator/g_deconv_1"],
        top_singular_value(np.array(deconv.kernel), "transpose"),
        rtol=1e-5,
    )


def test_unnormalized_kernels_are_left_out(adapter):
    model = zoo.gan(adapter.keras)[1]
    assert normalized_sigmas(model) == {}
    constrained = kerasnorm.apply_normalization(model, "sngan")
    assert sorted(normalized_sigmas(constrained)) == ["d_conv_1", "d_conv_2", "d_dense"]


def test_a_custom_loop_drives_the_monitor(adapter):
    model = kerasnorm.apply_normalization(zoo.gan(adapter.keras)[1], "sngan")
    monitor = SpectralNormMonitor.for_model(model)
    monitor.set_model(model)
    logs = {}
    monitor.on_train_batch_end(0, logs)
    assert sorted(logs) == ["sigma/d_conv_1", "sigma/d_conv_2", "sigma/d_dense"]


def test_each_keras_gets_a_callback_of_its_own(adapter):
    model = zoo.gan(adapter.keras)[1]
    monitor = SpectralNormMonitor.for_model(model)
    assert isinstance(monitor, adapter.keras.callbacks.Callback)
    assert type(monitor) is MONITOR_CLASSES[adapter.name]
    assert issubclass(SpectralNormMonitor, active_adapter().keras.callbacks.Callback)


def test_a_monitor_of_the_other_keras_is_refused_by_fit(adapter):
    keras = adapter.keras
    model = kerasnorm.apply_normalization(zoo.gan(keras)[1], "sngan")
    model.compile(optimizer="adam", loss="mse")
    (other,) = [name for name in MONITOR_CLASSES if name != adapter.name]
    x = np.zeros((4, *zoo.IMAGE_SHAPE), "float32")
    with pytest.raises(KerasNormTypeError, match="for_model"):
        model.fit(x, np.zeros((4, 1)), callbacks=[MONITOR_CLASSES[other]()], verbose=0)


def test_every_must_be_a_positive_int():
    with pytest.raises(KerasNormValueError, match="every"):
        SpectralNormMonitor(every=0)
    with pytest.raises(KerasNormTypeError, match="every"):
        SpectralNormMonitor(every=1.5)


def test_there_is_one_monitor_class_per_keras():
    assert sorted(MONITOR_CLASSES) == sorted(adapter.name for adapter in ADAPTERS)
