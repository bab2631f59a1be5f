"""Policies: named lists of rules, as the GAN papers prescribe them.

| policy   | generator                                   | discriminator      |
|----------|---------------------------------------------|--------------------|
| `progan` | PixelNorm on the latent and after every     | nothing            |
|          | hidden activation (none before the output)  |                    |
| `sngan`  | nothing                                     | SN on every kernel |
| `sagan`  | SN on every kernel                          | SN on every kernel |
| `biggan` | SN on every kernel but Embedding layers'    | SN on every kernel |
| `equalized_lr` | equalized learning rate on every kernel | the same         |

"SN on every kernel" covers every kernel of every layer of the role:
convolutions and their transposes, depthwise and separable ones (both
kernels), Dense, Embedding, EinsumDense, MultiHeadAttention's four
projections, RNN kernels and recurrent kernels, inside Bidirectional and
TimeDistributed too, and the kernels of your own layers (see
`kerasnorm.layers.kernels`); the plan lists any it cannot normalize.
`equalized_lr` is ProGAN's section 4.1, on every layer with a kernel
whatever its role, with `gain=1` on the layers that reach an output without
another kernel layer (linear output layers, as in ProGAN's code) and
`sqrt(2)` elsewhere. ProGAN's whole section 4 on a generator is
`["progan", "equalized_lr"]`. A layer takes one layer action, the first
rule's: with `["sngan", "equalized_lr"]` the plan lists equalized learning
rate as skipped on layers SN took (spectral normalization of `c * V` is
that of `V`: the constant cancels).

`register_policy` adds your own; a list of names applies several.
"""

from __future__ import annotations

from collections.abc import Sequence

from kerasnorm.actions import (
    EqualizeLearningRate,
    InsertPixelNorm,
    SpectralNormalize,
)
from kerasnorm.errors import KerasNormTypeError, KerasNormValueError
from kerasnorm.roles import DISCRIMINATOR, GENERATOR
from kerasnorm.rules import Rule
from kerasnorm.select import (
    activation_point,
    has_kernel,
    layer_type,
    model_input,
    reaches_output,
    role,
)

_REGISTRY: dict[str, tuple[Rule, ...]] = {}


def register_policy(name: str, rules: Sequence[Rule], overwrite: bool = False) -> None:
    """Registers `rules` under `name`, for `apply_normalization(policy=name)`.

    Raises:
        KerasNormValueError: If `name` is taken and `overwrite` is False.
    """
    if not isinstance(name, str) or not name:
        raise KerasNormTypeError(
            f"A policy name must be a non-empty string, received {name!r}"
        )
    rules = tuple(rules)
    if not all(isinstance(rule, Rule) for rule in rules):
        raise KerasNormTypeError(
            f"Policy {name!r} must be a list of Rule, received {rules!r}"
        )
    if name in _REGISTRY and not overwrite:
        raise KerasNormValueError(
            f"A policy named {name!r} is already registered; pass overwrite=True "
            "to replace it."
        )
    _REGISTRY[name] = rules


def registered_policies() -> list[str]:
    """The names of all registered policies."""
    return sorted(_REGISTRY)


def get_policy(policy: str | Sequence[str] | None) -> tuple[Rule, ...]:
    """The rules of a policy name, or of several names in order.

    Raises:
        KerasNormValueError: For an unknown name, listing the known ones.
    """
    if policy is None:
        return ()
    names = [policy] if isinstance(policy, str) else list(policy)
    rules: list[Rule] = []
    for name in names:
        if name not in _REGISTRY:
            raise KerasNormValueError(
                f"Unknown policy {name!r}. Expected one of: "
                f"{', '.join(registered_policies())}, or a list of them."
            )
        rules.extend(_REGISTRY[name])
    return tuple(rules)


def _spectral(which: str, rule_name: str, exclude=None) -> Rule:
    selector = has_kernel() & role(which)
    if exclude is not None:
        selector = selector & ~exclude
    return Rule(selector, SpectralNormalize(), rule_name)


register_policy(
    "progan",
    [
        Rule(
            model_input(rank=2, floating=True) & role(GENERATOR),
            InsertPixelNorm(),
            "progan: latent",
        ),
        Rule(
            activation_point() & role(GENERATOR) & ~reaches_output(),
            InsertPixelNorm(),
            "progan: activation",
        ),
    ],
)
register_policy("sngan", [_spectral(DISCRIMINATOR, "sngan: discriminator kernels")])
register_policy(
    "sagan",
    [
        _spectral(GENERATOR, "sagan: generator kernels"),
        _spectral(DISCRIMINATOR, "sagan: discriminator kernels"),
    ],
)
register_policy(
    "biggan",
    [
        _spectral(
            GENERATOR, "biggan: generator kernels", exclude=layer_type("Embedding")
        ),
        _spectral(DISCRIMINATOR, "biggan: discriminator kernels"),
    ],
)
register_policy(
    "equalized_lr",
    [
        Rule(
            has_kernel() & reaches_output(),
            EqualizeLearningRate(gain=1.0),
            "equalized_lr: output layers",
        ),
        Rule(
            has_kernel() & ~reaches_output(),
            EqualizeLearningRate(),
            "equalized_lr: hidden layers",
        ),
    ],
)
