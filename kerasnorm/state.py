"""`constraint_states`: the state spectral-norm constraints keep outside the layers.

A `SpectralNorm` constraint keeps the top singular vectors of each kernel
it normalizes in a variable of its own (see `SpectralNorm.build`), so that
each optimizer step starts from the last step's estimate. A stateful step
(TensorFlow, PyTorch, `fit` everywhere but JAX) updates it in place. A
stateless step carries only the variables it is given: Keras's JAX `fit`
carries the trainable and optimizer variables, and nothing else. A custom
stateless step carries these states too by mapping them, with the other
variables, in the `keras.StatelessScope` around `optimizer.apply` (see
docs/backends.md).
"""

from __future__ import annotations

from typing import Any

from kerasnorm.adapters import adapter_for
from kerasnorm.layers.kernels import constrained_by, find_kernels, walk_layers


def constraint_states(model) -> list[Any]:
    """The state variables of every spectral-norm constraint in `model`.

    One variable per kernel that a `SpectralNorm` constrains (alone or in a
    `ConstraintChain`), in the order of the model's layers and of each
    layer's kernels; states not made yet are made (and, where `fit` is
    stateless, solved) now. Kernels normalized by the
    `SpectralNormalization` wrapper keep their state in the wrapper's
    non-trainable weights, which every step carries already: they are not
    listed.

    Args:
        model: A Keras model (of either Keras), built.

    Returns:
        A list of variables of the model's Keras.

    Example:

    >>> from kerasnorm.demo import build_discriminator
    >>> d = kerasnorm.apply_normalization(build_discriminator(keras), "sngan")
    >>> [tuple(state.shape) for state in kerasnorm.constraint_states(d)]
    [(2, 32), (2, 64), (1, 1)]
    """
    adapter = adapter_for(model)
    states = []
    for _, layer in walk_layers(model, adapter):
        for kernel in find_kernels(layer, adapter):
            constraint = constrained_by(kernel)
            members = getattr(constraint, "constraints", [constraint])
            states += [
                member.build(kernel.variable, kernel.owner)
                for member in members
                if isinstance(member, adapter.SpectralNorm)
            ]
    return states
