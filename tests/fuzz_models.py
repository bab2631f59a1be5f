"""Random functional Keras models for the property-based rewriter tests.

A model is drawn as a `Recipe`: plain data (a list of steps over a pool of
symbolic tensors), so that hypothesis can shrink it and the same recipe can
be built on Keras 3 and on tf-keras. `build(k, recipe)` turns it into a
model of the Keras package `k`.

Two kinds of tensors flow through a recipe: vectors `(batch, width)` and
images `(batch, 4, 4, channels)`. Steps:

| step          | on             | builds                                          |
|---------------|----------------|-------------------------------------------------|
| `dense`       | vector         | Dense, with or without an activation            |
| `conv`        | image          | Conv2D / Conv2DTranspose / DepthwiseConv2D /    |
|               |                | SeparableConv2D, "same" padding, stride 1       |
| `activation`  | any            | ReLU / LeakyReLU / Activation("tanh")           |
| `merge`       | two of a kind  | Add / Multiply (same shape) or Concatenate      |
| `shared`      | any            | an earlier kernel layer called again            |
| `op`          | any            | arithmetic on the symbolic tensor (`x * 0.5`)   |
| `block`       | any            | a nested Sequential or functional model, called |
|               |                | once or twice                                   |
| `flatten`     | image          | GlobalAveragePooling2D                          |
| `to_image`    | vector         | Dense then Reshape                              |

Every input reaches an output: an input the chosen outputs miss becomes an
output of its own (after its last use).
"""

from __future__ import annotations

import dataclasses

import numpy as np
from hypothesis import strategies as st

SIDE = 4
ACTIVATIONS = (None, "relu", "tanh")
CONV_KINDS = ("Conv2D", "Conv2DTranspose", "DepthwiseConv2D", "SeparableConv2D")
ACTIVATION_LAYERS = ("ReLU", "LeakyReLU", "tanh")


@dataclasses.dataclass(frozen=True)
class Recipe:
    """A drawn model.

    Attributes:
        inputs: (kind, width) of each input; tensor ids 0 to n - 1.
        steps: One tuple per step, `(name, source tensor id, *arguments)`;
            step `i` makes tensor `len(inputs) + i`.
        outputs: Ids of the tensors the model returns.
        kinds: `"vector"` or `"image"`, per tensor id.
    """

    inputs: tuple[tuple[str, int], ...]
    steps: tuple[tuple, ...]
    outputs: tuple[int, ...]
    kinds: tuple[str, ...]


@st.composite
def recipes(draw, max_steps: int = 8) -> Recipe:
    """A hypothesis strategy of `Recipe`s."""
    inputs = tuple(
        (draw(st.sampled_from(["vector", "image"])), draw(st.integers(2, 4)))
        for _ in range(draw(st.integers(1, 2)))
    )
    tensors = [(kind, width) for kind, width in inputs]
    shareable: list[tuple[int, str, int]] = []  # (step index, kind, in width)
    steps = []
    for _ in range(draw(st.integers(1, max_steps))):
        source = draw(st.integers(0, len(tensors) - 1))
        kind, width = tensors[source]
        choice = draw(
            st.sampled_from(
                ["layer", "layer", "activation", "merge", "shared", "op", "block"]
                + (["flatten"] if kind == "image" else ["to_image"])
            )
        )
        fits = [s for s in shareable if s[1:] == (kind, width)]
        if choice == "shared" and not fits:
            choice = "op"
        if choice == "layer" and kind == "vector":
            units = draw(st.integers(2, 5))
            step = ("dense", source, units, draw(st.sampled_from(ACTIVATIONS)))
            shareable.append((len(steps), kind, width))
            tensors.append(("vector", units))
        elif choice == "layer":
            conv = draw(st.sampled_from(CONV_KINDS))
            out = width if conv == "DepthwiseConv2D" else draw(st.integers(2, 5))
            step = ("conv", source, conv, out, draw(st.sampled_from(ACTIVATIONS)))
            shareable.append((len(steps), kind, width))
            tensors.append(("image", out))
        elif choice == "activation":
            step = ("activation", source, draw(st.sampled_from(ACTIVATION_LAYERS)))
            tensors.append((kind, width))
        elif choice == "merge":
            partners = [i for i, t in enumerate(tensors) if t[0] == kind]
            other = draw(st.sampled_from(partners))
            same = tensors[other][1] == width
            merge = draw(
                st.sampled_from(["Add", "Multiply", "Concatenate"])
                if same
                else st.just("Concatenate")
            )
            step = ("merge", source, other, merge)
            out = width + tensors[other][1] if merge == "Concatenate" else width
            tensors.append((kind, out))
        elif choice == "shared":
            owner = draw(st.sampled_from(fits))[0]
            step = ("shared", source, owner)
            tensors.append(tensors[len(inputs) + owner])
        elif choice == "op":
            step = ("op", source, draw(st.sampled_from(["scale", "shift", "square"])))
            tensors.append((kind, width))
        elif choice == "block":
            nested = draw(st.sampled_from(["sequential", "functional"]))
            units = draw(st.integers(2, 4))
            activation = draw(st.sampled_from(ACTIVATIONS))
            # A second call on the first call's output: only if shapes allow.
            twice = units == width and draw(st.booleans())
            step = ("block", source, nested, units, activation, twice)
            tensors.append((kind, units))
        elif choice == "flatten":
            step = ("flatten", source)
            tensors.append(("vector", width))
        else:
            channels = draw(st.integers(1, 3))
            step = ("to_image", source, channels)
            tensors.append(("image", channels))
        steps.append(step)
    last = len(tensors) - 1
    # Extra outputs are step results: an input as an output would make a
    # PixelNorm after the latent change what the model returns.
    extra = draw(st.lists(st.integers(len(inputs), last), max_size=1))
    outputs = tuple(dict.fromkeys([last, *extra]))
    outputs = _cover_inputs(len(inputs), steps, outputs)
    return Recipe(inputs, tuple(steps), outputs, tuple(k for k, _ in tensors))


def sources(step) -> tuple[int, ...]:
    """The tensor ids a step reads."""
    return (step[1], step[2]) if step[0] == "merge" else (step[1],)


def _cover_inputs(n_inputs: int, steps, outputs) -> tuple[int, ...]:
    """Adds an output for every input no output depends on."""
    ancestors = [{i} for i in range(n_inputs)]
    for step in steps:
        ancestors.append(set().union(*(ancestors[s] for s in sources(step))))
    covered = set().union(*(ancestors[o] for o in outputs))
    extra = []
    for index in range(n_inputs):
        if index not in covered:
            users = [t for t, a in enumerate(ancestors) if index in a]
            extra.append(users[-1])
    return tuple(dict.fromkeys([*outputs, *extra]))


def build(k, recipe: Recipe):
    """The functional model of the Keras package `k` a recipe describes."""
    layers = k.layers
    pool = []
    inputs = []
    for index, (kind, width) in enumerate(recipe.inputs):
        shape = (width,) if kind == "vector" else (SIDE, SIDE, width)
        inputs.append(k.Input(shape, name=f"input_{index}"))
    pool.extend(inputs)
    made = {}
    for index, step in enumerate(recipe.steps):
        name = f"s{index}"
        x = pool[step[1]]
        if step[0] == "dense":
            layer = layers.Dense(step[2], activation=step[3], name=f"{name}_dense")
            made[index] = layer
            y = layer(x)
        elif step[0] == "conv":
            layer = _conv(layers, step[2], step[3], step[4], f"{name}_{step[2]}")
            made[index] = layer
            y = layer(x)
        elif step[0] == "activation":
            y = _activation_layer(layers, step[2], f"{name}_act")(x)
        elif step[0] == "merge":
            merge = getattr(layers, step[3])(name=f"{name}_{step[3].lower()}")
            y = merge([x, pool[step[2]]])
        elif step[0] == "shared":
            y = made[step[2]](x)
        elif step[0] == "op":
            y = {"scale": lambda t: t * 0.5, "shift": lambda t: t + 1.0}.get(
                step[2], lambda t: t * t
            )(x)
        elif step[0] == "block":
            block = _block(k, x.shape[1:], *step[2:5], name=f"{name}_block")
            y = block(x)
            if step[5]:
                y = block(y)
        elif step[0] == "flatten":
            y = layers.GlobalAveragePooling2D(name=f"{name}_pool")(x)
        else:
            dense = layers.Dense(SIDE * SIDE * step[2], name=f"{name}_project")
            y = layers.Reshape((SIDE, SIDE, step[2]), name=f"{name}_reshape")(dense(x))
        pool.append(y)
    outputs = [pool[i] for i in recipe.outputs]
    return k.Model(
        inputs if len(inputs) > 1 else inputs[0],
        outputs if len(outputs) > 1 else outputs[0],
        name="fuzzed",
    )


def _conv(layers, kind: str, out: int, activation, name: str):
    if kind == "DepthwiseConv2D":
        return layers.DepthwiseConv2D(
            3, padding="same", activation=activation, name=name
        )
    return getattr(layers, kind)(
        out, 3, padding="same", activation=activation, name=name
    )


def _activation_layer(layers, kind: str, name: str):
    if kind == "ReLU":
        return layers.ReLU(name=name)
    if kind == "LeakyReLU":
        return layers.LeakyReLU(0.2, name=name)
    return layers.Activation("tanh", name=name)


def _block(k, shape, nested: str, units: int, activation, name: str):
    """A nested model: one kernel layer then an activation layer."""
    layers = k.layers
    if len(shape) == 1:
        first = layers.Dense(units, activation=activation, name=f"{name}_dense")
    else:
        first = layers.Conv2D(
            units, 3, padding="same", activation=activation, name=f"{name}_conv"
        )
    if nested == "sequential":
        return k.Sequential(
            [k.Input(shape), first, layers.LeakyReLU(0.2, name=f"{name}_act")],
            name=name,
        )
    x = k.Input(shape)
    y = layers.LeakyReLU(0.2, name=f"{name}_act")(first(x))
    return k.Model(x, y, name=name)


def sample_input(model, seed: int = 0):
    """A deterministic batch of two for `model`'s inputs."""
    rng = np.random.default_rng(seed)
    batches = [
        rng.normal(size=(2, *tensor.shape[1:])).astype("float32")
        for tensor in model.inputs
    ]
    return batches if len(batches) > 1 else batches[0]
