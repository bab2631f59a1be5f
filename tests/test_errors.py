"""The error catalogue, docs/errors.md, against what kerasnorm raises.

`CASES` maps each `###` heading of docs/errors.md to the ways to meet that
error. Every case must raise the documented class with the documented
message, on each Keras it applies to, and leave the user's model (and a
model file given to the command line) exactly as it was. The catalogue is
complete: the headings are the cases, and every `raise` of a kerasnorm
error in the package is reached by some case.
"""

from __future__ import annotations

import ast
import contextlib
import dataclasses
import functools
import io
import json
import pathlib
import re
import sys
import types
import zipfile
from collections.abc import Callable

import keras
import numpy as np
import pytest
import tensorflow as tf
from helpers import adapter_named, snapshot

import kerasnorm
from kerasnorm import cli, pictures, select
from kerasnorm.adapters import ADAPTERS
from kerasnorm.errors import KerasNormError
from kerasnorm.ops.operators import ConvOperator

ROOT = pathlib.Path(__file__).resolve().parents[1]
CATALOGUE = ROOT / "docs" / "errors.md"
BOTH = ("keras3", "tf_keras")


class CommandFailedError(Exception):
    """The command line exited with status 2; the message is its stderr."""


@dataclasses.dataclass
class Env:
    """What a case can use: the Keras, a model, a saved copy, a scratch dir."""

    adapter: object
    model: object
    tmp: pathlib.Path
    monkeypatch: pytest.MonkeyPatch

    @property
    def k(self):
        return self.adapter.keras

    @functools.cached_property
    def saved(self) -> pathlib.Path:
        """The model saved as a .keras file, for the command line."""
        path = self.tmp / "model.keras"
        self.model.save(path)
        self.saved_bytes = path.read_bytes()
        return path


@dataclasses.dataclass(frozen=True)
class Case:
    error: type
    message: str
    trigger: Callable[[Env], object]
    kerases: tuple[str, ...] = BOTH


def _model(k):
    """An image-to-image model named "net": a generator by its size."""
    x = k.Input((8, 8, 3), name="image")
    y = k.layers.Conv2D(4, 3, padding="same", activation="relu", name="conv")(x)
    y = k.layers.Conv2D(3, 3, padding="same", name="conv_out")(y)
    return k.Model(x, y, name="net")


def _fully_convolutional(k):
    """Images of any size to images, named "net": no role can be read from it."""
    x = k.Input((None, None, 3), name="image")
    y = k.layers.Conv2D(3, 3, padding="same", name="conv")(x)
    return k.Model(x, y, name="net")


def _renamed(env, name):
    """`env.model`'s graph under another name."""
    return env.k.Model(env.model.inputs, env.model.outputs, name=name)


def _sn(model, **options):
    """SNGAN's rewrite of `model`, as a discriminator."""
    return kerasnorm.apply_normalization(
        model, "sngan", role="discriminator", **options
    )


def _any_size(env):
    """A convolution on images of any size."""
    x = env.k.Input((None, None, 3))
    y = env.k.layers.Conv2D(2, 3, name="conv")(x)
    return env.k.Model(x, env.k.layers.GlobalAveragePooling2D()(y))


def _shared_conv(env):
    """One convolution called on images of two sizes."""
    conv = env.k.layers.Conv2D(2, 3, padding="same", name="conv")
    inputs = [env.k.Input((4, 4, 3)), env.k.Input((8, 8, 3))]
    pooled = [env.k.layers.GlobalAveragePooling2D()(conv(x)) for x in inputs]
    return env.k.Model(inputs, env.k.layers.Add()(pooled))


def _frames(env, recurrent=None):
    """A convolution inside TimeDistributed, and a recurrent one if given."""
    x = env.k.Input((3, 6, 6, 2))
    conv = env.k.layers.Conv2D(2, 3, name="conv")
    y = env.k.layers.TimeDistributed(conv, name="frames")(x)
    if recurrent is not None:
        y = recurrent(y)
        y = env.k.layers.Flatten()(y)
        return env.k.Model(x, env.k.layers.Dense(1)(y))
    return env.k.Model(x, env.k.layers.Dense(1)(env.k.layers.Flatten()(y)))


def _operator_wrapper_built_without_shape(env):
    conv = env.k.layers.Conv2D(2, 3, name="conv")
    conv.build((None, 6, 6, 1))
    env.adapter.SpectralNormalization(conv, operator_norm=True).build()


def _subclassed(env):
    class Subclassed(env.k.Model):
        def __init__(self):
            super().__init__(name="subclassed")
            self.dense = env.k.layers.Dense(2)

        def call(self, x):
            return self.dense(x)

    return Subclassed()


def _with_custom_layer(env, layer_class):
    x = env.model.outputs[0]
    y = layer_class(name="custom")(env.k.layers.Flatten()(x))
    return env.k.Model(env.model.inputs, y, name="net_with_custom")


def _unclonable(env):
    """A layer whose config has a key its constructor does not take."""

    class Unclonable(env.k.layers.Layer):
        def call(self, x):
            return x

        def get_config(self):
            return {**super().get_config(), "size": 3}

    return _with_custom_layer(env, Unclonable)


def _incomplete_config(env):
    """A layer whose config leaves out its width: the clone is the default's."""

    class Projection(env.k.layers.Layer):
        def __init__(self, units=2, **kwargs):
            super().__init__(**kwargs)
            self.units = units

        def build(self, input_shape):
            self.w = self.add_weight(shape=(input_shape[-1], self.units))

        def call(self, x):
            return tf.matmul(x, self.w)

    class Wide(Projection):
        def __init__(self, **kwargs):
            super().__init__(units=5, **kwargs)

        def get_config(self):
            return super().get_config()

        @classmethod
        def from_config(cls, config):
            return Projection(**config)

    return _with_custom_layer(env, Wide)


def _on_backend(env, backend):
    env.monkeypatch.setattr(env.k.backend, "backend", lambda: backend)
    return kerasnorm.apply_normalization(env.model, "sngan", role="discriminator")


def _keras3_on_backend(env, backend):
    env.monkeypatch.setattr(keras.backend, "backend", lambda: backend)
    return kerasnorm.apply_normalization(env.model, "sngan", role="discriminator")


def _tf_keras_file_on_backend(env, backend):
    path = env.tmp / "d.h5"
    env.model.save(path)
    env.monkeypatch.setattr(keras.backend, "backend", lambda: backend)
    # As on that backend, where kerasnorm leaves tf-keras unimported.
    env.monkeypatch.setattr(cli, "ADAPTERS", (adapter_named("keras3"),))
    return cli.load_model(path)


def _other_tf_keras(env):
    fake = types.SimpleNamespace(layers=types.SimpleNamespace(Layer=object))
    env.monkeypatch.setattr(tf, "keras", fake)
    return kerasnorm.active_adapter()


def _compiled(env):
    env.model.compile(optimizer="sgd", loss="mse")
    return _sn(env.model)


def _linear(env):
    """A custom layer making its own kernel, with no constraint argument."""

    class Linear(env.k.layers.Layer):
        def build(self, input_shape):
            self.w = self.add_weight(name="w", shape=(input_shape[-1], 2))

        def call(self, x):
            return tf.matmul(x, self.w)

    return _with_custom_layer(env, Linear)


def _forgetful(env):
    """A custom layer taking `kernel_constraint` but not giving it to its kernel."""

    class Forgetful(env.k.layers.Layer):
        def __init__(self, kernel_constraint=None, **kwargs):
            super().__init__(**kwargs)
            self.kernel_constraint = env.k.constraints.get(kernel_constraint)

        def build(self, input_shape):
            self.kernel = self.add_weight(name="kernel", shape=(input_shape[-1], 2))

        def call(self, x):
            return tf.matmul(x, self.kernel)

        def get_config(self):
            constraint = env.k.constraints.serialize(self.kernel_constraint)
            return {**super().get_config(), "kernel_constraint": constraint}

    return _with_custom_layer(env, Forgetful)


def _dict_layout_on(env, layer_name):
    layer = env.k.layers.Dense(2, name=layer_name)
    layer(np.ones((1, 3), "float32"))
    return env.adapter.SpectralNorm(layout={"query": "dense"})(layer.kernel)


def _wrapped_and_called(env, layer, shape):
    wrapper = env.adapter.SpectralNormalization(layer)
    return wrapper(np.ones(shape, "float32"))


def _folded_attention_wrapper(env):
    wrapper = env.adapter.SpectralNormalization(
        env.k.layers.MultiHeadAttention(2, 4, name="mha")
    )
    x = np.ones((1, 3, 4), "float32")
    wrapper(x, value=x)
    return wrapper.fold()


def _unbuilt_wrapper(env):
    return env.adapter.SpectralNormalization(env.k.layers.Dense(3)).fold()


def _picture_without_matplotlib(env):
    env.monkeypatch.setattr(pictures, "_graphviz_available", lambda: False)
    env.monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    the_plan = kerasnorm.plan(env.model, "sngan", role="discriminator")
    return kerasnorm.plot_plan(the_plan, env.tmp / "plan.png")


def _monitor_of_other_keras(env):
    other = next(a for a in ADAPTERS if a is not env.adapter)
    monitor = kerasnorm.callbacks.SpectralNormMonitor.for_model(_model(other.keras))
    return monitor.set_model(env.model)


def _cli(env, *args):
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()):
        status = cli.main([str(arg) for arg in args])
    if status == 2:
        raise CommandFailedError(stderr.getvalue())
    return status


def _file(env, name, content=b"not a model"):
    path = env.tmp / name
    path.write_bytes(content)
    return path


def _keras_file_without_config(env):
    path = env.tmp / "empty.keras"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("metadata.json", '{"keras_version": "3.0.0"}')
    return path


def _apply(env, out):
    return _cli(env, "apply", env.saved, out, "--policy", "sngan")


def _file_with_an_unknown_class(env):
    """The saved model, its layer 'conv_out' of a class no one registered."""
    with zipfile.ZipFile(env.saved) as archive:
        files = {name: archive.read(name) for name in archive.namelist()}
    config = json.loads(files["config.json"])
    layer = next(
        layer for layer in config["config"]["layers"] if layer["name"] == "conv_out"
    )
    layer.update(
        module="my_layers",
        class_name="ReflectionPadding2D",
        registered_name="MyGAN>ReflectionPadding2D",
    )
    files["config.json"] = json.dumps(config).encode()
    path = env.tmp / "gen.keras"
    with zipfile.ZipFile(path, "w") as archive:
        for name, content in files.items():
            archive.writestr(name, content)
    return path


RULE = kerasnorm.Rule(select.name("conv"), kerasnorm.SpectralNormalize())
NO_MATCH = kerasnorm.Rule(select.name("absent"), kerasnorm.SpectralNormalize())

CASES: dict[str, list[Case]] = {
    # Models given to kerasnorm
    "Not a Keras model": [
        Case(
            KerasNormError,
            "Expected a Keras model, received list",
            lambda env: kerasnorm.apply_normalization([env.model], "sngan"),
        ),
    ],
    "An object of neither Keras": [
        Case(
            KerasNormError,
            "Expected a Keras 3 or tf-keras object",
            lambda env: kerasnorm.apply_normalization(tf.Variable(1.0), "sngan"),
        ),
    ],
    "A layer, not a model": [
        Case(
            KerasNormError,
            "received the layer 'conv'",
            lambda env: kerasnorm.apply_normalization(env.model.get_layer("conv")),
        ),
    ],
    "A model without a layer graph": [
        Case(
            KerasNormError,
            "has no layer graph",
            lambda env: kerasnorm.apply_normalization(_subclassed(env), "sngan"),
        ),
        Case(
            kerasnorm.KerasNormTypeError,
            "has no layer graph",
            lambda env: kerasnorm.plan(_subclassed(env), "sngan"),
        ),
        Case(
            kerasnorm.KerasNormTypeError,
            "has no layer graph",
            lambda env: kerasnorm.to_graph(_subclassed(env)),
        ),
    ],
    "Keras 3 on a backend that does not train": [
        Case(
            kerasnorm.UnsupportedKerasError,
            "runs on the 'numpy' backend here, which does not train",
            lambda env: _on_backend(env, "numpy"),
            kerases=("keras3",),
        ),
    ],
    "tf-keras beside Keras 3 on another backend": [
        Case(
            kerasnorm.UnsupportedKerasError,
            "Keras 3 runs on the 'torch' backend in this process",
            lambda env: _keras3_on_backend(env, "torch"),
            kerases=("tf_keras",),
        ),
        Case(
            kerasnorm.UnsupportedKerasError,
            "was saved by tf-keras",
            lambda env: _tf_keras_file_on_backend(env, "jax"),
            kerases=("tf_keras",),
        ),
    ],
    "tf.keras is neither Keras": [
        Case(
            kerasnorm.UnsupportedKerasError,
            "neither Keras 3 nor tf-keras",
            _other_tf_keras,
            kerases=("keras3",),
        ),
    ],
    # Policies, roles, modes and options
    "Unknown policy": [
        Case(
            KerasNormError,
            "Unknown policy 'pro-gan'. Expected one of: biggan",
            lambda env: kerasnorm.apply_normalization(env.model, "pro-gan"),
        ),
    ],
    "Unknown role": [
        Case(
            KerasNormError,
            "Unknown role 'gen'",
            lambda env: kerasnorm.apply_normalization(env.model, "sngan", role="gen"),
        ),
    ],
    "Unknown mode": [
        Case(
            KerasNormError,
            "Unknown mode 'wrap'",
            lambda env: _sn(env.model, mode="wrap"),
        ),
    ],
    "Which part is the generator?": [
        Case(
            KerasNormError,
            "Cannot tell whether model 'net' is a generator or a discriminator",
            lambda env: kerasnorm.apply_normalization(
                _fully_convolutional(env.k), "sngan"
            ),
        ),
    ],
    "A name and a structure that disagree": [
        Case(
            KerasNormError,
            "The model 'net_d' says two roles: its name says discriminator",
            lambda env: kerasnorm.apply_normalization(_renamed(env, "net_d"), "sngan"),
        ),
    ],
    "A strict rule that matches nothing": [
        Case(
            KerasNormError,
            "matches no layer of model 'net'",
            lambda env: kerasnorm.apply_normalization(
                env.model, None, rules=[NO_MATCH], strict=True
            ),
        ),
    ],
    "rules is not a list of rules": [
        Case(
            KerasNormError,
            "`rules` must be a list of Rule",
            lambda env: kerasnorm.plan(env.model, None, rules=RULE),
        ),
    ],
    "An unknown spectral normalization option": [
        Case(
            KerasNormError,
            r"takes no option \['n_iters'\]",
            lambda env: _sn(env.model, n_iters=2),
        ),
    ],
    "A spectral normalization option out of range": [
        Case(
            KerasNormError,
            "`n_iter` must be an int",
            lambda env: _sn(env.model, n_iter=1.5),
        ),
        Case(
            KerasNormError,
            "`n_iter` must be at least 1",
            lambda env: _sn(env.model, n_iter=0),
        ),
        Case(
            KerasNormError,
            '`tol` must be a number or "auto"',
            lambda env: _sn(env.model, tol="low"),
        ),
        Case(
            KerasNormError,
            "`eps` must be a number",
            lambda env: _sn(env.model, eps="small"),
        ),
        Case(
            KerasNormError,
            "`tol` must be positive",
            lambda env: _sn(env.model, tol=0.0),
        ),
        Case(
            KerasNormError,
            r"`max_iter` \(2\) must be at least `n_iter` \(4\)",
            lambda env: _sn(env.model, n_iter=4, max_iter=2),
        ),
        Case(
            KerasNormError,
            "`operator_norm` must be True or False",
            lambda env: _sn(env.model, operator_norm="yes"),
        ),
    ],
    "A compiled model loses its optimizer state": [
        Case(UserWarning, "fresh optimizer of the same configuration", _compiled),
    ],
    "A strict plan with kernels it cannot normalize": [
        Case(
            KerasNormError,
            r"has kernels its rules chose but cannot normalize \(strict=True\): "
            r"custom \(w\): no constraint argument",
            lambda env: _sn(_linear(env), strict=True),
        ),
    ],
    "A convolution whose operator norm cannot be taken": [
        Case(
            KerasNormError,
            r"conv \(kernel\): operator norm: the layer's input shape "
            r"\(None, None, None, 3\) has an unknown size",
            lambda env: _sn(_any_size(env), operator_norm=True, strict=True),
        ),
        Case(
            KerasNormError,
            "operator norm: the layer is called on inputs of shapes",
            lambda env: _sn(_shared_conv(env), operator_norm=True, strict=True),
        ),
        Case(
            KerasNormError,
            "operator norm: conv/kernel belongs to a convolution inside the layer",
            lambda env: _sn(_frames(env), operator_norm=True, strict=True),
        ),
        Case(
            KerasNormError,
            "operator norm: .*ConvLSTMCell, a convolution kerasnorm computes no "
            "operator norm for",
            lambda env: _sn(
                _frames(env, env.k.layers.ConvLSTM2D(2, 3, name="recurrent")),
                operator_norm=True,
                strict=True,
                mode="reparam",
            ),
        ),
    ],
    # Rewriting custom layers
    "A layer that cannot be cloned from its config": [
        Case(
            KerasNormError,
            "Cannot clone layer 'custom'",
            lambda env: _sn(_unclonable(env)),
        ),
    ],
    "A clone with other weights than the original": [
        Case(
            KerasNormError,
            r"Layer 'custom': its clone has weights \[\(192, 2\)\], the original "
            r"\[\(192, 5\)\]",
            lambda env: _sn(_incomplete_config(env)),
        ),
    ],
    "A constraint argument that does not reach its kernel": [
        Case(
            KerasNormError,
            "Layer 'custom' \\(Forgetful\\) took a SpectralNorm in its config at "
            "'kernel_constraint', but its kernel 'kernel' did not get it",
            lambda env: _sn(_forgetful(env)),
        ),
    ],
    # Layers and constraints
    "A PixelNorm argument out of range": [
        Case(
            KerasNormError,
            "`epsilon` must be a positive number",
            lambda env: env.adapter.PixelNorm(epsilon="tiny"),
        ),
        Case(
            KerasNormError,
            "`epsilon` must be positive",
            lambda env: env.adapter.PixelNorm(epsilon=0.0),
        ),
        Case(
            KerasNormError,
            "`axis` must be an int",
            lambda env: env.adapter.PixelNorm(axis=(1, 2)),
        ),
        Case(
            KerasNormError,
            "needs inputs of rank 2 or more",
            lambda env: env.adapter.PixelNorm()(tf.ones([3])),
        ),
        Case(
            KerasNormError,
            "`axis` must name a channel axis",
            lambda env: env.adapter.PixelNorm(axis=0)(tf.ones([2, 3])),
        ),
    ],
    "SpectralNormalization around a layer without a kernel": [
        Case(
            KerasNormError,
            "cannot wrap layer 're_lu' of type ReLU",
            lambda env: env.adapter.SpectralNormalization(
                env.k.layers.ReLU(name="re_lu")
            )(np.ones((1, 3), "float32")),
        ),
    ],
    "SpectralNormalization around a kernel it cannot normalize": [
        Case(
            KerasNormError,
            "cannot normalize dense/kernel of 'keras_sn': normalized already by "
            "Keras's own SpectralNormalization",
            lambda env: _wrapped_and_called(
                env,
                env.k.layers.SpectralNormalization(
                    env.k.layers.Dense(2, name="dense"), name="keras_sn"
                ),
                (1, 3),
            ),
            # tf-keras's own wrapper cannot be built at all (a TypeError).
            kerases=("keras3",),
        ),
        Case(
            KerasNormError,
            "cannot normalize kernel of 'local': a locally connected kernel",
            lambda env: _wrapped_and_called(
                env, env.k.layers.LocallyConnected1D(2, 3, name="local"), (1, 5, 2)
            ),
            kerases=("tf_keras",),
        ),
    ],
    "SpectralNormalization around an unbuilt layer with several inputs": [
        Case(
            KerasNormError,
            "cannot build MultiHeadAttention 'mha' from the shape of its first "
            "input alone",
            lambda env: env.adapter.SpectralNormalization(
                env.k.layers.MultiHeadAttention(2, 4, name="mha")
            )(np.ones((1, 3, 4), "float32"), np.ones((1, 3, 4), "float32")),
            kerases=("keras3",),
        ),
    ],
    "Folding a wrapper whose layer makes its weights at its first call": [
        Case(
            KerasNormError,
            "MultiHeadAttention 'mha' makes its weights at its first call",
            _folded_attention_wrapper,
            kerases=("tf_keras",),
        ),
    ],
    "SpectralNormalization(operator_norm=True) without a usable input shape": [
        Case(
            KerasNormError,
            "cannot take the operator norm of kernel of 'conv': the layer's input "
            "shape",
            lambda env: env.adapter.SpectralNormalization(
                env.k.layers.Conv2D(2, 3, name="conv"), operator_norm=True
            ).build((None, None, None, 3)),
        ),
        Case(
            KerasNormError,
            "needs the input shape",
            _operator_wrapper_built_without_shape,
        ),
    ],
    "SpectralNormalization used before it is built": [
        Case(KerasNormError, "is not built yet", _unbuilt_wrapper),
    ],
    "An unknown kernel layout": [
        Case(
            KerasNormError,
            "Unknown kernel `layout` 'rows'",
            lambda env: env.adapter.SpectralNorm(layout="rows"),
        ),
    ],
    "An einsum layout kerasnorm cannot use": [
        Case(
            KerasNormError,
            "Cannot read the einsum layout 'ab->b'",
            lambda env: env.adapter.SpectralNorm(layout="ab->b"),
        ),
        Case(
            KerasNormError,
            "Kernel axis 'b' of 'abc,bcd->abd' appears in both the input and the "
            "output",
            lambda env: env.adapter.SpectralNorm(layout="abc,bcd->abd"),
        ),
    ],
    "A layout for a kernel of another rank": [
        Case(
            KerasNormError,
            r"Layout 'ab,bc->ac' describes a kernel of rank 2, not 3",
            lambda env: env.adapter.SpectralNorm(layout="ab,bc->ac")(
                tf.ones([2, 2, 2])
            ),
        ),
    ],
    "A ConvGeometry kerasnorm cannot use": [
        Case(
            KerasNormError,
            "needs one sample's input shape",
            lambda env: kerasnorm.ConvGeometry((None, 8, 3)),
        ),
        Case(
            KerasNormError,
            "`padding` must be one of valid, same, causal",
            lambda env: kerasnorm.ConvGeometry((8, 8, 3), padding="full"),
        ),
        Case(
            KerasNormError,
            "Causal padding is for 1-D convolutions only",
            lambda env: kerasnorm.ConvGeometry((8, 8, 3), padding="causal"),
        ),
        Case(
            KerasNormError,
            "`data_format` must be 'channels_last' or 'channels_first'",
            lambda env: kerasnorm.ConvGeometry((8, 8, 3), data_format="nhwc"),
        ),
        Case(
            KerasNormError,
            r"`strides` must be 2 int\(s\) of at least 1",
            lambda env: kerasnorm.ConvGeometry((8, 8, 3), strides=(1, 2, 3)),
        ),
        Case(
            KerasNormError,
            "The convolution leaves no output on an input of shape",
            lambda env: env.adapter.SpectralNorm(
                geometry=kerasnorm.ConvGeometry((2, 2, 1))
            )(tf.ones([3, 3, 1, 1])),
        ),
        Case(
            KerasNormError,
            "A `geometry` says how a convolution applies its kernel",
            lambda env: env.adapter.SpectralNorm(
                layout="ab,bc->ac", geometry=kerasnorm.ConvGeometry((4, 4, 1))
            ),
        ),
        Case(
            KerasNormError,
            "A convolution's operator norm serves the layouts",
            lambda env: ConvOperator(
                np.ones((2, 2), "float32"), "ab,bc->ac", kerasnorm.ConvGeometry((4, 1))
            ),
        ),
        Case(
            KerasNormError,
            "`geometry` must be a kerasnorm.ConvGeometry",
            lambda env: env.adapter.SpectralNorm(geometry=(4, 4, 1)),
        ),
    ],
    "Layouts by layer that do not fit the kernel": [
        Case(
            KerasNormError,
            "A dict `layout` maps layer names to layouts",
            lambda env: env.adapter.SpectralNorm(layout={}),
        ),
        Case(
            KerasNormError,
            "needs the kernel variable to know which layout applies",
            lambda env: env.adapter.SpectralNorm(layout={"query": "dense"})(
                tf.ones([3, 2])
            ),
        ),
        Case(
            KerasNormError,
            r"has layouts for kernels of \['query'\], but kernel .* belongs to "
            "layer 'proj'",
            lambda env: _dict_layout_on(env, "proj"),
        ),
    ],
    "A kernel of rank 1": [
        Case(
            KerasNormError,
            r"needs rank 2 or more.*Received shape \(3,\)",
            lambda env: env.adapter.SpectralNorm()(tf.ones([3])),
        ),
    ],
    "An empty ConstraintChain": [
        Case(
            KerasNormError,
            "`constraints` must be a non-empty list",
            lambda env: env.adapter.ConstraintChain([]),
        ),
    ],
    # Rules, selectors, actions and policies
    "A rule made of the wrong parts": [
        Case(
            KerasNormError,
            "Rule `selector` must be a kerasnorm.select.Selector",
            lambda env: kerasnorm.Rule(
                lambda g, n: True, kerasnorm.SpectralNormalize()
            ),
        ),
        Case(
            KerasNormError,
            "Rule `action` must be a kerasnorm.actions.Action",
            lambda env: kerasnorm.Rule(select.everything(), "spectral"),
        ),
    ],
    "A selector combined with something else": [
        Case(
            KerasNormError,
            "Selectors combine only with selectors",
            lambda env: select.everything() & (lambda g, n: True),
        ),
    ],
    "where() without a function": [
        Case(
            KerasNormError, "`predicate` must be callable", lambda env: select.where(3)
        ),
    ],
    "InsertAfter without a layer factory": [
        Case(
            KerasNormError,
            "`factory` must be callable",
            lambda env: kerasnorm.InsertAfter("relu"),
        ),
    ],
    "A policy registered wrongly": [
        Case(
            KerasNormError,
            "A policy name must be a non-empty string",
            lambda env: kerasnorm.register_policy("", [RULE]),
        ),
        Case(
            KerasNormError,
            "Policy 'mine' must be a list of Rule",
            lambda env: kerasnorm.register_policy("mine", ["sngan"]),
        ),
        Case(
            KerasNormError,
            "A policy named 'sngan' is already registered",
            lambda env: kerasnorm.register_policy("sngan", [RULE]),
        ),
    ],
    "@normalize on something that is not a function": [
        Case(
            KerasNormError,
            "@normalize decorates a function",
            lambda env: kerasnorm.normalize("sngan")("build_discriminator"),
        ),
    ],
    # Pictures, monitoring and export
    "A picture file kerasnorm cannot write": [
        Case(
            KerasNormError,
            "plot_plan writes PNG, SVG or PDF: the file name must end in "
            "'.png', '.svg' or '.pdf'",
            lambda env: kerasnorm.plot_plan(
                kerasnorm.plan(env.model, "sngan", role="discriminator"),
                env.tmp / "plan.jpg",
            ),
        ),
        Case(
            KerasNormError,
            "plot_lines writes PNG, SVG or PDF",
            lambda env: pictures.plot_lines(env.tmp / "sigma.jpg", {"a": [1.0]}),
        ),
        Case(
            KerasNormError,
            "save_image_grid writes PNG",
            lambda env: pictures.save_image_grid(
                env.tmp / "grid.svg", np.zeros((1, 2, 2, 3))
            ),
        ),
    ],
    "A picture without matplotlib": [
        Case(
            kerasnorm.MissingDependencyError,
            r"needs matplotlib, which is not installed: "
            r'pip install "kerasnorm\[pictures\]"',
            _picture_without_matplotlib,
        ),
    ],
    "Data a chart or an image grid cannot show": [
        Case(
            KerasNormError,
            "A line chart needs at least one series",
            lambda env: pictures.plot_lines(env.tmp / "sigma.svg", {}),
        ),
        Case(
            KerasNormError,
            "Series 'a' has 2 values for 3 x values",
            lambda env: pictures.plot_lines(
                env.tmp / "sigma.svg", {"a": [1.0, 2.0]}, x=[1, 2, 3]
            ),
        ),
        Case(
            KerasNormError,
            "plot_image_grids needs at least one batch of images",
            lambda env: pictures.plot_image_grids(env.tmp / "samples.png", {}),
        ),
        Case(
            KerasNormError,
            r"Expected a batch of images .* received shape \(2, 2, 3\)",
            lambda env: pictures.save_image_grid(
                env.tmp / "grid.png", np.zeros((2, 2, 3))
            ),
        ),
    ],
    "A monitor of the other Keras": [
        Case(KerasNormError, "callback of another Keras", _monitor_of_other_keras),
    ],
    "fold on a subclassed model": [
        Case(
            KerasNormError,
            "fold needs a functional or Sequential model",
            lambda env: kerasnorm.fold(_subclassed(env)),
        ),
    ],
    # The command line
    "A model file that does not exist": [
        Case(
            CommandFailedError,
            "No such file",
            lambda env: _cli(
                env, "plan", env.tmp / "absent.keras", "--policy", "sngan"
            ),
        ),
    ],
    "A file that is not a Keras model": [
        Case(
            CommandFailedError,
            r"is not a Keras model file: expected a \.keras or \.h5 file",
            lambda env: _cli(env, "plan", _file(env, "model.txt"), "--policy", "sngan"),
        ),
        Case(
            CommandFailedError,
            r"is not a Keras model file \(",
            lambda env: _cli(
                env, "plan", _file(env, "broken.keras"), "--policy", "sngan"
            ),
        ),
        Case(
            CommandFailedError,
            "as a Keras model",
            lambda env: _cli(
                env, "plan", _keras_file_without_config(env), "--policy", "sngan"
            ),
        ),
    ],
    "An output file kerasnorm will not write": [
        Case(
            CommandFailedError,
            r"OUT_FILE must end in \.keras",
            lambda env: _apply(env, env.tmp / "out.txt"),
        ),
        Case(
            CommandFailedError,
            "Refusing to overwrite the input file",
            lambda env: _apply(env, env.saved),
        ),
        Case(
            CommandFailedError,
            "does not exist",
            lambda env: _apply(env, env.tmp / "absent" / "out.keras"),
        ),
        Case(
            CommandFailedError,
            "saves to .keras files only",
            lambda env: _apply(env, env.tmp / "out.h5"),
            kerases=("keras3",),
        ),
    ],
    "A module --import cannot import": [
        Case(
            CommandFailedError,
            "Cannot import module 'no_such_module' given to --import: "
            "ModuleNotFoundError",
            lambda env: _cli(
                env, "plan", env.saved, "--policy", "sngan", "--import=no_such_module"
            ),
        ),
    ],
    "A custom class the command does not know": [
        Case(
            CommandFailedError,
            r"does not know: 'MyGAN>ReflectionPadding2D' \(module 'my_layers'\)\. "
            "Import the module .* --import my_layers",
            lambda env: _cli(
                env, "plan", _file_with_an_unknown_class(env), "--policy", "sngan"
            ),
        ),
    ],
}


def _catalogue_headings() -> list[str]:
    return re.findall(r"^### (.+?)\s*$", CATALOGUE.read_text(), flags=re.M)


def test_the_catalogue_lists_exactly_the_tested_errors():
    assert _catalogue_headings() == list(CASES)


def _cases():
    for heading, cases in CASES.items():
        for number, case in enumerate(cases):
            for adapter in ADAPTERS:
                if adapter.name in case.kerases:
                    yield pytest.param(
                        case, adapter, id=f"{adapter.name}-{heading}-{number}"
                    )


def _env(adapter, tmp_path, monkeypatch) -> Env:
    return Env(adapter, _model(adapter.keras), tmp_path, monkeypatch)


def _meet(case: Case, env: Env) -> None:
    """Runs the case's trigger and checks what it raises or warns."""
    if issubclass(case.error, Warning):
        with pytest.warns(case.error, match=case.message):
            case.trigger(env)
        return
    with pytest.raises(case.error, match=case.message):
        case.trigger(env)


@pytest.mark.parametrize("case, adapter", _cases())
def test_error_and_the_model_unchanged(case, adapter, tmp_path, monkeypatch):
    env = _env(adapter, tmp_path, monkeypatch)
    before = snapshot(env.model)
    x = np.random.default_rng(0).normal(size=(2, 8, 8, 3)).astype("float32")
    outputs = np.asarray(env.model(x))
    _meet(case, env)
    monkeypatch.undo()
    assert snapshot(env.model) == before
    if "saved" in vars(env):
        assert env.saved.read_bytes() == env.saved_bytes
    np.testing.assert_array_equal(np.asarray(env.model(x)), outputs)


def _raise_sites() -> set[tuple[str, int]]:
    """(file, line) of every line of every `raise <kerasnorm error>(...)`."""
    names = {
        name
        for name in dir(kerasnorm.errors)
        if isinstance(getattr(kerasnorm.errors, name), type)
        and issubclass(getattr(kerasnorm.errors, name), KerasNormError)
    }
    sites = set()
    for path in (ROOT / "kerasnorm").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Raise)
                and isinstance(node.exc, ast.Call)
                and getattr(node.exc.func, "id", None) in names
            ):
                sites.add((str(path), node.lineno, node.end_lineno))
    return sites


def test_every_raise_in_kerasnorm_is_in_the_catalogue(tmp_path, monkeypatch):
    made = []
    original_init = KerasNormError.__init__

    def recording_init(self, *args):
        frame = sys._getframe(1)
        made.append((frame.f_code.co_filename, frame.f_lineno))
        original_init(self, *args)

    monkeypatch.setattr(KerasNormError, "__init__", recording_init)
    for index, param in enumerate(_cases()):
        case, adapter = param.values
        with monkeypatch.context() as patch:
            folder = tmp_path / str(index)
            folder.mkdir()
            _meet(case, _env(adapter, folder, patch))
    missed = [
        f"{pathlib.Path(path).relative_to(ROOT)}:{first}"
        for path, first, last in sorted(_raise_sites())
        if not any(p == path and first <= line <= last for p, line in made)
    ]
    assert not missed, f"raises no case in docs/errors.md reaches: {missed}"
