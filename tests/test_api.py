"""The decorator, plan(), to_graph() and every bad input of apply_normalization."""

import inspect

import pytest
import zoo
from helpers import snapshot

import kerasnorm
from kerasnorm import actions, select
from kerasnorm.errors import KerasNormError, KerasNormTypeError, KerasNormValueError


def test_decorator_keeps_the_builder_and_normalizes_each_model(adapter):
    @kerasnorm.normalize(policy=["progan", "sngan"])
    def build_pair(k, scale: int = 1):
        """Builds a generator and a discriminator."""
        generator, discriminator, _ = zoo.gan(k)
        return generator, discriminator

    assert build_pair.__name__ == "build_pair"
    assert build_pair.__doc__ == "Builds a generator and a discriminator."
    assert list(inspect.signature(build_pair).parameters) == ["k", "scale"]
    generator, discriminator = build_pair(adapter.keras, scale=2)
    assert any(isinstance(layer, adapter.PixelNorm) for layer in generator.layers)
    assert isinstance(
        discriminator.get_layer("d_conv_1").kernel_constraint, adapter.SpectralNorm
    )


def test_decorator_on_a_dict_and_with_options(adapter):
    @kerasnorm.normalize("sngan", mode="reparam", n_iter=3)
    def build(k):
        return {"d": zoo.dcgan_discriminator(k), "g": zoo.dcgan_generator(k)}

    models = build(adapter.keras)
    wrapper = models["d"].get_layer("conv_1")
    assert (
        isinstance(wrapper, adapter.SpectralNormalization)
        and wrapper.tracking.n_iter == 3
    )
    assert not any(
        isinstance(layer, adapter.SpectralNormalization) for layer in models["g"].layers
    )


def test_plan_prints_a_table_with_totals(adapter):
    text = str(kerasnorm.plan(zoo.progan_generator(adapter.keras), "progan"))
    lines = text.splitlines()
    assert lines[0] == "Plan for model 'progan_generator' (mode='constraint')"
    assert lines[1] == (
        "role of 'progan_generator': generator (maps latent (32,) to (16, 16, 3))"
    )
    assert lines[2].split() == ["node", "change", "rule"]
    assert any(
        line.startswith("dense_act") and "progan: activation" in line for line in lines
    )
    assert lines[-2] == "4 changes (4 InsertPixelNorm), 0 skipped"
    # Every kernel is accounted for, even where the policy changes none.
    assert lines[-1] == "kernels: 4 not selected"


def test_verbose_prints_the_plan(adapter, capsys):
    kerasnorm.apply_normalization(
        zoo.dcgan_discriminator(adapter.keras), "sngan", verbose=True
    )
    assert "3 changes (3 ConstrainKernel), 0 skipped" in capsys.readouterr().out


def test_plan_builds_nothing(adapter):
    model = zoo.dcgan_discriminator(adapter.keras)
    before = snapshot(model)
    the_plan = kerasnorm.plan(model, "sngan", mode="reparam")
    assert snapshot(model) == before
    assert [type(e.action).__name__ for e in the_plan.changes] == ["WrapSpectral"] * 3


def test_to_graph_one_node_per_call(adapter):
    graph = kerasnorm.to_graph(zoo.shared_layers(adapter.keras))
    shared = sorted(
        n for n, d in graph.nodes(data=True) if d["layer_name"] == "shared_conv"
    )
    assert shared == ["shared_conv", "shared_conv#1"]
    nested = kerasnorm.to_graph(zoo.nested_generator(adapter.keras))
    assert "body/block_1/block_1_conv" in nested
    data = nested.nodes["body/block_1/block_1_conv"]
    assert data["scope"] == ("body", "block_1") and data["role"] == "generator"
    assert data["class_name"] == "Conv2D" and data["kernels"]
    assert nested.nodes["z"]["is_input"] and nested.nodes["z"]["region_input"]


def test_custom_rules_and_registered_policy(adapter):
    rule = kerasnorm.Rule(
        select.layer_type("Conv2D") & select.name("conv_2"),
        actions.ConstrainKernel(sigma=2.0),
        name="only conv_2",
    )
    kerasnorm.register_policy("test_only_conv_2", [rule], overwrite=True)
    assert "test_only_conv_2" in kerasnorm.registered_policies()
    new = kerasnorm.apply_normalization(
        zoo.dcgan_discriminator(adapter.keras), "test_only_conv_2"
    )
    assert new.get_layer("conv_2").kernel_constraint.sigma == 2.0
    assert new.get_layer("conv_1").kernel_constraint is None
    with pytest.raises(KerasNormValueError, match="already registered"):
        kerasnorm.register_policy("test_only_conv_2", [rule])


def test_insert_before_and_after_with_a_factory(adapter):
    dropout = kerasnorm.InsertAfter(
        lambda name: adapter.layers.Dropout(0.5, name=name), suffix="drop"
    )
    noise = kerasnorm.InsertBefore(
        lambda name: adapter.layers.GaussianNoise(0.1, name=name), suffix="noise"
    )
    rules = [
        kerasnorm.Rule(select.name("dense"), dropout),
        kerasnorm.Rule(select.name("conv_1"), noise),
    ]
    new = kerasnorm.apply_normalization(
        zoo.dcgan_discriminator(adapter.keras), None, rules=rules
    )
    names = [layer.name for layer in new.layers]
    assert names.index("conv_1_noise") < names.index("conv_1")
    assert names[-1] == "dense_drop"


# Bad input: a clear error, and the input model unchanged.


def test_subclassed_model_is_a_type_error(adapter):
    model = zoo.subclassed(adapter.keras)
    with pytest.raises(
        KerasNormTypeError, match=r"SubclassedDiscriminator.*functional API"
    ):
        kerasnorm.apply_normalization(model, "sngan")


@pytest.mark.parametrize("thing", [None, "model", [1, 2], object()])
def test_not_a_model_is_a_type_error(thing):
    with pytest.raises(KerasNormTypeError, match="Keras"):
        kerasnorm.apply_normalization(thing, "sngan")


def test_a_layer_is_not_a_model(adapter):
    with pytest.raises(KerasNormTypeError, match="layer 'lonely'"):
        kerasnorm.apply_normalization(adapter.layers.Dense(3, name="lonely"), "sngan")


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (
            {"policy": "sngam"},
            "Unknown policy 'sngam'. Expected one of: biggan, equalized_lr, progan, "
            "sagan, sngan",
        ),
        ({"policy": "sngan", "role": "critic"}, "Unknown role 'critic'"),
        ({"policy": "sngan", "mode": "fold"}, "Unknown mode 'fold'"),
        ({"policy": "sngan", "n_iter": 0}, "n_iter"),
        ({"policy": "sngan", "power": 3}, "no option"),
        (
            {
                "policy": None,
                "strict": True,
                "rules": [
                    kerasnorm.Rule(select.name("nope"), actions.ConstrainKernel())
                ],
            },
            "Rule 'nope-rule' matches no layer",
        ),
    ],
)
def test_bad_values_are_value_errors_and_leave_the_model(adapter, kwargs, match):
    model = zoo.dcgan_discriminator(adapter.keras)
    before = snapshot(model)
    if "rules" in kwargs:
        kwargs["rules"] = [
            kerasnorm.Rule(
                kwargs["rules"][0].selector, kwargs["rules"][0].action, "nope-rule"
            )
        ]
    with pytest.raises(KerasNormValueError, match=match):
        kerasnorm.apply_normalization(model, **kwargs)
    assert snapshot(model) == before


def test_undecidable_role_tells_to_pass_role(adapter):
    k = adapter.keras
    image = k.Input((None, None, 3))
    model = k.Model(image, k.layers.Conv2D(3, 3)(image), name="translator")
    with pytest.raises(
        KerasNormValueError, match="Pass role='generator' or role='discriminator'"
    ):
        kerasnorm.apply_normalization(model, "sngan")
    assert (
        kerasnorm.apply_normalization(model, "sngan", role="discriminator") is not None
    )


def test_unclonable_custom_layer_names_the_layer_and_the_way_out(adapter):
    class Scale(adapter.layers.Layer):
        def __init__(self, factor, **kwargs):
            super().__init__(**kwargs)
            self.factor = factor

        def call(self, x):
            return x * self.factor

        def get_config(self):
            return super().get_config()  # forgets `factor`

    keras = adapter.keras
    inputs = keras.Input((4,))
    outputs = adapter.layers.Dense(2)(Scale(3.0, name="scale")(inputs))
    model = keras.Model(inputs, outputs, name="disc")
    before = snapshot(model)
    with pytest.raises(KerasNormTypeError, match=r"(?s)'scale' \(Scale\).*get_config"):
        kerasnorm.apply_normalization(model, "sngan")
    assert snapshot(model) == before


def test_bad_rules_argument(adapter):
    with pytest.raises(KerasNormTypeError, match="list of Rule"):
        kerasnorm.plan(zoo.dcgan_discriminator(adapter.keras), None, rules=["conv"])
    with pytest.raises(KerasNormTypeError, match="Selector"):
        kerasnorm.Rule(lambda g, n: True, actions.ConstrainKernel())


def test_every_error_is_a_kerasnorm_error():
    for error in (KerasNormTypeError, KerasNormValueError):
        assert issubclass(error, KerasNormError)
    assert issubclass(KerasNormTypeError, TypeError) and issubclass(
        KerasNormValueError, ValueError
    )
