"""Rules: a selector (which nodes) and an action (what to do there)."""

from __future__ import annotations

import dataclasses

from kerasnorm.actions import Action
from kerasnorm.errors import KerasNormTypeError
from kerasnorm.select import Selector


@dataclasses.dataclass(frozen=True)
class Rule:
    """Apply `action` wherever `selector` matches.

    Args:
        selector: A `kerasnorm.select.Selector`.
        action: A `kerasnorm.actions.Action`.
        name: Shown in plans and errors; defaults to the selector's text.

    Example:

    >>> from kerasnorm import actions, select
    >>> rule = Rule(select.layer_type("Dense") & select.name("head.*"),
    ...             actions.ConstrainKernel(sigma=2.0), name="head SN")
    >>> rule.name
    'head SN'
    """

    selector: Selector
    action: Action
    name: str = ""

    def __post_init__(self):
        if not isinstance(self.selector, Selector):
            raise KerasNormTypeError(
                f"Rule `selector` must be a kerasnorm.select.Selector, received "
                f"{self.selector!r}. Wrap a function as `select.where(f)`."
            )
        if not isinstance(self.action, Action):
            raise KerasNormTypeError(
                "Rule `action` must be a kerasnorm.actions.Action, received "
                f"{self.action!r}."
            )
        if not self.name:
            object.__setattr__(self, "name", repr(self.selector))
