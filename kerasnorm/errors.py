"""The exceptions kerasnorm raises.

Every error is a `KerasNormError`, and also the built-in exception a Keras
user would expect for it (`TypeError` for a wrong kind of object,
`ValueError` for a wrong value), so both `except` clauses work.
"""


class KerasNormError(Exception):
    """Base class of every error kerasnorm raises."""


class UnsupportedKerasError(KerasNormError, RuntimeError):
    """The Keras at hand cannot run kerasnorm (e.g. Keras 3 on JAX)."""


class KerasNormTypeError(KerasNormError, TypeError):
    """An argument of the wrong kind: not a model, not a number, ..."""


class KerasNormValueError(KerasNormError, ValueError):
    """An argument of the right kind with a value kerasnorm cannot use."""


class MissingDependencyError(KerasNormError, ImportError):
    """An optional package the requested output needs is not installed.

    kerasnorm requires only TensorFlow, a Keras and networkx; its pictures
    (`kerasnorm.plot_plan`, `kerasnorm.pictures.plot_lines`) need matplotlib
    too, or, for `plot_plan`, pydot and Graphviz. The message names the
    package to install.
    """
