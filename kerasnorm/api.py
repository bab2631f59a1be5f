"""The public entry points: `apply_normalization` and the `normalize` decorator."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Sequence
from typing import Any

from kerasnorm.errors import KerasNormTypeError
from kerasnorm.plan import plan
from kerasnorm.rewrite import rewrite
from kerasnorm.rules import Rule


def apply_normalization(
    model,
    policy: str | Sequence[str] | None = "progan",
    *,
    role: str = "auto",
    rules: Sequence[Rule] | None = None,
    mode: str = "constraint",
    strict: bool = False,
    verbose: bool = False,
    **sn_options,
):
    """Returns a copy of `model` normalized as `policy` prescribes.

    The input model is never modified. In the copy every original layer has
    a counterpart with the same name, the same config (but for the added
    constraints) and bitwise-identical weights; inserted layers are named
    after the layer they follow (`conv1_pixel_norm`). Dtype policies,
    `trainable` flags and the model's name are kept; a Sequential stays a
    Sequential. Applying the same policy twice changes nothing more.

    A compiled model comes back compiled with the same loss and metrics and
    a fresh optimizer of the same configuration (a warning says so): the
    new model's variables are new, so the old optimizer state cannot follow.

    Args:
        model: A functional or Sequential model, Keras 3 or tf-keras.
        policy: `"progan"`, `"sngan"`, `"sagan"`, `"biggan"`, a policy you
            registered, a list of those, or None (then give `rules`).
        role: `"auto"` (decided per model and nested model; see
            `kerasnorm.roles`), `"generator"` or `"discriminator"`.
        rules: More `Rule`s, applied after the policy's.
        mode: `"constraint"` attaches `SpectralNorm` kernel constraints;
            `"reparam"` wraps layers in `SpectralNormalization`.
        strict: Raise if a rule matches nothing, or chooses a kernel it
            cannot normalize; without it such kernels are listed as skipped
            in the plan (`verbose=True` prints it).
        verbose: Print the plan.
        **sn_options: Options for the spectral normalization the policy
            adds: `n_iter`, `tol`, `max_iter`, `block_size`, `eps`,
            `operator_norm` (normalize each convolution by its operator norm
            on the input shape the model gives it, its Lipschitz constant,
            instead of the reshaped kernel's largest singular value; see
            `kerasnorm.ops.operators`), and in constraint mode `sigma` and
            `clip`.

    Returns:
        The new model.

    Raises:
        KerasNormTypeError: If `model` is not a functional or Sequential
            Keras model, or a layer cannot be cloned from its config.
        KerasNormValueError: For an unknown policy, role or mode, an
            undecidable role, or, under `strict`, a rule matching nothing or
            a kernel that cannot be normalized.

    Example:

    >>> from kerasnorm.demo import build_discriminator
    >>> d = kerasnorm.apply_normalization(build_discriminator(keras), policy="sngan")
    >>> type(d.get_layer("conv1").kernel_constraint).__name__
    'SpectralNorm'
    """
    the_plan = plan(
        model, policy, role=role, rules=rules, mode=mode, strict=strict, **sn_options
    )
    if verbose:
        print(the_plan)
    return rewrite(the_plan)


def normalize(
    policy: str | Sequence[str] | None = "progan", **options: Any
) -> Callable[[Callable], Callable]:
    """Decorates a model builder so that the models it returns are normalized.

    The builder keeps its name, docstring and signature, and gets its
    arguments as usual. It may return a model, or a tuple, list or dict of
    models; each is normalized by its own role (unless `role=` says
    otherwise).

    Args:
        policy: As for `apply_normalization`.
        **options: Any other `apply_normalization` argument.

    Returns:
        The decorator.

    Example:

    >>> from kerasnorm import demo
    >>> @kerasnorm.normalize(policy="sngan")
    ... def build_discriminator():
    ...     "A small DCGAN-style discriminator."
    ...     return demo.build_discriminator(keras)
    >>> build_discriminator.__doc__
    'A small DCGAN-style discriminator.'
    >>> d = build_discriminator()
    >>> type(d.get_layer("score").kernel_constraint).__name__
    'SpectralNorm'
    """

    def decorator(builder: Callable) -> Callable:
        if not callable(builder):
            raise KerasNormTypeError(
                f"@normalize decorates a function, received {builder!r}"
            )

        @functools.wraps(builder)
        def wrapper(*args, **kwargs):
            built = builder(*args, **kwargs)
            if isinstance(built, dict):
                return {
                    key: _normalize_one(value, policy, options)
                    for key, value in built.items()
                }
            if isinstance(built, (tuple, list)):
                return type(built)(
                    _normalize_one(value, policy, options) for value in built
                )
            return _normalize_one(built, policy, options)

        wrapper.__signature__ = inspect.signature(builder)
        return wrapper

    return decorator


def _normalize_one(model, policy, options):
    return apply_normalization(model, policy, **options)
