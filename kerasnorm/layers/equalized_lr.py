"""EqualizedLR: ProGAN's equalized learning rate, shared by both Kerases."""

from __future__ import annotations

import dataclasses
import math

import keras
import numpy as np
from keras import ops

from kerasnorm.layers.kernels import Kernel
from kerasnorm.layers.tracking import check_positive
from kerasnorm.layers.wrapper import KernelWrapperBase
from kerasnorm.ops import layouts


class EqualizedLRBase(KernelWrapperBase):
    """Wraps a layer so that each kernel is stored as `V` and used as `c * V`.

    ProGAN's equalized learning rate (Karras et al., section 4.1): with
    `c = gain * lr_multiplier / sqrt(fan_in)` (He's constant, times
    StyleGAN's learning-rate multiplier), the layer computes with
    `W = c * V` while the optimizer steps on `V`. The gradient reaching `V`
    is `c` times the gradient of `W`, so one SGD step moves `W` by `c**2`
    times what it would move a plain kernel, and one Adam step (whose update
    does not depend on the gradient's scale) by `c` times: every layer then
    learns at the same speed relative to its weights, whatever its fan-in.
    With `lr_multiplier`, biases are stored as `b / lr_multiplier` and used
    as `lr_multiplier * b`, as StyleGAN's mapping network does.

    `fan_in` is the number of inputs each output unit sees: the kernel's
    size divided by its output channels (`kh * kw * in` for a Conv2D,
    whether transposed or not; `kh * kw` for a depthwise kernel; the units
    for an RNN's recurrent kernel), the rows of the kernel's matrix view
    (see `kerasnorm.ops.layouts`).

    Wrapping keeps the layer's function: when the wrapper is built (and
    when the rewrite hands it a model's weights, see `adopt`) it stores
    `V = W / c` and `b / lr_multiplier` in the wrapped layer's variables, so
    `c * V` equals `W` to within an ulp. The wrapped layer's own variables
    hold the stored form: wrapping a built layer converts them in place.
    With `reinitialize=True`, `V` is drawn afresh from
    `N(0, 1 / lr_multiplier**2)` instead, as the paper initializes a new
    network (biases are still converted).

    Args:
        layer: The layer to wrap: any layer with kernels (Dense, Conv1D/2D/3D
            and their transposes, depthwise and separable convolutions,
            Embedding, EinsumDense, MultiHeadAttention, RNN layers, and your
            own; see `kerasnorm.layers.kernels`).
        gain: The gain of He's constant: `sqrt(2)` (for layers followed by a
            ReLU-like activation) by default; `1.0` is usual for a linear
            output layer.
        lr_multiplier: Multiplies the learning rate of the layer's kernels
            and biases. Defaults to `1.0` (biases left as they are); StyleGAN's
            mapping network uses `0.01`.
        reinitialize: Draw `V` from `N(0, 1 / lr_multiplier**2)` rather than
            converting the layer's kernel. Defaults to `False`.
        **kwargs: Base layer keyword arguments, such as `name`.

    Example:

    >>> dense = kerasnorm.EqualizedLR(keras.layers.Dense(4))
    >>> x = np.ones((2, 8), dtype="float32")
    >>> y = dense(x)
    >>> round(dense.coefficients()["kernel"] ** 2 * 8, 6)  # gain**2 / fan_in * 8
    2.0
    >>> folded = dense.fold()  # a plain Dense with kernel c * V
    >>> bool(np.allclose(folded(x), y, atol=1e-6))
    True

    Reference:
        Karras et al., "Progressive Growing of GANs for Improved Quality,
        Stability, and Variation", ICLR 2018, section 4.1.
    """

    _verb = "rescale"

    def __init__(
        self,
        layer,
        gain: float = math.sqrt(2.0),
        lr_multiplier: float = 1.0,
        reinitialize: bool = False,
        **kwargs,
    ):
        super().__init__(layer, **kwargs)
        self.gain = check_positive("gain", gain)
        self.lr_multiplier = check_positive("lr_multiplier", lr_multiplier)
        self.reinitialize = bool(reinitialize)
        self._weights_and_scales = ()

    def coefficients(self) -> dict[str, float]:
        """The runtime coefficient of each rescaled weight, by its path.

        `gain * lr_multiplier / sqrt(fan_in)` for a kernel,
        `lr_multiplier` for a bias (present only when it is not 1).

        Raises:
            KerasNormValueError: If the wrapper is not built yet.
        """
        self._check_built("reading its coefficients")
        return {record.path: scale for record, scale in self._weights_and_scales}

    def _kernels_found(self, kernels) -> None:
        scaled = [(kernel, self._kernel_scale(kernel)) for kernel in kernels]
        if self.lr_multiplier != 1.0:
            scaled += [(bias, self.lr_multiplier) for bias in _biases(kernels)]
        self._weights_and_scales = tuple(scaled)
        self._store()

    def _kernel_scale(self, kernel: Kernel) -> float:
        fan_in = layouts.fan_in(kernel.shape, kernel.layout)
        return self.gain * self.lr_multiplier / math.sqrt(fan_in)

    def adopt(self, source) -> None:
        super().adopt(source)
        self._store()

    def _store(self) -> None:
        """Stores the wrapped layer's weights as the wrapper keeps them."""
        kernels = {id(kernel.variable) for kernel in self._found}
        with self._adapter.lifted():
            for record, scale in self._weights_and_scales:
                variable = record.variable
                if self.reinitialize and id(variable) in kernels:
                    # NumPy's global generator, which
                    # keras.utils.set_random_seed seeds on every backend.
                    drawn = np.random.standard_normal(tuple(variable.shape))
                    value = ops.cast(
                        drawn / self.lr_multiplier,
                        keras.backend.standardize_dtype(variable.dtype),
                    )
                else:
                    value = self._adapter.read_master(variable) / scale
                variable.assign(value)

    def _substituted(self):
        return [record for record, _ in self._weights_and_scales]

    def _values(self, training: bool) -> list:
        del training  # The same at training and inference.
        return [
            ops.cast(
                self._adapter.read_master(record.variable) * scale,
                record.variable.dtype,
            )
            for record, scale in self._weights_and_scales
        ]

    def get_config(self):
        return {
            **super().get_config(),
            "gain": self.gain,
            "lr_multiplier": self.lr_multiplier,
            "reinitialize": self.reinitialize,
        }


def _biases(kernels) -> list[Kernel]:
    """The biases of the layers holding `kernels`, once each, as records."""
    found, seen = [], set()
    for kernel in kernels:
        bias = getattr(kernel.holder, "bias", None)
        if bias is None or not getattr(bias, "trainable", False) or id(bias) in seen:
            continue
        seen.add(id(bias))
        prefix = kernel.path.rpartition("/")[0]
        found.append(
            dataclasses.replace(
                kernel,
                path=f"{prefix}/bias" if prefix else "bias",
                variable=bias,
                attribute="bias",
                constraint_key=None,
                assumed_layout=False,
            )
        )
    return found
