"""The `Example:` sections of kerasnorm's docstrings run and print what they say."""

import doctest
import importlib
import pkgutil

import keras
import numpy as np
import pytest
import tensorflow as tf

import kerasnorm

MODULES = [
    info.name
    for info in pkgutil.walk_packages(kerasnorm.__path__, "kerasnorm.")
    if info.name != "kerasnorm.__main__"
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE)
    globs = {"keras": keras, "np": np, "tf": tf, "kerasnorm": kerasnorm}
    for test in finder.find(module, name, globs=dict(module.__dict__, **globs)):
        runner.run(test)
    assert runner.failures == 0, f"{runner.failures} failing examples in {name}"
