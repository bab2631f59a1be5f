"""A zoo of tiny Keras models for the rewriter's tests, for both Kerases.

Every builder takes `k`, the Keras package module (`keras` or `tf_keras`),
and returns a fresh model whose layers carry fixed, deterministic names, so
that the tests can check what the rewriter did by layer name. The models are
kept tiny (16x16 images, a few filters): building one and running a forward
pass takes well under a second.

`ALL_BUILDERS` maps a name to every builder that returns one model (functional
or Sequential); `gan` (three models) and `subclassed` (no functional graph)
are left out of it. `EXPECTED` holds, per builder of `ALL_BUILDERS`, the facts
the rewriter tests check:

- `"role"`: `"generator"` or `"discriminator"`, as a careful human would say.
- `"kernel_layers"`: sorted names of the layers holding a kernel spectral
  normalization applies to (Dense, Conv*, Conv*Transpose, DepthwiseConv*,
  SeparableConv*, Embedding, MultiHeadAttention...), nested models included.
- `"progan_after"` (generators only): sorted names of the layers (or inputs)
  after whose output the ProGAN policy inserts a PixelNorm: every rank-2
  floating-point model input, and every hidden activation point (an
  activation layer with a non-linear function, or a weighted layer with a
  non-linear built-in activation) from which a model output cannot be reached
  without passing another kernel-holding layer. It is judged on the whole
  model, across nested models.
- `"non_trainable"`: sorted names of the layers built with `trainable=False`.
- `"deterministic"`: whether two forward passes on the same batch always give
  the same output (False where a Dropout is called with `training=True`; see
  `call_kwargs` for when each Keras honours that).
- `"needs_nchw"`: whether a forward pass needs TensorFlow's NCHW convolution,
  which a CPU runs only with oneDNN on; `forward_runs(name)` tells whether it
  runs here.

`forward_input(k, model)` returns a deterministic numpy batch of two examples
in the structure the model's inputs were given in.
"""

from __future__ import annotations

import functools

import numpy as np
import tensorflow as tf

LATENT = 32
IMAGE_SHAPE = (16, 16, 3)
NUM_CLASSES = 10
VOCABULARY = 20
SEQUENCE = 6


def _is_keras3(k) -> bool:
    """Whether `k` is Keras 3 (`keras`) rather than tf-keras (`tf_keras`)."""
    return int(k.__version__.split(".")[0]) >= 3


# --------------------------------------------------------------------------
# Generators
# --------------------------------------------------------------------------


def progan_generator(k):
    """ProGAN-style generator with LeakyReLU *layers*.

    z(32) -> Dense(4*4*32) -> LeakyReLU -> Reshape(4, 4, 32)
    -> 2 x [UpSampling2D, Conv2D 3x3, LeakyReLU] -> toRGB Conv2D 1x1, tanh.
    Output (16, 16, 3).
    """
    layers = k.layers
    z = k.Input(shape=(LATENT,), name="z")
    x = layers.Dense(4 * 4 * 32, name="dense")(z)
    x = layers.LeakyReLU(0.2, name="dense_act")(x)
    x = layers.Reshape((4, 4, 32), name="reshape")(x)
    for i, filters in ((1, 16), (2, 8)):
        x = layers.UpSampling2D(name=f"up_{i}")(x)
        x = layers.Conv2D(filters, 3, padding="same", name=f"conv_{i}")(x)
        x = layers.LeakyReLU(0.2, name=f"act_{i}")(x)
    x = layers.Conv2D(3, 1, activation="tanh", name="to_rgb")(x)
    return k.Model(z, x, name="progan_generator")


def progan_generator_fused(k):
    """The ProGAN generator with activations fused into the weighted layers.

    Same topology as `progan_generator`, but Dense and Conv2D carry
    `activation="relu"` / `"elu"` (strings: an activation *layer* object as
    `activation=` does not serialize in every Keras), and toRGB `"tanh"`.
    """
    layers = k.layers
    z = k.Input(shape=(LATENT,), name="z")
    x = layers.Dense(4 * 4 * 32, activation="relu", name="dense")(z)
    x = layers.Reshape((4, 4, 32), name="reshape")(x)
    x = layers.UpSampling2D(name="up_1")(x)
    x = layers.Conv2D(16, 3, padding="same", activation="relu", name="conv_1")(x)
    x = layers.UpSampling2D(name="up_2")(x)
    x = layers.Conv2D(8, 3, padding="same", activation="elu", name="conv_2")(x)
    x = layers.Conv2D(3, 1, activation="tanh", name="to_rgb")(x)
    return k.Model(z, x, name="progan_generator_fused")


def dcgan_generator(k):
    """DCGAN generator: Dense/BN/ReLU, two strided Conv2DTranspose, tanh layer.

    z(16) -> Dense -> BN -> ReLU -> Reshape(4, 4, 16) -> Conv2DTranspose s2
    -> BN -> ReLU -> Conv2DTranspose s2 (3 channels) -> Activation("tanh").
    Output (16, 16, 3).
    """
    layers = k.layers
    z = k.Input(shape=(16,), name="z")
    x = layers.Dense(4 * 4 * 16, use_bias=False, name="dense")(z)
    x = layers.BatchNormalization(name="bn_0")(x)
    x = layers.ReLU(name="relu_0")(x)
    x = layers.Reshape((4, 4, 16), name="reshape")(x)
    x = layers.Conv2DTranspose(
        8, 4, strides=2, padding="same", use_bias=False, name="deconv_1"
    )(x)
    x = layers.BatchNormalization(name="bn_1")(x)
    x = layers.ReLU(name="relu_1")(x)
    x = layers.Conv2DTranspose(3, 4, strides=2, padding="same", name="deconv_2")(x)
    x = layers.Activation("tanh", name="tanh")(x)
    return k.Model(z, x, name="dcgan_generator")


def conditional_generator(k):
    """Class-conditional generator: label embedding concatenated with z.

    z(16) float and label(1) int32 -> Embedding(10, 8) -> Flatten
    -> Concatenate([z, embedding]) -> Dense -> ReLU -> Reshape(4, 4, 8)
    -> Conv2DTranspose s2 (3 channels) -> Activation("tanh"). Output (8, 8, 3).
    The label input is rank 2 but integer: it gets no PixelNorm.
    """
    layers = k.layers
    z = k.Input(shape=(16,), name="z")
    label = k.Input(shape=(1,), dtype="int32", name="label")
    e = layers.Embedding(NUM_CLASSES, 8, name="embedding")(label)
    e = layers.Flatten(name="emb_flatten")(e)
    x = layers.Concatenate(name="concat")([z, e])
    x = layers.Dense(4 * 4 * 8, name="dense")(x)
    x = layers.ReLU(name="relu_0")(x)
    x = layers.Reshape((4, 4, 8), name="reshape")(x)
    x = layers.Conv2DTranspose(3, 4, strides=2, padding="same", name="deconv")(x)
    x = layers.Activation("tanh", name="tanh")(x)
    return k.Model([z, label], x, name="conditional_generator")


def _upsampling_block(k, name, filters, channels):
    """Sequential [UpSampling2D, Conv2D 3x3, LeakyReLU] named `name`."""
    layers = k.layers
    return k.Sequential(
        [
            k.Input(shape=(None, None, channels), name=f"{name}_input"),
            layers.UpSampling2D(name=f"{name}_up"),
            layers.Conv2D(filters, 3, padding="same", name=f"{name}_conv"),
            layers.LeakyReLU(0.2, name=f"{name}_act"),
        ],
        name=name,
    )


def nested_generator(k):
    """Generator built from nested models, two levels deep.

    z(16) -> Dense -> LeakyReLU -> Reshape(4, 4, 16) -> "body" (a functional
    model holding the Sequential blocks "block_1" and "block_2", each
    [UpSampling2D, Conv2D, LeakyReLU]) -> "to_rgb" (a functional model:
    Conv2D 1x1 "to_rgb_conv" + Activation("tanh") "to_rgb_tanh").
    Output (16, 16, 3). Layer names are unique across all the nesting levels.
    """
    layers = k.layers
    body_in = k.Input(shape=(4, 4, 16), name="body_input")
    h = _upsampling_block(k, "block_1", 16, 16)(body_in)
    h = _upsampling_block(k, "block_2", 8, 16)(h)
    body = k.Model(body_in, h, name="body")

    rgb_in = k.Input(shape=(16, 16, 8), name="to_rgb_input")
    rgb = layers.Conv2D(3, 1, name="to_rgb_conv")(rgb_in)
    rgb = layers.Activation("tanh", name="to_rgb_tanh")(rgb)
    to_rgb = k.Model(rgb_in, rgb, name="to_rgb")

    z = k.Input(shape=(16,), name="z")
    x = layers.Dense(4 * 4 * 16, name="dense")(z)
    x = layers.LeakyReLU(0.2, name="dense_act")(x)
    x = layers.Reshape((4, 4, 16), name="reshape")(x)
    x = body(x)
    x = to_rgb(x)
    return k.Model(z, x, name="nested_generator")


def symbolic_ops(k):
    """Generator with operations applied directly to symbolic tensors.

    z(16) -> Dense(8) -> LeakyReLU -> h; then `h * 2.0`, `h[:, 0]` (reshaped
    to (1,) by a Reshape layer) and a concatenation of both -> Dense(4*4*3)
    -> Reshape(4, 4, 3) -> Activation("tanh").

    On tf-keras the operations become TFOpLambda / SlicingOpLambda layers
    (`tf.concat` is used there); on Keras 3 they are plain operations of the
    functional graph (`*`, `[]` and `k.ops.concatenate`: TensorFlow ops on
    Keras 3 KerasTensors raise). Their names are Keras's, not ours, and
    depend on what was built before in the session: tf-keras names the
    layers "tf.math.multiply", "tf.__operators__.getitem" and "tf.concat"
    ("tf.concat_1", ... on later builds); Keras 3 names the operations
    "multiply", "get_item" and "concatenate" (likewise suffixed), and lists
    them in `model._operations` only, not in `model.layers`.
    """
    layers = k.layers
    z = k.Input(shape=(16,), name="z")
    h = layers.Dense(8, name="dense")(z)
    h = layers.LeakyReLU(0.2, name="dense_act")(h)
    doubled = h * 2.0
    first = layers.Reshape((1,), name="first_reshape")(h[:, 0])
    if _is_keras3(k):
        x = k.ops.concatenate([doubled, first], axis=-1)
    else:
        x = tf.concat([doubled, first], axis=-1)
    x = layers.Dense(4 * 4 * 3, name="to_image")(x)
    x = layers.Reshape((4, 4, 3), name="reshape")(x)
    x = layers.Activation("tanh", name="tanh")(x)
    return k.Model(z, x, name="symbolic_ops")


def channels_first_generator(k):
    """Generator in channels_first layout.

    z(16) -> Dense(8*4*4, relu) -> Reshape(8, 4, 4) -> UpSampling2D
    -> Conv2D(8, 3, relu, channels_first) -> LeakyReLU
    -> Conv2D(3, 3, tanh, channels_first). Output (3, 8, 8).

    Builds symbolically on both Kerases. Forward pass on a CPU-only
    TensorFlow 2.21: both Kerases run it while oneDNN is on (the default on
    x86); with TF_ENABLE_ONEDNN_OPTS=0 both fail with "UnimplementedError:
    The Conv2D op currently only supports the NHWC tensor format on the CPU.
    The op was given the format: NCHW". Check `forward_runs(name)` first.
    """
    layers = k.layers
    cf = "channels_first"
    z = k.Input(shape=(16,), name="z")
    x = layers.Dense(8 * 4 * 4, activation="relu", name="dense")(z)
    x = layers.Reshape((8, 4, 4), name="reshape")(x)
    x = layers.UpSampling2D(data_format=cf, name="up")(x)
    x = layers.Conv2D(
        8, 3, padding="same", activation="relu", data_format=cf, name="conv_1"
    )(x)
    x = layers.LeakyReLU(0.2, name="lrelu")(x)
    x = layers.Conv2D(
        3, 3, padding="same", activation="tanh", data_format=cf, name="to_rgb"
    )(x)
    return k.Model(z, x, name="channels_first_generator")


# --------------------------------------------------------------------------
# Discriminators
# --------------------------------------------------------------------------


def dcgan_discriminator(k):
    """DCGAN discriminator.

    image(16, 16, 3) -> Conv2D s2 -> LeakyReLU -> Conv2D s2 -> BN -> LeakyReLU
    -> Flatten -> Dense(1).
    """
    layers = k.layers
    image = k.Input(shape=IMAGE_SHAPE, name="image")
    x = layers.Conv2D(8, 4, strides=2, padding="same", name="conv_1")(image)
    x = layers.LeakyReLU(0.2, name="lrelu_1")(x)
    x = layers.Conv2D(16, 4, strides=2, padding="same", name="conv_2")(x)
    x = layers.BatchNormalization(name="bn_2")(x)
    x = layers.LeakyReLU(0.2, name="lrelu_2")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(1, name="dense")(x)
    return k.Model(image, x, name="dcgan_discriminator")


def sngan_discriminator(k):
    """SNGAN projection discriminator with depthwise and separable convs.

    image(16, 16, 3) -> DepthwiseConv2D -> LeakyReLU -> SeparableConv2D s2
    -> LeakyReLU -> Conv2D s2 -> LeakyReLU -> GlobalAveragePooling2D = h (16).
    label(1) int32 -> Embedding(10, 16) -> Flatten = e.
    output = Dense(1)(h) + sum(e * h), the sum of products being a
    `Dot(axes=1)` layer named "projection", merged by an Add layer.
    """
    layers = k.layers
    image = k.Input(shape=IMAGE_SHAPE, name="image")
    label = k.Input(shape=(1,), dtype="int32", name="label")
    x = layers.DepthwiseConv2D(3, padding="same", depth_multiplier=2, name="dwconv")(
        image
    )
    x = layers.LeakyReLU(0.2, name="lrelu_0")(x)
    x = layers.SeparableConv2D(16, 3, strides=2, padding="same", name="sepconv")(x)
    x = layers.LeakyReLU(0.2, name="lrelu_1")(x)
    x = layers.Conv2D(16, 3, strides=2, padding="same", name="conv")(x)
    x = layers.LeakyReLU(0.2, name="lrelu_2")(x)
    h = layers.GlobalAveragePooling2D(name="pool")(x)
    linear = layers.Dense(1, name="dense")(h)
    e = layers.Embedding(NUM_CLASSES, 16, name="embedding")(label)
    e = layers.Flatten(name="emb_flatten")(e)
    projection = layers.Dot(axes=1, name="projection")([e, h])
    out = layers.Add(name="add")([linear, projection])
    return k.Model([image, label], out, name="sngan_discriminator")


def shared_layers(k):
    """Discriminator whose Conv2D and Dense are each called on two tensors.

    image(16, 16, 3) feeds branch "a" (the image) and branch "b"
    (AveragePooling2D); the one Conv2D "shared_conv" and, after pooling, the
    one Dense "shared_dense" are called on both branches; the branches merge
    through Add and Concatenate; Dense(1) "head".
    """
    layers = k.layers
    image = k.Input(shape=IMAGE_SHAPE, name="image")
    conv = layers.Conv2D(8, 3, padding="same", name="shared_conv")
    dense = layers.Dense(8, name="shared_dense")
    a = conv(image)
    b = conv(layers.AveragePooling2D(2, name="downsample")(image))
    a = layers.GlobalAveragePooling2D(name="gap_a")(a)
    b = layers.GlobalAveragePooling2D(name="gap_b")(b)
    a = dense(a)
    b = dense(b)
    added = layers.Add(name="add")([a, b])
    x = layers.Concatenate(name="concat")([a, added])
    x = layers.LeakyReLU(0.2, name="lrelu")(x)
    x = layers.Dense(1, name="head")(x)
    return k.Model(image, x, name="shared_layers")


def multi_io(k):
    """Discriminator with dict inputs and dict outputs.

    inputs {"image": (16, 16, 3), "noise": (8,)}; outputs
    {"score": Dense(1) named "score", "features": GlobalAveragePooling2D
    named "features"}. Input and output layers carry their dict keys as names.
    """
    layers = k.layers
    image = k.Input(shape=IMAGE_SHAPE, name="image")
    noise = k.Input(shape=(8,), name="noise")
    x = layers.Conv2D(8, 3, strides=2, padding="same", name="conv")(image)
    x = layers.LeakyReLU(0.2, name="lrelu")(x)
    features = layers.GlobalAveragePooling2D(name="features")(x)
    n = layers.Dense(8, name="noise_dense")(noise)
    x = layers.Add(name="add")([features, n])
    score = layers.Dense(1, name="score")(x)
    return k.Model(
        inputs={"image": image, "noise": noise},
        outputs={"score": score, "features": features},
        name="multi_io",
    )


def call_kwargs(k):
    """Sequence discriminator whose layers are called with keyword arguments.

    tokens(6) int32 -> Embedding(20, 8, mask_zero=True) -> Dropout called
    with `training=True` -> MultiHeadAttention called as
    `mha(query=x, value=x, key=x)` (no positional tensor) ->
    GlobalAveragePooling1D called with `mask=` a second, boolean input "mask"
    -> Dense(1).

    The Dropout makes the output random, but not always: tf-keras honours the
    node's `training=True` however the model is called (even in `predict`);
    Keras 3 honours it only when the model is called with no `training`
    argument, since an explicit `model(x, training=False)` (and `predict`)
    overrides every node's recorded `training`. tf-keras's config stores the
    attention call with `query` moved to the positional input.
    """
    layers = k.layers
    tokens = k.Input(shape=(SEQUENCE,), dtype="int32", name="tokens")
    mask = k.Input(shape=(SEQUENCE,), dtype="bool", name="mask")
    x = layers.Embedding(VOCABULARY, 8, mask_zero=True, name="embedding")(tokens)
    x = layers.Dropout(0.25, name="dropout")(x, training=True)
    x = layers.MultiHeadAttention(num_heads=2, key_dim=4, name="mha")(
        query=x, value=x, key=x
    )
    x = layers.GlobalAveragePooling1D(name="pool")(x, mask=mask)
    x = layers.Dense(1, name="dense")(x)
    return k.Model([tokens, mask], x, name="call_kwargs")


def sequential_discriminator(k):
    """A `Sequential` discriminator.

    Input image(16, 16, 3) -> Conv2D s2 -> LeakyReLU -> Conv2DTranspose
    -> Flatten -> Dense(1).
    """
    layers = k.layers
    return k.Sequential(
        [
            k.Input(shape=IMAGE_SHAPE, name="image"),
            layers.Conv2D(8, 3, strides=2, padding="same", name="conv"),
            layers.LeakyReLU(0.2, name="lrelu"),
            layers.Conv2DTranspose(4, 3, padding="same", name="deconv"),
            layers.Flatten(name="flatten"),
            layers.Dense(1, name="dense"),
        ],
        name="sequential_discriminator",
    )


def with_constraints(k):
    """Discriminator whose kernels already carry constraints.

    image(16, 16, 3) -> Conv2D s2 (kernel_constraint MaxNorm(2.0)) -> LeakyReLU
    -> Flatten -> Dense(1) (kernel_constraint NonNeg).
    """
    layers = k.layers
    image = k.Input(shape=IMAGE_SHAPE, name="image")
    x = layers.Conv2D(
        8,
        3,
        strides=2,
        padding="same",
        kernel_constraint=k.constraints.MaxNorm(2.0),
        name="conv",
    )(image)
    x = layers.LeakyReLU(0.2, name="lrelu")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(1, kernel_constraint=k.constraints.NonNeg(), name="dense")(x)
    return k.Model(image, x, name="with_constraints")


def mixed_precision_discriminator(k):
    """The DCGAN discriminator with a per-layer "mixed_float16" policy.

    Every layer gets `dtype="mixed_float16"` (float16 compute, float32
    variables) but the last Dense, which is float32. The input is float32.
    The global policy is left alone.
    """
    layers = k.layers
    mixed = "mixed_float16"
    image = k.Input(shape=IMAGE_SHAPE, name="image")
    x = layers.Conv2D(8, 4, strides=2, padding="same", dtype=mixed, name="conv_1")(
        image
    )
    x = layers.LeakyReLU(0.2, dtype=mixed, name="lrelu_1")(x)
    x = layers.Conv2D(16, 4, strides=2, padding="same", dtype=mixed, name="conv_2")(x)
    x = layers.BatchNormalization(dtype=mixed, name="bn_2")(x)
    x = layers.LeakyReLU(0.2, dtype=mixed, name="lrelu_2")(x)
    x = layers.Flatten(dtype=mixed, name="flatten")(x)
    x = layers.Dense(1, dtype="float32", name="dense")(x)
    return k.Model(image, x, name="mixed_precision_discriminator")


def frozen(k):
    """Discriminator whose first Conv2D is built with `trainable=False`.

    image(16, 16, 3) -> Conv2D s2 (frozen) -> LeakyReLU -> Conv2D s2
    -> LeakyReLU -> Flatten -> Dense(1).
    """
    layers = k.layers
    image = k.Input(shape=IMAGE_SHAPE, name="image")
    x = layers.Conv2D(8, 3, strides=2, padding="same", trainable=False, name="conv_1")(
        image
    )
    x = layers.LeakyReLU(0.2, name="lrelu_1")(x)
    x = layers.Conv2D(16, 3, strides=2, padding="same", name="conv_2")(x)
    x = layers.LeakyReLU(0.2, name="lrelu_2")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(1, name="dense")(x)
    return k.Model(image, x, name="frozen")


# --------------------------------------------------------------------------
# Several models, and no graph
# --------------------------------------------------------------------------


def gan(k):
    """A GAN: `(generator, discriminator, combined)`.

    "generator": z(16) -> Dense -> LeakyReLU -> Reshape(4, 4, 16)
    -> Conv2DTranspose s2 -> LeakyReLU -> Conv2DTranspose s2 (3 channels, tanh).
    "discriminator": image(16, 16, 3) -> Conv2D s2 -> LeakyReLU -> Conv2D s2
    -> LeakyReLU -> Flatten -> Dense(1).
    "gan": Model(z, D(G(z))), holding the two as nested models.
    Layer names are prefixed "g_" / "d_". See `GAN_EXPECTED`.
    """
    layers = k.layers
    z = k.Input(shape=(16,), name="g_z")
    x = layers.Dense(4 * 4 * 16, name="g_dense")(z)
    x = layers.LeakyReLU(0.2, name="g_dense_act")(x)
    x = layers.Reshape((4, 4, 16), name="g_reshape")(x)
    x = layers.Conv2DTranspose(8, 4, strides=2, padding="same", name="g_deconv_1")(x)
    x = layers.LeakyReLU(0.2, name="g_act_1")(x)
    x = layers.Conv2DTranspose(
        3, 4, strides=2, padding="same", activation="tanh", name="g_deconv_2"
    )(x)
    generator = k.Model(z, x, name="generator")

    image = k.Input(shape=IMAGE_SHAPE, name="d_image")
    y = layers.Conv2D(8, 4, strides=2, padding="same", name="d_conv_1")(image)
    y = layers.LeakyReLU(0.2, name="d_lrelu_1")(y)
    y = layers.Conv2D(16, 4, strides=2, padding="same", name="d_conv_2")(y)
    y = layers.LeakyReLU(0.2, name="d_lrelu_2")(y)
    y = layers.Flatten(name="d_flatten")(y)
    y = layers.Dense(1, name="d_dense")(y)
    discriminator = k.Model(image, y, name="discriminator")

    gan_z = k.Input(shape=(16,), name="gan_z")
    combined = k.Model(gan_z, discriminator(generator(gan_z)), name="gan")
    return generator, discriminator, combined


GAN_EXPECTED = {
    "generator": {
        "role": "generator",
        "kernel_layers": ["g_deconv_1", "g_deconv_2", "g_dense"],
        "progan_after": ["g_act_1", "g_dense_act", "g_z"],
    },
    "discriminator": {
        "role": "discriminator",
        "kernel_layers": ["d_conv_1", "d_conv_2", "d_dense"],
    },
}


@functools.cache
def _subclassed_class(k):
    """The subclassed model class of Keras `k` (one class per Keras)."""

    class SubclassedDiscriminator(k.Model):
        """Conv2D s2 -> LeakyReLU -> Flatten -> Dense(1), with no graph."""

        example_input_shape = IMAGE_SHAPE

        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.conv = k.layers.Conv2D(8, 3, strides=2, padding="same", name="conv")
            self.lrelu = k.layers.LeakyReLU(0.2, name="lrelu")
            self.flatten = k.layers.Flatten(name="flatten")
            self.dense = k.layers.Dense(1, name="dense")

        def call(self, inputs):
            return self.dense(self.flatten(self.lrelu(self.conv(inputs))))

    return SubclassedDiscriminator


def subclassed(k):
    """A subclassed discriminator "subclassed", built by calling it once.

    Conv2D "conv" s2 -> LeakyReLU "lrelu" -> Flatten "flatten" -> Dense(1)
    "dense" in `call`; the rewriter has no functional graph to work on.
    Its class has `example_input_shape`, which `forward_input` uses.
    """
    model = _subclassed_class(k)(name="subclassed")
    model(np.zeros((1, *IMAGE_SHAPE), dtype="float32"))
    return model


# --------------------------------------------------------------------------
# Registry, expectations, inputs
# --------------------------------------------------------------------------

ALL_BUILDERS = {
    builder.__name__: builder
    for builder in (
        progan_generator,
        progan_generator_fused,
        dcgan_generator,
        dcgan_discriminator,
        sngan_discriminator,
        conditional_generator,
        nested_generator,
        shared_layers,
        multi_io,
        symbolic_ops,
        call_kwargs,
        sequential_discriminator,
        channels_first_generator,
        with_constraints,
        mixed_precision_discriminator,
        frozen,
    )
}


def _facts(role, kernel_layers, progan_after=None, **extra):
    facts = {
        "role": role,
        "kernel_layers": sorted(kernel_layers),
        "non_trainable": [],
        "deterministic": True,
        "needs_nchw": False,
    }
    if role == "generator":
        facts["progan_after"] = sorted(progan_after)
    else:
        assert progan_after is None
    facts.update(extra)
    return facts


EXPECTED = {
    "progan_generator": _facts(
        "generator",
        ["dense", "conv_1", "conv_2", "to_rgb"],
        ["z", "dense_act", "act_1", "act_2"],
    ),
    "progan_generator_fused": _facts(
        "generator",
        ["dense", "conv_1", "conv_2", "to_rgb"],
        ["z", "dense", "conv_1", "conv_2"],
    ),
    "dcgan_generator": _facts(
        "generator",
        ["dense", "deconv_1", "deconv_2"],
        ["z", "relu_0", "relu_1"],
    ),
    "dcgan_discriminator": _facts("discriminator", ["conv_1", "conv_2", "dense"]),
    "sngan_discriminator": _facts(
        "discriminator", ["dwconv", "sepconv", "conv", "dense", "embedding"]
    ),
    "conditional_generator": _facts(
        "generator",
        ["embedding", "dense", "deconv"],
        ["z", "relu_0"],
    ),
    "nested_generator": _facts(
        "generator",
        ["dense", "block_1_conv", "block_2_conv", "to_rgb_conv"],
        ["z", "dense_act", "block_1_act", "block_2_act"],
    ),
    "shared_layers": _facts("discriminator", ["shared_conv", "shared_dense", "head"]),
    "multi_io": _facts("discriminator", ["conv", "noise_dense", "score"]),
    "symbolic_ops": _facts(
        "generator",
        ["dense", "to_image"],
        ["z", "dense_act"],
    ),
    "call_kwargs": _facts(
        "discriminator",
        ["embedding", "dense", "mha"],
        deterministic=False,
    ),
    "sequential_discriminator": _facts("discriminator", ["conv", "deconv", "dense"]),
    "channels_first_generator": _facts(
        "generator",
        ["dense", "conv_1", "to_rgb"],
        ["z", "dense", "conv_1", "lrelu"],
        needs_nchw=True,
    ),
    "with_constraints": _facts("discriminator", ["conv", "dense"]),
    "mixed_precision_discriminator": _facts(
        "discriminator", ["conv_1", "conv_2", "dense"]
    ),
    "frozen": _facts(
        "discriminator", ["conv_1", "conv_2", "dense"], non_trainable=["conv_1"]
    ),
}


@functools.cache
def nchw_convolution_runs() -> bool:
    """Whether this TensorFlow runs an NCHW (channels_first) Conv2D.

    Yes on a GPU, and on a CPU with oneDNN on; a CPU without oneDNN raises
    UnimplementedError.
    """
    try:
        tf.nn.conv2d(
            tf.zeros((1, 1, 2, 2)),
            tf.zeros((1, 1, 1, 1)),
            1,
            "SAME",
            data_format="NCHW",
        )
    except (tf.errors.UnimplementedError, tf.errors.InvalidArgumentError):
        return False
    return True


def forward_runs(name: str) -> bool:
    """Whether the model of builder `name` can run a forward pass here."""
    return not EXPECTED[name]["needs_nchw"] or nchw_convolution_runs()


def _model_inputs(model):
    """The model's input tensors in the structure they were given in."""
    if hasattr(model, "_inputs_struct"):  # Keras 3 Functional / Sequential
        return model._inputs_struct
    if getattr(model, "_nested_inputs", None) is not None:  # tf-keras
        return model._nested_inputs
    return model.inputs


def _array_for(shape, dtype, seed):
    """A deterministic batch of 2 for one input of `shape` (no batch axis)."""
    rng = np.random.default_rng(seed)
    shape = (2, *(1 if d is None else d for d in shape))
    dtype = np.dtype(getattr(dtype, "as_numpy_dtype", dtype))
    if dtype == np.bool_:
        # Valid positions, the last one padding (see the int branch).
        array = np.ones(shape, dtype=bool)
        if len(shape) >= 2 and shape[-1] > 1:
            array[..., -1] = False
        return array
    if np.issubdtype(dtype, np.integer):
        # In range for every Embedding of the zoo; no 0 (the mask_zero padding
        # value) but in the last position of a sequence.
        array = rng.integers(1, NUM_CLASSES, size=shape).astype(dtype)
        if len(shape) >= 2 and shape[-1] > 1:
            array[..., -1] = 0
        return array
    return rng.standard_normal(shape).astype(dtype)


def forward_input(k, model):
    """A deterministic numpy batch of 2 for `model`'s inputs.

    A single array, a list or a dict, as the model's inputs were given.
    Integer inputs are in [0, 10) (class labels, token ids); in a sequence
    the last position is 0, padding, and boolean inputs are False there.
    A subclassed model from `subclassed` gets an image batch.
    """
    del k  # Both Kerases are inspected the same way.
    if getattr(model, "example_input_shape", None) is not None:
        return _array_for(model.example_input_shape, "float32", 0)
    structure = _model_inputs(model)
    if isinstance(structure, dict):
        return {
            key: _array_for(tuple(t.shape)[1:], t.dtype, seed)
            for seed, (key, t) in enumerate(sorted(structure.items()))
        }
    if isinstance(structure, (list, tuple)):
        arrays = [
            _array_for(tuple(t.shape)[1:], t.dtype, seed)
            for seed, t in enumerate(structure)
        ]
        return arrays[0] if len(arrays) == 1 else arrays
    return _array_for(tuple(structure.shape)[1:], structure.dtype, 0)
