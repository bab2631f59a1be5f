"""`SpectralNormMonitor`: the exact sigma of every normalized kernel, as training goes.

Spectral normalization only estimates sigma from step to step; the monitor
checks it with an SVD. `normalized_sigmas(model)` gives the numbers; the
callback logs them during `fit`, into the logs (hence `History`) and, given
a `log_dir`, to TensorBoard.

A Keras callback must subclass its own Keras's `Callback`, so there is one
monitor class per Keras, alike but for that base class:
`SpectralNormMonitor` is the one of the Keras that `tf.keras` is (Keras 3
unless `TF_USE_LEGACY_KERAS=1`, as for `kerasnorm.PixelNorm`), and
`SpectralNormMonitor.for_model(model)` makes one for whichever Keras
`model` is from.
"""

from __future__ import annotations

import os

import numpy as np

from kerasnorm.actions import spectral_constraint
from kerasnorm.adapters import ADAPTERS, active_adapter, adapter_for
from kerasnorm.errors import KerasNormTypeError
from kerasnorm.layers.kernels import constrained_by, find_kernels, walk_layers
from kerasnorm.layers.tracking import check_int
from kerasnorm.ops import layouts
from kerasnorm.ops import sigma as sigma_ops


def normalized_sigmas(model) -> dict[str, float]:
    """The largest singular value of every spectrally normalized kernel, by SVD.

    A kernel counts when its layer has a `SpectralNorm` constraint on it
    (alone or in a `ConstraintChain`), or is wrapped in
    `SpectralNormalization`. Sigma is taken of the kernel's matrix view
    (`kerasnorm.ops.layouts.kernel_matrix`, in the layer's layout), in
    float64. For a wrapped layer it is the sigma of the kernel the wrapper
    computes with at inference, `W / sigma_estimate(W)`, so it is close to
    1 whatever the raw kernel's is. Layers that are not built are left out.
    A convolution normalized by its operator norm (`operator_norm=True`)
    reports that norm, on the input shape it is normalized for: the
    convolution's matrix is too large for an SVD, so it is solved by block
    Lanczos run to convergence (`kerasnorm.ops.sigma.solve`, float32,
    relative error about 1e-7 against the SVD of the unrolled operator in
    the tests).

    Args:
        model: A Keras 3 or tf-keras model (or layer holding layers).

    Returns:
        Sigma by layer path: the layer's name, after the names of the nested
        models holding it (`"discriminator/conv1"`), and, for layers with
        several normalized kernels, the kernel's path in the layer
        (`"sep/depthwise_kernel"`, `"lstm/lstm_cell/recurrent_kernel"`,
        `"attention/query/kernel"`).

    Example:

    >>> from kerasnorm.demo import build_discriminator
    >>> d = kerasnorm.apply_normalization(build_discriminator(keras), "sngan")
    >>> sorted(normalized_sigmas(d))
    ['conv1', 'conv2', 'score']
    """
    adapter = adapter_for(model)
    sigmas = {}
    for path, layer in walk_layers(model, adapter):
        if not layer.built:
            continue
        if isinstance(layer, adapter.SpectralNormalization):
            effective = layer.effective_kernels()
            geometries = layer.geometries()
            found = {
                kernel: (effective[kernel.path], geometries[kernel.path])
                for kernel in layer.kernels()
            }
        else:
            found = {
                kernel: (adapter.read_master(kernel.variable), geometry)
                for kernel in find_kernels(layer, adapter)
                for spectral in [spectral_constraint(constrained_by(kernel))]
                if spectral is not None
                for geometry in [spectral.geometry]
            }
        for kernel, (value, geometry) in found.items():
            key = path if len(found) == 1 else f"{path}/{kernel.path}"
            if geometry is None:
                sigmas[key] = _sigma(value, kernel.layout, adapter)
            else:
                sigmas[key] = sigma_ops.norm_of(value, kernel.layout, geometry)
    return sigmas


def _sigma(kernel, layout: str, adapter) -> float:
    # In NumPy: float64 on every backend (JAX computes in float32 unless
    # told otherwise at start-up).
    kernel = adapter.to_numpy(kernel).astype(np.float64)
    rows, cols = layouts.matrix_axes(layout, kernel.shape)
    matrix = kernel.transpose([*rows, *cols]).reshape(
        layouts.matrix_shape(kernel.shape, layout)
    )
    return float(np.linalg.svd(matrix, compute_uv=False)[0])


class _TensorBoardScalars:
    """Writes scalars for TensorBoard, through TensorFlow's summary writer.

    TensorFlow is a dependency of kerasnorm on every backend, so the writer
    works on JAX and PyTorch too; it is imported only when a `log_dir` is
    given.
    """

    def __init__(self, log_dir: str):
        import tensorflow as tf

        self._tf = tf
        self._writer = tf.summary.create_file_writer(log_dir)
        # What `tf.summary.scalar` attaches to a scalar so that TensorBoard
        # plots it; written by hand, as `tf.summary.scalar` needs the
        # tensorboard package.
        self._metadata = tf.compat.v1.SummaryMetadata(
            plugin_data=tf.compat.v1.SummaryMetadata.PluginData(plugin_name="scalars"),
            data_class="DATA_CLASS_SCALAR",
        ).SerializeToString()

    def write(self, scalars: dict[str, float], step: int) -> None:
        tf = self._tf
        with self._writer.as_default(step=step):
            for key, value in scalars.items():
                tf.summary.write(
                    key, tf.constant(value, tf.float32), metadata=self._metadata
                )

    def close(self) -> None:
        self._writer.close()


class SpectralNormMonitorBase:
    """Logs the exact sigma of every normalized kernel during training.

    Every `every` training batches (counted across epochs), at the end of
    the batch, the monitor computes `normalized_sigmas(model)` and adds each
    value to the batch's logs as `"sigma/<layer path>"`, where the callbacks
    after it (and a progress bar) see it; with a `log_dir`, it also writes
    them to TensorBoard as scalars, at the number of batches seen as step.
    At the end of every epoch it adds the values at that time to the
    epoch's logs, which is what `History` keeps:
    `model.fit(...).history["sigma/conv1"]` has one value per epoch.

    With constraints (`mode="constraint"`), the logged sigma is the
    kernel's after the optimizer step and the constraint, so close to the
    constraint's `sigma` (1). With `SpectralNormalization` wrappers it is
    the sigma of the kernel the wrapper computes with, also close to 1;
    the raw kernel's sigma is free.

    Outside `fit`, drive it as Keras does: `set_model(model)`, then
    `on_train_batch_end(step, logs)` with a dict that receives the values.

    Args:
        log_dir: A directory for TensorBoard event files, or None.
        every: Log every `every` training batches. Each time costs one SVD
            per normalized kernel. Defaults to `1`.

    Raises:
        KerasNormTypeError: If `every` is not an int, or (in `set_model`)
            the model belongs to the other Keras; use `for_model`.
        KerasNormValueError: If `every` is below 1.

    Example:

    >>> from kerasnorm.demo import build_discriminator
    >>> d = kerasnorm.apply_normalization(build_discriminator(keras), "sngan")
    >>> d.compile(optimizer="adam", loss="mse")
    >>> monitor = SpectralNormMonitor.for_model(d)
    >>> history = d.fit(
    ...     np.zeros((8, 16, 16, 3)), np.ones((8, 1)), epochs=2,
    ...     callbacks=[monitor], verbose=0,
    ... )
    >>> sigmas = history.history["sigma/conv2"]  # one per epoch
    >>> len(sigmas), round(sigmas[-1], 2)
    (2, 1.0)
    """

    def __init__(self, log_dir: str | os.PathLike | None = None, every: int = 1):
        super().__init__()
        self.log_dir = None if log_dir is None else os.fspath(log_dir)
        self.every = check_int("every", every)
        self._batches_seen = 0
        self._writer = None

    @classmethod
    def for_model(
        cls, model, log_dir: str | os.PathLike | None = None, every: int = 1
    ) -> SpectralNormMonitorBase:
        """A monitor whose class subclasses the `Callback` of `model`'s Keras.

        Args:
            model: The model it will watch, Keras 3 or tf-keras.
            log_dir: As for the constructor.
            every: As for the constructor.

        Returns:
            A new monitor, not yet attached to `model` (`fit` attaches it).
        """
        return MONITOR_CLASSES[adapter_for(model).name](log_dir=log_dir, every=every)

    def set_model(self, model) -> None:
        keras = adapter_for(model).keras
        if not isinstance(self, keras.callbacks.Callback):
            raise KerasNormTypeError(
                f"This {type(self).__name__} is a callback of another Keras than "
                f"model {model.name!r}, which is a {keras.__name__} model. Create "
                "it with kerasnorm.callbacks.SpectralNormMonitor.for_model(model)."
            )
        super().set_model(model)

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self._batches_seen += 1
        if self._batches_seen % self.every:
            return
        sigmas = self._log(logs)
        if self.log_dir is not None:
            if self._writer is None:
                self._writer = _TensorBoardScalars(self.log_dir)
            self._writer.write(sigmas, step=self._batches_seen)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self._log(logs)

    def on_train_end(self, logs: dict | None = None) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def _log(self, logs: dict | None) -> dict[str, float]:
        """Computes the sigmas and adds them to `logs`, when there are logs."""
        sigmas = {
            f"sigma/{path}": value
            for path, value in normalized_sigmas(self.model).items()
        }
        if logs is not None:
            logs.update(sigmas)
        return sigmas


def _monitor_class(adapter) -> type:
    """The monitor for one Keras: the shared logic on that Keras's `Callback`."""
    return type(
        "SpectralNormMonitor",
        (SpectralNormMonitorBase, adapter.keras.callbacks.Callback),
        {"__doc__": SpectralNormMonitorBase.__doc__, "__module__": __name__},
    )


# The monitor class of each Keras, by adapter name ("keras3", "tf_keras").
MONITOR_CLASSES = {adapter.name: _monitor_class(adapter) for adapter in ADAPTERS}
SpectralNormMonitor = MONITOR_CLASSES[active_adapter().name]
