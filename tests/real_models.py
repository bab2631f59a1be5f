"""GAN architectures written the way people write them, tiny, for both Kerases.

Where `zoo.py` holds minimal models each isolating one feature of a graph,
this module holds the networks users actually bring: the keras-io and
TensorFlow tutorial GANs (DCGAN, WGAN-GP, CycleGAN, pix2pix, conditional
GAN) and well-known paper architectures (SNGAN's projection discriminator,
SAGAN, WaveGAN, a video GAN, recurrent text and sequence GANs), with their
custom layers written as their authors write them (`ReflectionPadding2D`,
a SAGAN `SelfAttention` creating its own 1x1 convolutions, a hand-written
`Linear` and `CustomDense`). Sizes are cut down (16x16 or 32x32 images,
a few filters, short sequences) so that a build and a few training steps
take well under a second; the shapes of the graphs are kept.

Every builder takes `k`, the Keras package module (`keras` or `tf_keras`),
and returns a fresh model whose layers carry fixed names, unique across
nested models. Every builder works on both Kerases: each layer used exists
in both (`Conv1DTranspose`, `Conv3DTranspose`, `GroupNormalization`,
`EinsumDense`, `MultiHeadAttention`, `SeparableConv2D`, `DepthwiseConv2D`
are all in tf-keras 2.21, and tf-keras's `GroupNormalization(groups=-1)` is
instance normalization as Keras 3's is). `KERAS3_ONLY` is therefore empty.

`BUILDERS` maps each builder's name to it. `EXPECTED` holds, per builder,
facts counted by hand from the architecture:

- `"role"`: `"generator"` or `"discriminator"`, as a careful human would say;
  absent for a roleless combined model (`cycle_gan`).
- `"nested_roles"`: {nested model name: role} for the nested models that
  have a role of their own (the parts of `cycle_gan`); building blocks such
  as pix2pix's Sequential down/up blocks have none and are not listed.
- `"kernels"`: the number of trainable kernels: every trainable weight that
  multiplies its input (Dense/Conv/Conv*Transpose kernels, depthwise and
  pointwise kernels, Embedding matrices, recurrent `kernel` and
  `recurrent_kernel` per direction, MultiHeadAttention's four projection
  kernels, EinsumDense kernels, custom layers' rank-2 weights), and not
  biases, normalization gammas/betas, PReLU alphas or SAGAN's gamma. A
  weight shared by several calls counts once. `count_kernels` computes the
  same number from a model's trainable weights by `is_kernel`'s rule.
- `"kernel_layers"`: sorted names of the layers holding kernels, nested
  models included (recursing into every nested `Model`/`Sequential`) but
  not into a layer's own sublayers: a `Bidirectional(LSTM)`, a
  `TimeDistributed(Dense)`, a `MultiHeadAttention` or a custom layer
  creating Conv2Ds is listed under its own name.
- `"custom_kernel_layers"`: {name: takes_constraint} for the layers of
  classes defined here that hold kernels (directly or through sublayers
  they create); `takes_constraint` is whether the class takes a
  `kernel_constraint` argument that reaches its kernel's `add_weight`.
- `"output_shapes"`: the shape of each output without the batch axis, in
  the order of `model.outputs`.
- `"sequential"`: whether the top-level model is a `Sequential`.
- `"tf_keras_formats"`: the formats besides `.keras` in which the tf-keras
  model saves and loads back: "h5" and "tf" (SavedModel). Two hand-written
  layers break them, as they would for their users: `SelfAttention`'s
  sublayers, built by an explicit `build` call, all name their variables
  "attention/kernel:0" (no h5), and `Linear`'s unnamed weights break both.

`forward_input(k, model)` (the zoo's) returns a deterministic batch of two in
the structure of the model's inputs; integer inputs are in [0, 10), in range
for every Embedding here.
"""

from __future__ import annotations

import functools
import types

import tensorflow as tf
from helpers import is_kernel
from zoo import NUM_CLASSES, forward_input

__all__ = [
    "BUILDERS",
    "EXPECTED",
    "KERAS3_ONLY",
    "count_kernels",
    "custom_layers",
    "forward_input",
    "is_kernel",
]

LATENT = 16
IMAGE_SHAPE = (16, 16, 3)
PIX2PIX_SHAPE = (32, 32, 3)  # pix2pix's U-Net needs four halvings
MNIST_SHAPE = (28, 28, 1)  # WGAN-GP's keras-io example pads 28 to 32
VOCABULARY = 20
SEQUENCE = 8
AUDIO_LENGTH = 256
VIDEO_SHAPE = (4, 8, 8, 3)  # frames, height, width, channels

# Registered under "real_models>ClassName" in each Keras's registry.
PACKAGE = "real_models"


def _is_keras3(k) -> bool:
    """Whether `k` is Keras 3 (`keras`) rather than tf-keras (`tf_keras`)."""
    return int(k.__version__.split(".")[0]) >= 3


# --------------------------------------------------------------------------
# The kernel rule
# --------------------------------------------------------------------------


def count_kernels(model) -> int:
    """The number of kernels among `model.trainable_weights` (see `is_kernel`).

    `trainable_weights` lists a weight once however many times its layer or
    nested model is called, and includes nested models' and sublayers' weights.
    """
    return sum(is_kernel(variable) for variable in model.trainable_weights)


# --------------------------------------------------------------------------
# Custom layers, one set of classes per Keras
# --------------------------------------------------------------------------


@functools.cache
def custom_layers(k) -> types.SimpleNamespace:
    """The custom layer classes of Keras `k`, registered for serialization.

    One set of classes per Keras (cached): each subclasses that Keras's
    `Layer` and is registered in that Keras's registry as
    "real_models>ClassName", so `load_model` finds it with no
    `custom_objects`. The layers compute with TensorFlow ops, which both
    Kerases accept here (Keras 3 runs on the TensorFlow backend), except
    where the original code uses `keras.ops` on Keras 3.
    """
    layers = k.layers
    register = k.saving.register_keras_serializable(package=PACKAGE)
    keras3 = _is_keras3(k)

    @register
    class ReflectionPadding2D(layers.Layer):
        """Reflection padding of height and width, as the keras-io CycleGAN
        example writes it (attribute set before `super().__init__`, a `mask`
        argument it ignores); `get_config` added so the model saves.

        Args:
            padding: (width padding, height padding). Defaults to (1, 1).
        """

        def __init__(self, padding=(1, 1), **kwargs):
            self.padding = tuple(padding)
            super().__init__(**kwargs)

        def call(self, input_tensor, mask=None):
            padding_width, padding_height = self.padding
            padding_tensor = [
                [0, 0],
                [padding_height, padding_height],
                [padding_width, padding_width],
                [0, 0],
            ]
            if keras3:
                return k.ops.pad(input_tensor, padding_tensor, mode="reflect")
            return tf.pad(input_tensor, padding_tensor, mode="REFLECT")

        def get_config(self):
            config = super().get_config()
            config.update({"padding": self.padding})
            return config

    @register
    class SelfAttention(layers.Layer):
        """SAGAN self-attention (Zhang et al. 2019, arXiv 1805.08318).

        Creates its three 1x1 convolutions f, g (C/8 channels) and h (C
        channels) in `build`, where the channel count is known, and builds
        them there so that their kernels exist before weights are loaded.
        Output `gamma * o + x` with the trainable scalar gamma starting at 0
        (so at initialisation the layer is the identity and f, g get zero
        gradients). Takes no constraint argument.

        Variable names differ between the Kerases: Keras 3 paths are
        "attention/f/kernel" and so on; tf-keras names all three kernels
        "attention/kernel:0" (and the biases "attention/bias:0"), because a
        sublayer's `build` called directly runs in the outer layer's name
        scope. tf-keras's h5 format then fails ("name already exists");
        `.keras` and SavedModel work.
        """

        def build(self, input_shape):
            channels = input_shape[-1]
            self.f = layers.Conv2D(channels // 8, 1, name="f")
            self.g = layers.Conv2D(channels // 8, 1, name="g")
            self.h = layers.Conv2D(channels, 1, name="h")
            for conv in (self.f, self.g, self.h):
                conv.build(input_shape)
            self.gamma = self.add_weight(name="gamma", shape=(), initializer="zeros")

        def call(self, x):
            shape = tf.shape(x)
            positions = shape[1] * shape[2]

            def flatten_positions(t):
                return tf.reshape(t, (shape[0], positions, t.shape[-1]))

            f = flatten_positions(self.f(x))
            g = flatten_positions(self.g(x))
            h = flatten_positions(self.h(x))
            beta = tf.nn.softmax(tf.matmul(g, f, transpose_b=True), axis=-1)
            o = tf.reshape(tf.matmul(beta, h), shape)
            return self.gamma * o + x

        def compute_output_shape(self, input_shape):
            return input_shape

    @register
    class Linear(layers.Layer):
        """`inputs @ w + b`, as Keras's subclassing guide writes it.

        The weights are created without names (Keras 3 calls them "variable"
        and "variable_1", tf-keras "Variable:0" twice) and with no
        constraint argument. On tf-keras the missing names break h5 saving
        ("name already exists") and SavedModel saving ("'NoneType' object
        has no attribute 'replace'"); `.keras` works in both Kerases.

        Args:
            units: output size. Defaults to 32.
        """

        def __init__(self, units=32, **kwargs):
            super().__init__(**kwargs)
            self.units = units

        def build(self, input_shape):
            self.w = self.add_weight(
                shape=(input_shape[-1], self.units),
                initializer="random_normal",
                trainable=True,
            )
            self.b = self.add_weight(
                shape=(self.units,), initializer="zeros", trainable=True
            )

        def call(self, inputs):
            return inputs @ self.w + self.b

        def get_config(self):
            config = super().get_config()
            config.update({"units": self.units})
            return config

    @register
    class CustomDense(layers.Layer):
        """A hand-written Dense that takes `kernel_constraint` and passes it on.

        The constraint goes to the kernel's `add_weight(constraint=...)` and
        is serialized in `get_config`, as Keras's own Dense does.

        Args:
            units: output size.
            activation: activation name or callable. Defaults to None.
            kernel_constraint: constraint on the kernel. Defaults to None.
        """

        def __init__(self, units, activation=None, kernel_constraint=None, **kwargs):
            super().__init__(**kwargs)
            self.units = units
            self.activation = k.activations.get(activation)
            self.kernel_constraint = k.constraints.get(kernel_constraint)

        def build(self, input_shape):
            self.kernel = self.add_weight(
                name="kernel",
                shape=(input_shape[-1], self.units),
                initializer="glorot_uniform",
                constraint=self.kernel_constraint,
            )
            self.bias = self.add_weight(
                name="bias", shape=(self.units,), initializer="zeros"
            )

        def call(self, inputs):
            return self.activation(tf.matmul(inputs, self.kernel) + self.bias)

        def get_config(self):
            config = super().get_config()
            config.update(
                {
                    "units": self.units,
                    "activation": k.activations.serialize(self.activation),
                    "kernel_constraint": k.constraints.serialize(
                        self.kernel_constraint
                    ),
                }
            )
            return config

    return types.SimpleNamespace(
        ReflectionPadding2D=ReflectionPadding2D,
        SelfAttention=SelfAttention,
        Linear=Linear,
        CustomDense=CustomDense,
    )


def _instance_norm(k, name):
    """Instance normalization as keras-io's CycleGAN writes it on Keras 3.

    `GroupNormalization(groups=-1)`: one group per channel. tf-keras 2.21 has
    `GroupNormalization` too, with the same meaning of -1, so both Kerases
    get the same layer (keras-io's tf.keras version used tensorflow-addons'
    InstanceNormalization, which is gone).
    """
    gamma_init = k.initializers.RandomNormal(mean=0.0, stddev=0.02)
    return k.layers.GroupNormalization(
        groups=-1, gamma_initializer=gamma_init, name=name
    )


# --------------------------------------------------------------------------
# 1. DCGAN (TensorFlow's DCGAN tutorial)
# --------------------------------------------------------------------------


def dcgan_generator(k):
    """DCGAN generator as a `Sequential`, as TensorFlow's DCGAN tutorial.

    z(16) -> Dense(4*4*32, no bias) -> BN -> LeakyReLU -> Reshape(4, 4, 32)
    -> Conv2DTranspose(16, 5, s1) -> BN -> LeakyReLU
    -> Conv2DTranspose(8, 5, s2) -> BN -> LeakyReLU
    -> Conv2DTranspose(3, 5, s2, tanh). Output (16, 16, 3).
    """
    layers = k.layers
    return k.Sequential(
        [
            k.Input(shape=(LATENT,), name="z"),
            layers.Dense(4 * 4 * 32, use_bias=False, name="fc"),
            layers.BatchNormalization(name="fc_bn"),
            layers.LeakyReLU(name="fc_act"),
            layers.Reshape((4, 4, 32), name="reshape"),
            layers.Conv2DTranspose(
                16, 5, strides=1, padding="same", use_bias=False, name="deconv_1"
            ),
            layers.BatchNormalization(name="bn_1"),
            layers.LeakyReLU(name="act_1"),
            layers.Conv2DTranspose(
                8, 5, strides=2, padding="same", use_bias=False, name="deconv_2"
            ),
            layers.BatchNormalization(name="bn_2"),
            layers.LeakyReLU(name="act_2"),
            layers.Conv2DTranspose(
                3,
                5,
                strides=2,
                padding="same",
                use_bias=False,
                activation="tanh",
                name="deconv_3",
            ),
        ],
        name="dcgan_generator",
    )


def dcgan_discriminator(k):
    """DCGAN discriminator, functional, as TensorFlow's DCGAN tutorial.

    image(16, 16, 3) -> [Conv2D(5, s2) -> LeakyReLU -> Dropout(0.3)] x 2
    (16, 32 filters) -> Flatten -> Dense(1) logit.
    """
    layers = k.layers
    image = k.Input(shape=IMAGE_SHAPE, name="image")
    x = image
    for i, filters in ((1, 16), (2, 32)):
        x = layers.Conv2D(filters, 5, strides=2, padding="same", name=f"conv_{i}")(x)
        x = layers.LeakyReLU(name=f"act_{i}")(x)
        x = layers.Dropout(0.3, name=f"drop_{i}")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(1, name="score")(x)
    return k.Model(image, x, name="dcgan_discriminator")


# --------------------------------------------------------------------------
# 2. WGAN-GP (keras-io's WGAN-GP on MNIST)
# --------------------------------------------------------------------------


def wgan_gp_critic(k):
    """WGAN-GP critic, as keras-io's example, with the paper's layer norm.

    image(28, 28, 1) -> ZeroPadding2D(2) -> Conv2D(8, 5, s2) -> LeakyReLU
    -> 2 x [Conv2D(5, s2) -> LayerNormalization over (H, W, C) -> LeakyReLU
    -> Dropout(0.3)] (16, 32 filters) -> Flatten -> Dropout(0.2) -> Dense(1).
    No batch norm (the gradient penalty is per example). The layer norm's
    gamma and beta have shape (H, W, C): rank 3 but not kernels. Named
    "critic", the WGAN word for a discriminator.
    """
    layers = k.layers
    image = k.Input(shape=MNIST_SHAPE, name="image")
    x = layers.ZeroPadding2D((2, 2), name="pad")(image)
    x = layers.Conv2D(8, 5, strides=2, padding="same", name="conv_1")(x)
    x = layers.LeakyReLU(0.2, name="act_1")(x)
    for i, filters in ((2, 16), (3, 32)):
        x = layers.Conv2D(filters, 5, strides=2, padding="same", name=f"conv_{i}")(x)
        x = layers.LayerNormalization(axis=[1, 2, 3], name=f"ln_{i}")(x)
        x = layers.LeakyReLU(0.2, name=f"act_{i}")(x)
        x = layers.Dropout(0.3, name=f"drop_{i}")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dropout(0.2, name="drop")(x)
    x = layers.Dense(1, name="score")(x)
    return k.Model(image, x, name="critic")


def wgan_gp_generator(k):
    """WGAN-GP generator, as keras-io's example (upsample blocks).

    noise(16) -> Dense(4*4*32, no bias) -> BN -> LeakyReLU -> Reshape(4, 4, 32)
    -> 3 x [UpSampling2D -> Conv2D(3, no bias) -> BN -> activation]
    (16, 8, 1 filters; activations LeakyReLU, PReLU(shared_axes=[1, 2]) as a
    user passing their own, tanh) -> Cropping2D(2). Output (28, 28, 1).
    The PReLU's alpha has shape (1, 1, 8): rank 3 but not a kernel.
    """
    layers = k.layers
    noise = k.Input(shape=(LATENT,), name="noise")
    x = layers.Dense(4 * 4 * 32, use_bias=False, name="fc")(noise)
    x = layers.BatchNormalization(name="fc_bn")(x)
    x = layers.LeakyReLU(0.2, name="fc_act")(x)
    x = layers.Reshape((4, 4, 32), name="reshape")(x)
    activations = (
        layers.LeakyReLU(0.2, name="act_1"),
        layers.PReLU(shared_axes=[1, 2], name="prelu_2"),
        layers.Activation("tanh", name="tanh"),
    )
    for i, (filters, activation) in enumerate(
        zip((16, 8, 1), activations, strict=True), 1
    ):
        x = layers.UpSampling2D(name=f"up_{i}")(x)
        x = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"conv_{i}")(
            x
        )
        x = layers.BatchNormalization(name=f"bn_{i}")(x)
        x = activation(x)
    x = layers.Cropping2D((2, 2), name="crop")(x)
    return k.Model(noise, x, name="generator")


# --------------------------------------------------------------------------
# 3. CycleGAN (keras-io's CycleGAN)
# --------------------------------------------------------------------------

# keras-io uses 2 downsamplings and 9 residual blocks; one of each keeps the
# graph's shape at a fraction of the cost (tf-keras's GroupNormalization takes
# about 60 ms per symbolic call, and `cycle_gan` calls each generator twice).
_CYCLEGAN_FILTERS = 8
_CYCLEGAN_DOWN = 1
_CYCLEGAN_RESIDUAL = 1


def _kernel_init(k):
    """keras-io's GAN kernel initializer N(0, 0.02), a new instance per layer.

    keras-io creates one `RandomNormal` and passes it to every layer. tf-keras
    then gives every kernel of a given shape the *same* initial values (it
    warns: "The initializer RandomNormal is unseeded and being called
    multiple times, which will return identical values each time"), which
    would hide a test mixing up two layers' weights; Keras 3 draws anew.
    """
    return k.initializers.RandomNormal(mean=0.0, stddev=0.02)


def _resnet_generator(k, name):
    """keras-io's `get_resnet_generator`, every layer named `{name}_...`.

    image(16, 16, 3) -> ReflectionPadding2D(3) -> Conv2D(8, 7, no bias)
    -> instance norm -> ReLU -> Conv2D(16, 3, s2, no bias) -> IN -> ReLU
    -> residual block [ReflectionPadding2D -> Conv2D(3, valid) -> IN -> ReLU
    -> ReflectionPadding2D -> Conv2D -> IN, Add with the block's input]
    -> Conv2DTranspose(8, 3, s2, no bias) -> IN -> ReLU
    -> ReflectionPadding2D(3) -> Conv2D(3, 7) -> tanh. Output (16, 16, 3).
    Kernel initializer N(0, 0.02), instance norm as `_instance_norm`.
    """
    layers = k.layers
    pad = custom_layers(k).ReflectionPadding2D
    image = k.Input(shape=IMAGE_SHAPE, name=f"{name}_img_input")
    x = pad(padding=(3, 3), name=f"{name}_pad_in")(image)
    x = layers.Conv2D(
        _CYCLEGAN_FILTERS,
        7,
        kernel_initializer=_kernel_init(k),
        use_bias=False,
        name=f"{name}_conv_in",
    )(x)
    x = _instance_norm(k, f"{name}_norm_in")(x)
    x = layers.Activation("relu", name=f"{name}_relu_in")(x)
    filters = _CYCLEGAN_FILTERS
    for i in range(1, _CYCLEGAN_DOWN + 1):
        filters *= 2
        block = f"{name}_down_{i}"
        x = layers.Conv2D(
            filters,
            3,
            strides=2,
            padding="same",
            kernel_initializer=_kernel_init(k),
            use_bias=False,
            name=block,
        )(x)
        x = _instance_norm(k, f"{block}_norm")(x)
        x = layers.Activation("relu", name=f"{block}_relu")(x)
    for i in range(1, _CYCLEGAN_RESIDUAL + 1):
        block = f"{name}_res_{i}"
        y = x
        for j in (1, 2):
            y = pad(name=f"{block}_pad_{j}")(y)
            y = layers.Conv2D(
                filters,
                3,
                padding="valid",
                kernel_initializer=_kernel_init(k),
                use_bias=False,
                name=f"{block}_conv_{j}",
            )(y)
            y = _instance_norm(k, f"{block}_norm_{j}")(y)
            if j == 1:
                y = layers.Activation("relu", name=f"{block}_relu")(y)
        x = layers.Add(name=f"{block}_add")([x, y])
    for i in range(1, _CYCLEGAN_DOWN + 1):
        filters //= 2
        block = f"{name}_up_{i}"
        x = layers.Conv2DTranspose(
            filters,
            3,
            strides=2,
            padding="same",
            kernel_initializer=_kernel_init(k),
            use_bias=False,
            name=block,
        )(x)
        x = _instance_norm(k, f"{block}_norm")(x)
        x = layers.Activation("relu", name=f"{block}_relu")(x)
    x = pad(padding=(3, 3), name=f"{name}_pad_out")(x)
    x = layers.Conv2D(3, 7, padding="valid", name=f"{name}_conv_out")(x)
    x = layers.Activation("tanh", name=f"{name}_tanh")(x)
    return k.Model(image, x, name=name)


def _resnet_generator_kernel_layers(name):
    """The kernel layers of `_resnet_generator(k, name)`, by hand."""
    return [
        f"{name}_conv_in",
        f"{name}_down_1",
        f"{name}_res_1_conv_1",
        f"{name}_res_1_conv_2",
        f"{name}_up_1",
        f"{name}_conv_out",
    ]


def _patchgan_discriminator(k, name):
    """keras-io's `get_discriminator`, every layer named `{name}_...`.

    image(16, 16, 3) -> Conv2D(8, 4, s2) -> LeakyReLU(0.2)
    -> 2 x [Conv2D(4, no bias) -> instance norm -> LeakyReLU(0.2)]
    (16, 32 filters; strides 2, 1: keras-io's loop, one stride-2 block
    fewer) -> Conv2D(1, 4, s1). Output a (4, 4, 1) map of patch scores.
    """
    layers = k.layers
    image = k.Input(shape=IMAGE_SHAPE, name=f"{name}_img_input")
    x = layers.Conv2D(
        _CYCLEGAN_FILTERS,
        4,
        strides=2,
        padding="same",
        kernel_initializer=_kernel_init(k),
        name=f"{name}_conv_1",
    )(image)
    x = layers.LeakyReLU(0.2, name=f"{name}_act_1")(x)
    filters = _CYCLEGAN_FILTERS
    for i, strides in ((1, 2), (2, 1)):
        filters *= 2
        block = f"{name}_down_{i}"
        x = layers.Conv2D(
            filters,
            4,
            strides=strides,
            padding="same",
            kernel_initializer=_kernel_init(k),
            use_bias=False,
            name=block,
        )(x)
        x = _instance_norm(k, f"{block}_norm")(x)
        x = layers.LeakyReLU(0.2, name=f"{block}_act")(x)
    x = layers.Conv2D(
        1,
        4,
        strides=1,
        padding="same",
        kernel_initializer=_kernel_init(k),
        name=f"{name}_patch",
    )(x)
    return k.Model(image, x, name=name)


def _patchgan_kernel_layers(name):
    """The kernel layers of `_patchgan_discriminator(k, name)`, by hand."""
    return [
        f"{name}_conv_1",
        f"{name}_down_1",
        f"{name}_down_2",
        f"{name}_patch",
    ]


def cyclegan_generator(k):
    """CycleGAN's ResNet generator "generator_G" (see `_resnet_generator`)."""
    return _resnet_generator(k, "generator_G")


def cyclegan_discriminator(k):
    """CycleGAN's PatchGAN "discriminator_X" (see `_patchgan_discriminator`)."""
    return _patchgan_discriminator(k, "discriminator_X")


def cycle_gan(k):
    """CycleGAN's four networks in one functional model "cycle_gan".

    keras-io holds them in a subclassed `CycleGan` model with its own
    `train_step`; this is its forward computation as one graph, so that the
    parts are nested models: generators "generator_G" (X -> Y) and
    "generator_F" (Y -> X), discriminators "discriminator_X" and
    "discriminator_Y". Inputs [real_x, real_y], both (16, 16, 3); eight
    outputs: fake_y = G(x), fake_x = F(y), cycled_x = F(fake_y),
    cycled_y = G(fake_x), then D_X(x), D_X(fake_x), D_Y(y), D_Y(fake_y).
    Each nested model is called twice, sharing its weights. (keras-io's
    identity terms F(x), G(y) are left out: a third call of each generator
    adds a second to the build on tf-keras.)
    """
    gen_g = _resnet_generator(k, "generator_G")
    gen_f = _resnet_generator(k, "generator_F")
    disc_x = _patchgan_discriminator(k, "discriminator_X")
    disc_y = _patchgan_discriminator(k, "discriminator_Y")
    real_x = k.Input(shape=IMAGE_SHAPE, name="real_x")
    real_y = k.Input(shape=IMAGE_SHAPE, name="real_y")
    fake_y = gen_g(real_x)
    fake_x = gen_f(real_y)
    cycled_x = gen_f(fake_y)
    cycled_y = gen_g(fake_x)
    outputs = [
        fake_y,
        fake_x,
        cycled_x,
        cycled_y,
        disc_x(real_x),
        disc_x(fake_x),
        disc_y(real_y),
        disc_y(fake_y),
    ]
    return k.Model([real_x, real_y], outputs, name="cycle_gan")


# --------------------------------------------------------------------------
# 4. pix2pix (TensorFlow's pix2pix tutorial)
# --------------------------------------------------------------------------


def _downsample(k, name, filters, size, apply_batchnorm=True):
    """pix2pix's `downsample`: a Sequential built with `add` and no Input.

    Conv2D(size, s2, no bias) -> [BatchNormalization] -> LeakyReLU.
    """
    layers = k.layers
    result = k.Sequential(name=name)
    result.add(
        layers.Conv2D(
            filters,
            size,
            strides=2,
            padding="same",
            kernel_initializer=_kernel_init(k),
            use_bias=False,
            name=f"{name}_conv",
        )
    )
    if apply_batchnorm:
        result.add(layers.BatchNormalization(name=f"{name}_bn"))
    result.add(layers.LeakyReLU(name=f"{name}_act"))
    return result


def _upsample(k, name, filters, size, apply_dropout=False):
    """pix2pix's `upsample`: a Sequential built with `add` and no Input.

    Conv2DTranspose(size, s2, no bias) -> BatchNormalization
    -> [Dropout(0.5)] -> ReLU.
    """
    layers = k.layers
    result = k.Sequential(name=name)
    result.add(
        layers.Conv2DTranspose(
            filters,
            size,
            strides=2,
            padding="same",
            kernel_initializer=_kernel_init(k),
            use_bias=False,
            name=f"{name}_deconv",
        )
    )
    result.add(layers.BatchNormalization(name=f"{name}_bn"))
    if apply_dropout:
        result.add(layers.Dropout(0.5, name=f"{name}_dropout"))
    result.add(layers.ReLU(name=f"{name}_act"))
    return result


def pix2pix_generator(k):
    """pix2pix's U-Net generator, named "unet_2d" (a name with no role in it).

    image(32, 32, 3) -> down_1..down_4 (nested Sequential blocks, 8, 16, 32,
    32 filters, no batch norm in down_1; 32 -> 2 pixels) -> up_1..up_3
    (nested Sequential blocks, 32, 16, 8 filters, Dropout in up_1 and up_2),
    each followed by a skip Concatenate with the mirrored down block's
    output -> Conv2DTranspose(3, 4, s2, tanh) "last". Output (32, 32, 3).
    """
    layers = k.layers
    inputs = k.Input(shape=PIX2PIX_SHAPE, name="input_image")
    down_stack = [
        _downsample(k, "down_1", 8, 4, apply_batchnorm=False),
        _downsample(k, "down_2", 16, 4),
        _downsample(k, "down_3", 32, 4),
        _downsample(k, "down_4", 32, 4),
    ]
    up_stack = [
        _upsample(k, "up_1", 32, 4, apply_dropout=True),
        _upsample(k, "up_2", 16, 4, apply_dropout=True),
        _upsample(k, "up_3", 8, 4),
    ]
    last = layers.Conv2DTranspose(
        PIX2PIX_SHAPE[-1],
        4,
        strides=2,
        padding="same",
        kernel_initializer=_kernel_init(k),
        activation="tanh",
        name="last",
    )
    x = inputs
    skips = []
    for down in down_stack:
        x = down(x)
        skips.append(x)
    skips = reversed(skips[:-1])
    for i, (up, skip) in enumerate(zip(up_stack, skips, strict=True), 1):
        x = up(x)
        x = layers.Concatenate(name=f"skip_{i}")([x, skip])
    x = last(x)
    return k.Model(inputs, x, name="unet_2d")


def pix2pix_discriminator(k):
    """pix2pix's PatchGAN discriminator on (input image, target image).

    [input_image, target_image] (32, 32, 3) each -> Concatenate -> d_down_1..3
    (nested Sequential blocks, 8, 16, 32 filters, no batch norm in the first)
    -> ZeroPadding2D -> Conv2D(64, 4, s1, no bias) -> BN -> LeakyReLU
    -> ZeroPadding2D -> Conv2D(1, 4, s1) "last". Output a (2, 2, 1) map.
    Named "patch_gan".
    """
    layers = k.layers
    inp = k.Input(shape=PIX2PIX_SHAPE, name="input_image")
    tar = k.Input(shape=PIX2PIX_SHAPE, name="target_image")
    x = layers.Concatenate(name="concat")([inp, tar])
    x = _downsample(k, "d_down_1", 8, 4, apply_batchnorm=False)(x)
    x = _downsample(k, "d_down_2", 16, 4)(x)
    x = _downsample(k, "d_down_3", 32, 4)(x)
    x = layers.ZeroPadding2D(name="zero_pad_1")(x)
    x = layers.Conv2D(
        64,
        4,
        strides=1,
        kernel_initializer=_kernel_init(k),
        use_bias=False,
        name="conv",
    )(x)
    x = layers.BatchNormalization(name="bn")(x)
    x = layers.LeakyReLU(name="act")(x)
    x = layers.ZeroPadding2D(name="zero_pad_2")(x)
    x = layers.Conv2D(1, 4, strides=1, kernel_initializer=_kernel_init(k), name="last")(
        x
    )
    return k.Model([inp, tar], x, name="patch_gan")


# --------------------------------------------------------------------------
# 5. Conditional GAN
# --------------------------------------------------------------------------


def conditional_generator(k):
    """ACGAN-style conditional generator (Keras-GAN's ACGAN): label times z.

    noise(16) float, label(1) int32 -> Embedding(10, 16) -> Flatten
    -> Multiply([noise, embedding]) -> Dense(4*4*16) -> BN -> LeakyReLU
    -> Reshape(4, 4, 16) -> UpSampling2D -> Conv2D(8, 3) -> BN -> LeakyReLU
    -> UpSampling2D -> Conv2D(3, 3) -> Activation("tanh"). Output (16, 16, 3).
    """
    layers = k.layers
    noise = k.Input(shape=(LATENT,), name="noise")
    label = k.Input(shape=(1,), dtype="int32", name="label")
    embedding = layers.Embedding(NUM_CLASSES, LATENT, name="label_embedding")(label)
    embedding = layers.Flatten(name="label_flatten")(embedding)
    x = layers.Multiply(name="condition")([noise, embedding])
    x = layers.Dense(4 * 4 * 16, name="fc")(x)
    x = layers.BatchNormalization(momentum=0.8, name="fc_bn")(x)
    x = layers.LeakyReLU(0.2, name="fc_act")(x)
    x = layers.Reshape((4, 4, 16), name="reshape")(x)
    x = layers.UpSampling2D(name="up_1")(x)
    x = layers.Conv2D(8, 3, padding="same", name="conv_1")(x)
    x = layers.BatchNormalization(momentum=0.8, name="bn_1")(x)
    x = layers.LeakyReLU(0.2, name="act_1")(x)
    x = layers.UpSampling2D(name="up_2")(x)
    x = layers.Conv2D(3, 3, padding="same", name="conv_2")(x)
    x = layers.Activation("tanh", name="tanh")(x)
    return k.Model([noise, label], x, name="conditional_generator")


def projection_discriminator(k):
    """SNGAN's projection discriminator (Miyato & Koyama 2018).

    image(16, 16, 3) -> Conv2D(16, 3, s2) -> ReLU -> Conv2D(32, 3, s2) -> ReLU
    -> GlobalAveragePooling2D = h (32); label(1) int32 -> Embedding(10, 32)
    -> Flatten = e. Output Dense(1)(h) + sum(e * h): a Multiply layer, then
    the sum over features written as users write it in each Keras
    (`keras.ops.sum` on Keras 3, `tf.reduce_sum` on tf-keras, which becomes
    a TFOpLambda layer), merged by an Add layer.
    """
    layers = k.layers
    image = k.Input(shape=IMAGE_SHAPE, name="image")
    label = k.Input(shape=(1,), dtype="int32", name="label")
    x = layers.Conv2D(16, 3, strides=2, padding="same", name="conv_1")(image)
    x = layers.ReLU(name="relu_1")(x)
    x = layers.Conv2D(32, 3, strides=2, padding="same", name="conv_2")(x)
    x = layers.ReLU(name="relu_2")(x)
    h = layers.GlobalAveragePooling2D(name="pool")(x)
    linear = layers.Dense(1, name="linear")(h)
    e = layers.Embedding(NUM_CLASSES, 32, name="embed")(label)
    e = layers.Flatten(name="embed_flatten")(e)
    product = layers.Multiply(name="product")([e, h])
    if _is_keras3(k):
        projection = k.ops.sum(product, axis=-1, keepdims=True)
    else:
        projection = tf.reduce_sum(product, axis=-1, keepdims=True)
    score = layers.Add(name="score")([linear, projection])
    return k.Model([image, label], score, name="projection_discriminator")


# --------------------------------------------------------------------------
# 6. SAGAN-style attention
# --------------------------------------------------------------------------


def attention_discriminator(k):
    """Discriminator with MultiHeadAttention over spatial positions.

    image(16, 16, 3) -> Conv2D(16, 3, s2) -> LeakyReLU -> Reshape(64, 16)
    -> MultiHeadAttention(2 heads, key_dim 8)(x, x) -> Add (residual)
    -> Reshape(8, 8, 16) -> Conv2D(32, 3, s2) -> LeakyReLU -> Flatten
    -> Dense(1). The attention's four projection kernels are its
    EinsumDense sublayers' ("query", "key", "value", "attention_output").
    """
    layers = k.layers
    image = k.Input(shape=IMAGE_SHAPE, name="image")
    x = layers.Conv2D(16, 3, strides=2, padding="same", name="conv_1")(image)
    x = layers.LeakyReLU(0.2, name="act_1")(x)
    x = layers.Reshape((8 * 8, 16), name="to_positions")(x)
    attended = layers.MultiHeadAttention(num_heads=2, key_dim=8, name="attention")(x, x)
    x = layers.Add(name="residual")([x, attended])
    x = layers.Reshape((8, 8, 16), name="to_image")(x)
    x = layers.Conv2D(32, 3, strides=2, padding="same", name="conv_2")(x)
    x = layers.LeakyReLU(0.2, name="act_2")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(1, name="score")(x)
    return k.Model(image, x, name="attention_discriminator")


def sagan_generator(k):
    """SAGAN-style generator with the custom `SelfAttention` layer.

    z(16) -> Dense(4*4*32) -> Reshape(4, 4, 32) -> UpSampling2D
    -> Conv2D(16, 3) -> BN -> ReLU -> SelfAttention "attention" (1x1 convs
    f, g: 2 channels, h: 16) -> UpSampling2D -> Conv2D(8, 3) -> BN -> ReLU
    -> Conv2D(3, 3, tanh). Output (16, 16, 3).
    """
    layers = k.layers
    z = k.Input(shape=(LATENT,), name="z")
    x = layers.Dense(4 * 4 * 32, name="fc")(z)
    x = layers.Reshape((4, 4, 32), name="reshape")(x)
    x = layers.UpSampling2D(name="up_1")(x)
    x = layers.Conv2D(16, 3, padding="same", name="conv_1")(x)
    x = layers.BatchNormalization(name="bn_1")(x)
    x = layers.ReLU(name="relu_1")(x)
    x = custom_layers(k).SelfAttention(name="attention")(x)
    x = layers.UpSampling2D(name="up_2")(x)
    x = layers.Conv2D(8, 3, padding="same", name="conv_2")(x)
    x = layers.BatchNormalization(name="bn_2")(x)
    x = layers.ReLU(name="relu_2")(x)
    x = layers.Conv2D(3, 3, padding="same", activation="tanh", name="to_rgb")(x)
    return k.Model(z, x, name="sagan_generator")


# --------------------------------------------------------------------------
# 7. WaveGAN (Donahue et al. 2019), without phase shuffle
# --------------------------------------------------------------------------


def wavegan_generator(k):
    """WaveGAN generator: length-25 kernels, stride 4 transposed 1-D convs.

    z(16) -> Dense(16*32) -> Reshape(16, 32) -> ReLU
    -> Conv1DTranspose(16, 25, s4) -> ReLU -> Conv1DTranspose(1, 25, s4, tanh).
    Output (256, 1) samples.
    """
    layers = k.layers
    z = k.Input(shape=(LATENT,), name="z")
    x = layers.Dense(16 * 32, name="fc")(z)
    x = layers.Reshape((16, 32), name="reshape")(x)
    x = layers.ReLU(name="relu_0")(x)
    x = layers.Conv1DTranspose(16, 25, strides=4, padding="same", name="upconv_1")(x)
    x = layers.ReLU(name="relu_1")(x)
    x = layers.Conv1DTranspose(
        1, 25, strides=4, padding="same", activation="tanh", name="upconv_2"
    )(x)
    return k.Model(z, x, name="wavegan_generator")


def wavegan_discriminator(k):
    """WaveGAN discriminator as a `Sequential`, with no phase shuffle.

    audio(256, 1) -> Conv1D(16, 25, s4) -> LeakyReLU(0.2)
    -> Conv1D(32, 25, s4) -> LeakyReLU(0.2) -> Flatten -> Dense(1).
    Phase shuffle (a random shift between layers) is left out: WaveGAN
    trains without it too, and it holds no weights.
    """
    layers = k.layers
    return k.Sequential(
        [
            k.Input(shape=(AUDIO_LENGTH, 1), name="audio"),
            layers.Conv1D(16, 25, strides=4, padding="same", name="conv_1"),
            layers.LeakyReLU(0.2, name="act_1"),
            layers.Conv1D(32, 25, strides=4, padding="same", name="conv_2"),
            layers.LeakyReLU(0.2, name="act_2"),
            layers.Flatten(name="flatten"),
            layers.Dense(1, name="score"),
        ],
        name="wavegan_discriminator",
    )


# --------------------------------------------------------------------------
# 8. Video GAN (VGAN / TGAN-like 3-D convolutions)
# --------------------------------------------------------------------------


def video_generator(k):
    """Video generator of 3-D transposed convolutions.

    z(16) -> Dense(1*2*2*32) -> Reshape(1, 2, 2, 32) -> BN -> ReLU
    -> Conv3DTranspose(16, 4, s2) -> BN -> ReLU
    -> Conv3DTranspose(3, 4, s2, tanh). Output (4, 8, 8, 3): 4 frames of 8x8.
    """
    layers = k.layers
    z = k.Input(shape=(LATENT,), name="z")
    x = layers.Dense(1 * 2 * 2 * 32, name="fc")(z)
    x = layers.Reshape((1, 2, 2, 32), name="reshape")(x)
    x = layers.BatchNormalization(name="bn_0")(x)
    x = layers.ReLU(name="relu_0")(x)
    x = layers.Conv3DTranspose(16, 4, strides=2, padding="same", name="deconv_1")(x)
    x = layers.BatchNormalization(name="bn_1")(x)
    x = layers.ReLU(name="relu_1")(x)
    x = layers.Conv3DTranspose(
        3, 4, strides=2, padding="same", activation="tanh", name="deconv_2"
    )(x)
    return k.Model(z, x, name="video_generator")


def video_discriminator(k):
    """Video discriminator of 3-D convolutions.

    video(4, 8, 8, 3) -> Conv3D(8, 4, s2) -> LeakyReLU(0.2)
    -> Conv3D(16, 4, s2) -> LeakyReLU(0.2) -> Flatten -> Dense(1).
    """
    layers = k.layers
    video = k.Input(shape=VIDEO_SHAPE, name="video")
    x = layers.Conv3D(8, 4, strides=2, padding="same", name="conv_1")(video)
    x = layers.LeakyReLU(0.2, name="act_1")(x)
    x = layers.Conv3D(16, 4, strides=2, padding="same", name="conv_2")(x)
    x = layers.LeakyReLU(0.2, name="act_2")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(1, name="score")(x)
    return k.Model(video, x, name="video_discriminator")


# --------------------------------------------------------------------------
# 9. Recurrent models
# --------------------------------------------------------------------------


def text_discriminator(k):
    """Text discriminator over token ids (SeqGAN/MaskGAN-like).

    tokens(8) int32 -> Embedding(20, 8, mask_zero=True)
    -> Bidirectional(LSTM(8, return_sequences=True)) -> GRU(8) -> Dense(1),
    the recurrent layers with `dropout=0.2, recurrent_dropout=0.2` as in
    Keras's IMDB LSTM example. The mask of padding (token 0) flows through
    the recurrent layers.

    The recurrent dropout also keeps the build fast: with the defaults,
    tf-keras's LSTM and GRU take the cuDNN-or-not `function_register` path,
    which registers a function with its gradient at every symbolic call,
    about 1.5 s per layer here (Keras 3 does not).
    """
    layers = k.layers
    tokens = k.Input(shape=(SEQUENCE,), dtype="int32", name="tokens")
    x = layers.Embedding(VOCABULARY, 8, mask_zero=True, name="embedding")(tokens)
    x = layers.Bidirectional(
        layers.LSTM(
            8, return_sequences=True, dropout=0.2, recurrent_dropout=0.2, name="lstm"
        ),
        name="bi_lstm",
    )(x)
    x = layers.GRU(8, dropout=0.2, recurrent_dropout=0.2, name="gru")(x)
    x = layers.Dense(1, name="score")(x)
    return k.Model(tokens, x, name="text_discriminator")


def sequence_generator(k):
    """Recurrent time-series generator (RCGAN-like): noise per step in.

    noise(8, 4) -> SimpleRNN(8, return_sequences=True)
    -> TimeDistributed(Dense(8, relu)) -> EinsumDense("abc,cd->abd", 3,
    bias on "d") -> Activation("tanh"). Output (8, 3): 3 features per step.
    """
    layers = k.layers
    noise = k.Input(shape=(SEQUENCE, 4), name="noise")
    x = layers.SimpleRNN(8, return_sequences=True, name="rnn")(noise)
    x = layers.TimeDistributed(
        layers.Dense(8, activation="relu", name="step_dense"), name="per_step"
    )(x)
    x = layers.EinsumDense(
        "abc,cd->abd", output_shape=(None, 3), bias_axes="d", name="to_features"
    )(x)
    x = layers.Activation("tanh", name="tanh")(x)
    return k.Model(noise, x, name="sequence_generator")


# --------------------------------------------------------------------------
# 10. Separable convolutions and hand-written kernel layers
# --------------------------------------------------------------------------


def separable_discriminator(k):
    """Discriminator with depthwise/separable convs and custom dense layers.

    image(16, 16, 3) -> DepthwiseConv2D(3, depth_multiplier=2) -> LeakyReLU
    -> SeparableConv2D(16, 3, s2) -> LeakyReLU -> GlobalAveragePooling2D
    -> Linear(16) "linear" (raw `x @ self.w`, no constraint argument)
    -> LeakyReLU -> CustomDense(1) "custom_dense" (takes `kernel_constraint`,
    built with none).
    """
    layers = k.layers
    custom = custom_layers(k)
    image = k.Input(shape=IMAGE_SHAPE, name="image")
    x = layers.DepthwiseConv2D(3, depth_multiplier=2, padding="same", name="dwconv")(
        image
    )
    x = layers.LeakyReLU(0.2, name="act_1")(x)
    x = layers.SeparableConv2D(16, 3, strides=2, padding="same", name="sepconv")(x)
    x = layers.LeakyReLU(0.2, name="act_2")(x)
    x = layers.GlobalAveragePooling2D(name="pool")(x)
    x = custom.Linear(16, name="linear")(x)
    x = layers.LeakyReLU(0.2, name="act_3")(x)
    x = custom.CustomDense(1, name="custom_dense")(x)
    return k.Model(image, x, name="separable_discriminator")


# --------------------------------------------------------------------------
# Registry and expectations
# --------------------------------------------------------------------------

BUILDERS = {
    builder.__name__: builder
    for builder in (
        dcgan_generator,
        dcgan_discriminator,
        wgan_gp_critic,
        wgan_gp_generator,
        cyclegan_generator,
        cyclegan_discriminator,
        cycle_gan,
        pix2pix_generator,
        pix2pix_discriminator,
        conditional_generator,
        projection_discriminator,
        attention_discriminator,
        sagan_generator,
        wavegan_generator,
        wavegan_discriminator,
        video_generator,
        video_discriminator,
        text_discriminator,
        sequence_generator,
        separable_discriminator,
    )
}

# Builders that need Keras 3; every layer used here exists in tf-keras 2.21.
KERAS3_ONLY: frozenset[str] = frozenset()


def _facts(
    role,
    kernels,
    kernel_layers,
    output_shapes,
    *,
    nested_roles=None,
    custom_kernel_layers=None,
    sequential=False,
    tf_keras_formats=("h5", "tf"),
):
    """One `EXPECTED` entry; `role=None` leaves "role" out (roleless model)."""
    assert len(kernel_layers) <= kernels, "a kernel layer holds a kernel or more"
    facts = {
        "nested_roles": dict(nested_roles or {}),
        "kernels": kernels,
        "kernel_layers": sorted(kernel_layers),
        "custom_kernel_layers": dict(sorted((custom_kernel_layers or {}).items())),
        "output_shapes": [tuple(shape) for shape in output_shapes],
        "sequential": sequential,
        "tf_keras_formats": list(tf_keras_formats),
    }
    if role is not None:
        facts["role"] = role
    return facts


_IMAGE = IMAGE_SHAPE
_SCORE = (1,)

EXPECTED = {
    # fc + 3 transposed convs.
    "dcgan_generator": _facts(
        "generator",
        4,
        ["fc", "deconv_1", "deconv_2", "deconv_3"],
        [_IMAGE],
        sequential=True,
    ),
    # 2 convs + dense.
    "dcgan_discriminator": _facts(
        "discriminator", 3, ["conv_1", "conv_2", "score"], [_SCORE]
    ),
    # 3 convs + dense; layer-norm gammas/betas are rank 3, not kernels.
    "wgan_gp_critic": _facts(
        "discriminator", 4, ["conv_1", "conv_2", "conv_3", "score"], [_SCORE]
    ),
    # fc + 3 convs; the PReLU alpha is not a kernel.
    "wgan_gp_generator": _facts(
        "generator", 4, ["fc", "conv_1", "conv_2", "conv_3"], [MNIST_SHAPE]
    ),
    # conv_in + down + residual block's 2 convs + up + conv_out.
    "cyclegan_generator": _facts(
        "generator", 6, _resnet_generator_kernel_layers("generator_G"), [_IMAGE]
    ),
    # conv_1 + 2 down + patch conv.
    "cyclegan_discriminator": _facts(
        "discriminator", 4, _patchgan_kernel_layers("discriminator_X"), [(4, 4, 1)]
    ),
    # 2 generators x 6 + 2 discriminators x 4, each counted once.
    "cycle_gan": _facts(
        None,
        20,
        _resnet_generator_kernel_layers("generator_G")
        + _resnet_generator_kernel_layers("generator_F")
        + _patchgan_kernel_layers("discriminator_X")
        + _patchgan_kernel_layers("discriminator_Y"),
        [_IMAGE] * 4 + [(4, 4, 1)] * 4,
        nested_roles={
            "generator_G": "generator",
            "generator_F": "generator",
            "discriminator_X": "discriminator",
            "discriminator_Y": "discriminator",
        },
    ),
    # 4 down convs + 3 up transposed convs + last.
    "pix2pix_generator": _facts(
        "generator",
        8,
        [
            "down_1_conv",
            "down_2_conv",
            "down_3_conv",
            "down_4_conv",
            "up_1_deconv",
            "up_2_deconv",
            "up_3_deconv",
            "last",
        ],
        [PIX2PIX_SHAPE],
    ),
    # 3 down convs + conv + last.
    "pix2pix_discriminator": _facts(
        "discriminator",
        5,
        ["d_down_1_conv", "d_down_2_conv", "d_down_3_conv", "conv", "last"],
        [(2, 2, 1)],
    ),
    # label embedding + fc + 2 convs.
    "conditional_generator": _facts(
        "generator", 4, ["label_embedding", "fc", "conv_1", "conv_2"], [_IMAGE]
    ),
    # 2 convs + linear + embedding.
    "projection_discriminator": _facts(
        "discriminator", 4, ["conv_1", "conv_2", "linear", "embed"], [_SCORE]
    ),
    # 2 convs + 4 attention projections + dense.
    "attention_discriminator": _facts(
        "discriminator", 7, ["conv_1", "attention", "conv_2", "score"], [_SCORE]
    ),
    # fc + 3 convs + f, g, h; gamma is not a kernel.
    "sagan_generator": _facts(
        "generator",
        7,
        ["fc", "conv_1", "attention", "conv_2", "to_rgb"],
        [_IMAGE],
        custom_kernel_layers={"attention": False},
        tf_keras_formats=["tf"],
    ),
    # fc + 2 transposed convs.
    "wavegan_generator": _facts(
        "generator", 3, ["fc", "upconv_1", "upconv_2"], [(AUDIO_LENGTH, 1)]
    ),
    # 2 convs + dense.
    "wavegan_discriminator": _facts(
        "discriminator", 3, ["conv_1", "conv_2", "score"], [_SCORE], sequential=True
    ),
    # fc + 2 transposed convs.
    "video_generator": _facts(
        "generator", 3, ["fc", "deconv_1", "deconv_2"], [VIDEO_SHAPE]
    ),
    # 2 convs + dense.
    "video_discriminator": _facts(
        "discriminator", 3, ["conv_1", "conv_2", "score"], [_SCORE]
    ),
    # embedding + 2 directions x (kernel, recurrent) + GRU x 2 + dense.
    "text_discriminator": _facts(
        "discriminator", 8, ["embedding", "bi_lstm", "gru", "score"], [_SCORE]
    ),
    # SimpleRNN x 2 + per-step dense + einsum dense.
    "sequence_generator": _facts(
        "generator", 4, ["rnn", "per_step", "to_features"], [(SEQUENCE, 3)]
    ),
    # depthwise + separable (depthwise, pointwise) + linear + custom dense.
    "separable_discriminator": _facts(
        "discriminator",
        5,
        ["dwconv", "sepconv", "linear", "custom_dense"],
        [_SCORE],
        custom_kernel_layers={"custom_dense": True, "linear": False},
        tf_keras_formats=[],
    ),
}

assert set(EXPECTED) == set(BUILDERS)
