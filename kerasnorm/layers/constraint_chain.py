"""ConstraintChain: several kernel constraints applied one after another."""

from __future__ import annotations

from kerasnorm.errors import KerasNormTypeError


class ConstraintChainBase:
    """A kernel constraint that applies several constraints in order.

    kerasnorm uses it to add spectral normalization to a kernel that already
    has a constraint: the existing constraint runs first, then SN, so the
    user's constraint is kept and the kernel still leaves every step with
    the target spectral norm.

    Args:
        constraints: The constraints, first applied first: constraint
            objects, or their serialized configs.

    Example:

    >>> chain = kerasnorm.ConstraintChain(
    ...     [keras.constraints.NonNeg(), kerasnorm.SpectralNorm()]
    ... )
    >>> w = tf.constant([[3.0, -1.0], [0.0, 1.0]])
    >>> constrained = np.asarray(chain(w), "float64")
    >>> bool((constrained >= 0).all()), round(float(np.linalg.norm(constrained, 2)), 4)
    (True, 1.0)
    """

    def __init__(self, constraints):
        if not isinstance(constraints, (list, tuple)) or not constraints:
            raise KerasNormTypeError(
                "`constraints` must be a non-empty list of constraints. "
                f"Received: constraints={constraints!r}"
            )
        self.constraints = [self._adapter.keras.constraints.get(c) for c in constraints]

    def __call__(self, w):
        variable = w if hasattr(w, "assign") else None
        value = w
        for constraint in self.constraints:
            project = getattr(constraint, "project", None)
            value = project(value, variable) if project else constraint(value)
        return value

    def build(self, variable, owner: str | None = None) -> None:
        """Builds the state of the members that keep one (`SpectralNorm.build`)."""
        for constraint in self.constraints:
            if hasattr(constraint, "project"):
                constraint.build(variable, owner)

    def get_config(self):
        serialize = self._adapter.keras.constraints.serialize
        return {"constraints": [serialize(c) for c in self.constraints]}
