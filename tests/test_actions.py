"""Insert actions: applying a rule twice inserts once; inserted layers follow
the dtype policy of their neighbours."""

import functools

import backend
import numpy as np
import pytest

import kerasnorm
from kerasnorm import select


def _critic(keras):
    image = keras.Input((8, 8, 3), name="image")
    left = keras.layers.Conv2D(4, 3, padding="same", name="left")(image)
    right = keras.layers.Conv2D(4, 1, name="right")(image)
    merged = keras.layers.Add(name="add")([left, right])
    x = keras.layers.LeakyReLU(0.2, name="act")(merged)
    x = keras.layers.Flatten(name="flatten")(x)
    return keras.Model(image, keras.layers.Dense(1, name="score")(x), name="critic")


def _rules(keras, make):
    dropout = functools.partial(keras.layers.Dropout, 0.1)
    noise = functools.partial(keras.layers.GaussianNoise, 0.1)
    if make == "function":
        # A factory that is not a class: its class is known by calling it.
        dropout = lambda name: keras.layers.Dropout(0.1, name=name)  # noqa: E731
        noise = lambda name: keras.layers.GaussianNoise(0.1, name=name)  # noqa: E731
    return [
        kerasnorm.Rule(select.name("act"), kerasnorm.InsertAfter(dropout, "drop")),
        kerasnorm.Rule(select.name("add"), kerasnorm.InsertBefore(noise, "noise")),
    ]


@pytest.mark.parametrize("make", ["partial", "function"])
def test_insert_rules_applied_twice_insert_once(adapter, make):
    rules = _rules(adapter.keras, make)
    once = kerasnorm.apply_normalization(_critic(adapter.keras), None, rules=rules)
    names = [layer.name for layer in once.layers]
    assert {"act_drop", "add_noise", "add_noise_1"} <= set(names)
    plan = kerasnorm.plan(once, rules=rules)
    assert not plan.changes
    reasons = sorted(edit.skipped for edit in plan.edits)
    assert reasons == [
        "already followed by act_drop",
        "already preceded by add_noise, add_noise_1",
    ]
    twice = kerasnorm.apply_normalization(once, None, rules=rules)
    assert [layer.name for layer in twice.layers] == names


def test_a_like_named_layer_of_another_class_is_no_insertion(adapter):
    keras = adapter.keras
    z = keras.Input((4,), name="z")
    x = keras.layers.Dense(4, name="fc")(z)
    # Named as the insertion would be, but not a Dropout.
    x = keras.layers.Activation("relu", name="fc_drop")(x)
    model = keras.Model(z, x)
    rule = kerasnorm.Rule(
        select.name("fc"),
        kerasnorm.InsertAfter(functools.partial(keras.layers.Dropout, 0.1), "drop"),
    )
    new = kerasnorm.apply_normalization(model, None, rules=[rule])
    assert [layer.name for layer in new.layers] == ["z", "fc", "fc_drop_1", "fc_drop"]


def _mixed_generator(keras):
    """Every layer mixed_float16 but the last; the global policy is float32."""
    mixed = "mixed_float16"
    z = keras.Input((8,), name="z")
    x = keras.layers.Dense(4 * 4 * 8, dtype=mixed, name="fc")(z)
    x = keras.layers.LeakyReLU(0.2, dtype=mixed, name="fc_act")(x)
    x = keras.layers.Reshape((4, 4, 8), dtype=mixed, name="reshape")(x)
    x = keras.layers.Conv2D(8, 3, padding="same", dtype=mixed, name="conv")(x)
    x = keras.layers.LeakyReLU(0.2, dtype=mixed, name="act")(x)
    image = keras.layers.Conv2D(3, 1, dtype="float32", name="to_rgb")(x)
    return keras.Model(z, image, name="generator")


def test_inserted_layers_take_the_dtype_policy_of_their_neighbours(adapter):
    keras = adapter.keras
    dropout = kerasnorm.InsertAfter(functools.partial(keras.layers.Dropout, 0.1))
    fixed = kerasnorm.InsertAfter(
        functools.partial(keras.layers.Dropout, 0.1, dtype="float32"), "fixed"
    )
    plain = kerasnorm.InsertBefore(
        lambda name: keras.layers.GaussianNoise(0.1, name=name), "noise"
    )
    rules = [
        kerasnorm.Rule(select.name("conv"), dropout),
        kerasnorm.Rule(select.name("fc"), fixed),
        kerasnorm.Rule(select.name("conv"), plain),
    ]
    model = kerasnorm.apply_normalization(
        _mixed_generator(keras), "progan", rules=rules
    )
    policies = {layer.name: layer.dtype_policy.name for layer in model.layers}
    # The latent's PixelNorm computes as its consumer, fc; the others as the
    # activation they follow.
    for name in ("z_pixel_norm", "fc_act_pixel_norm", "act_pixel_norm"):
        assert policies[name] == "mixed_float16", name
    assert policies["conv_Dropout"] == "mixed_float16"
    # A dtype the factory fixes, or a factory that takes none: left alone.
    assert policies["fc_fixed"] == "float32"
    assert policies["conv_noise"] == "float32"
    assert model.get_layer("act_pixel_norm").compute_dtype == "float16"
    assert keras.mixed_precision.global_policy().name == "float32"
    z = np.random.default_rng(0).normal(size=(2, 8)).astype("float32")
    output = model(z)
    assert backend.dtype_name(output) == "float32"
    assert np.all(np.isfinite(backend.numpy(output)))


def test_insert_before_a_layer_whose_input_got_an_insertion(adapter):
    keras = adapter.keras
    noise = kerasnorm.InsertBefore(
        functools.partial(keras.layers.GaussianNoise, 0.1), "noise"
    )
    model = kerasnorm.apply_normalization(
        _mixed_generator(keras),
        "progan",
        rules=[kerasnorm.Rule(select.name("to_rgb"), noise)],
    )
    names = [layer.name for layer in model.layers]
    assert names[-3:] == ["act_pixel_norm", "to_rgb_noise", "to_rgb"]
