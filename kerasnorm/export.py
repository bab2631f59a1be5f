"""`fold`: a normalized model as plain Keras layers, for export and inference."""

from __future__ import annotations

from kerasnorm.actions import is_spectral
from kerasnorm.adapters import adapter_for
from kerasnorm.errors import KerasNormTypeError
from kerasnorm.layers.kernels import constrained_by, find_kernels, set_config_value
from kerasnorm.layers.wrapper import KernelWrapperBase


def fold(model):
    """A copy of `model` without kerasnorm's wrappers and spectral constraints.

    Each `SpectralNormalization` wrapper becomes the layer it wraps, with
    every kernel set to `W / sigma(W)` (`SpectralNormalization.fold`), what
    the wrapper computes with at inference; each `EqualizedLR` wrapper, the
    layer it wraps with kernels `c * V` (and biases `lr_multiplier * b`).
    Each `SpectralNorm` constraint is dropped from its layer (from a
    `ConstraintChain`, only the spectral part: your own constraints stay);
    the kernel keeps its value, which has spectral norm 1 after any
    optimizer step, so the layer computes as before. Nested models are
    folded too, and a layer or model shared by several calls stays shared.

    The copy computes what `model` computes at inference
    (`training=False`), with the same layer names, dtype policies and
    trainable flags. Without kerasnorm's classes it saves and loads with
    plain Keras, unless it holds `PixelNorm` layers: they compute, so they
    stay, and loading them needs `import kerasnorm`.

    Args:
        model: A functional or Sequential model of Keras 3 or tf-keras,
            built, typically from `apply_normalization`. It is not modified.

    Returns:
        A new, uncompiled model of the same Keras.

    Raises:
        KerasNormTypeError: If `model` is not a Keras functional or
            Sequential model.
        KerasNormValueError: If a kerasnorm wrapper in it is not built.

    Example:

    >>> from kerasnorm.demo import build_discriminator
    >>> d = kerasnorm.apply_normalization(
    ...     build_discriminator(keras), "sngan", mode="reparam"
    ... )
    >>> plain = kerasnorm.fold(d)
    >>> type(plain.get_layer("conv1")).__name__
    'Conv2D'
    >>> x = np.random.default_rng(0).normal(size=(2, 16, 16, 3))
    >>> bool(np.allclose(plain(x), d(x, training=False), atol=1e-6))
    True
    """
    adapter = adapter_for(model)
    if not adapter.is_model(model) or adapter.graph_view(model) is None:
        raise KerasNormTypeError(
            f"fold needs a functional or Sequential model; received "
            f"{type(model).__name__} {getattr(model, 'name', '')!r}. A subclassed "
            "model has no graph to copy: call fold() on each of its "
            "SpectralNormalization layers instead."
        )
    return _fold_model(model, adapter, {})


def _fold_model(model, adapter, copies: dict):
    weights: list = []

    def copy(layer):
        if id(layer) not in copies:
            copies[id(layer)] = _fold_layer(layer, adapter, copies, weights)
        return copies[id(layer)]

    folded = adapter.keras.models.clone_model(model, clone_function=copy)
    # Set once the copies are built by their calls in the new graph: a layer
    # may make its weights only there (tf-keras's MultiHeadAttention).
    for layer, values in weights:
        layer.set_weights(values)
    return folded


def _fold_layer(layer, adapter, copies: dict, weights: list):
    if adapter.is_model(layer):
        return _fold_model(layer, adapter, copies)
    if isinstance(layer, KernelWrapperBase):
        # The plain layer keeps the name the model knew it by.
        copy = _plain_copy(layer.layer, adapter, name=layer.name)
        weights.append((copy, layer.folded_weights()))
    else:
        copy = _plain_copy(layer, adapter, name=layer.name)
        weights.append((copy, layer.get_weights()))
    return copy


def _plain_copy(layer, adapter, name: str):
    """An unbuilt copy of `layer` without SN constraints."""
    config = {**layer.get_config(), "name": name}
    serialize = adapter.keras.constraints.serialize
    for kernel in find_kernels(layer, adapter):
        constraint = constrained_by(kernel)
        if kernel.constraint_key is not None and is_spectral(constraint):
            kept = _without_spectral(constraint, adapter)
            key = kernel.constraint_key
            if len(key) > 1 and kept is not None:
                kept = serialize(kept)
            set_config_value(config, key, kept)
    return type(layer).from_config(config)


def _without_spectral(constraint, adapter):
    """What is left of a kernel constraint once its `SpectralNorm` is dropped."""
    constraints = getattr(constraint, "constraints", [constraint])
    kept = [
        adapter.keras.constraints.get(adapter.keras.constraints.serialize(c))
        for c in constraints
        if not is_spectral(c)
    ]
    if not kept:
        return None
    return kept[0] if len(kept) == 1 else adapter.ConstraintChain(kept)
