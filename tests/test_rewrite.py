"""apply_normalization on the zoo: positions, weights, outputs, the input untouched."""

import numpy as np
import pytest
import tensorflow as tf
import zoo
from helpers import is_kernel, snapshot, top_singular_value

import kerasnorm
from kerasnorm.rewrite import rewrite

GENERATORS = [
    name for name, facts in zoo.EXPECTED.items() if facts["role"] == "generator"
]
DISCRIMINATORS = [
    n for n, facts in zoo.EXPECTED.items() if facts["role"] == "discriminator"
]


def _all_layers(model, adapter):
    """Every layer of `model`, nested models' layers included, by name."""
    found = {}
    for layer in model.layers:
        found[layer.name] = layer
        if adapter.is_model(layer):
            found.update(_all_layers(layer, adapter))
    return found


def _outputs(model, x):
    return [np.asarray(t) for t in tf.nest.flatten(model(x, training=False))]


@pytest.mark.parametrize("name", GENERATORS)
def test_progan_puts_pixel_norm_exactly_where_the_rule_says(adapter, name):
    model = zoo.ALL_BUILDERS[name](adapter.keras)
    before = snapshot(model)
    new = kerasnorm.apply_normalization(model, "progan")
    assert snapshot(model) == before
    layers = _all_layers(new, adapter)
    inserted = sorted(
        n for n, layer in layers.items() if isinstance(layer, adapter.PixelNorm)
    )
    expected = sorted(
        f"{after}_pixel_norm" for after in zoo.EXPECTED[name]["progan_after"]
    )
    assert inserted == expected
    # Each PixelNorm reads the output of the layer it is named after.
    graph = kerasnorm.to_graph(new)
    for node, data in graph.nodes(data=True):
        if isinstance(data["op"], adapter.PixelNorm):
            (parent,) = graph.predecessors(node)
            assert (
                f"{graph.nodes[parent]['layer_name']}_pixel_norm" == data["layer_name"]
            )
    assert not any(
        isinstance(getattr(layer, "kernel_constraint", None), adapter.SpectralNorm)
        for layer in layers.values()
    )
    if zoo.forward_runs(name):
        x = zoo.forward_input(adapter.keras, model)
        for out in _outputs(new, x):
            assert np.all(np.isfinite(out))


@pytest.mark.parametrize("name", DISCRIMINATORS)
@pytest.mark.parametrize("mode", ["constraint", "reparam"])
def test_sngan_normalizes_every_kernel_and_keeps_weights(adapter, name, mode):
    model = zoo.ALL_BUILDERS[name](adapter.keras)
    before = snapshot(model)
    new = kerasnorm.apply_normalization(model, "sngan", role="discriminator", mode=mode)
    assert snapshot(model) == before
    assert new.name == model.name and type(new) is type(model)
    old_layers, new_layers = _all_layers(model, adapter), _all_layers(new, adapter)
    assert set(old_layers) == set(new_layers)
    normalized = []
    for layer_name, old in old_layers.items():
        counterpart = new_layers[layer_name]
        assert counterpart is not old
        inner = (
            counterpart.layer
            if isinstance(counterpart, adapter.SpectralNormalization)
            else counterpart
        )
        # Frozen layers' kernels too: `weights`, not `trainable_weights`.
        constrained = [
            isinstance(w.constraint, (adapter.SpectralNorm, adapter.ConstraintChain))
            for w in inner.weights
            if is_kernel(w)
        ]
        if isinstance(counterpart, adapter.SpectralNormalization):
            normalized.append(layer_name)
        elif any(constrained):
            # Every kernel of the layer, not some.
            assert all(constrained), layer_name
            normalized.append(layer_name)
        assert inner.trainable == old.trainable
        assert inner.dtype_policy.name == old.dtype_policy.name
        for w_old, w_new in zip(old.weights, inner.weights, strict=True):
            np.testing.assert_array_equal(np.asarray(w_new), np.asarray(w_old))
    assert sorted(normalized) == zoo.EXPECTED[name]["kernel_layers"]
    if mode == "constraint" and zoo.EXPECTED[name]["deterministic"]:
        x = zoo.forward_input(adapter.keras, model)
        for got, want in zip(_outputs(new, x), _outputs(model, x), strict=True):
            np.testing.assert_array_equal(got, want)


def test_configs_differ_only_by_the_added_constraints(adapter):
    model = zoo.with_constraints(adapter.keras)
    new = kerasnorm.apply_normalization(model, "sngan")
    for old in model.layers:
        config, new_config = old.get_config(), new.get_layer(old.name).get_config()
        changed = {k for k in config if config[k] != new_config[k]}
        assert changed <= {"kernel_constraint"}, (old.name, changed)
    conv = new.get_layer("conv").kernel_constraint
    assert type(conv) is adapter.ConstraintChain
    assert [type(c).__name__ for c in conv.constraints] == ["MaxNorm", "SpectralNorm"]
    assert conv.constraints[0].max_value == 2.0
    dense = new.get_layer("dense").kernel_constraint
    assert [type(c).__name__ for c in dense.constraints] == ["NonNeg", "SpectralNorm"]


def test_existing_constraints_are_in_the_plan(adapter):
    details = [
        e.detail
        for e in kerasnorm.plan(zoo.with_constraints(adapter.keras), "sngan").changes
    ]
    assert "SpectralNorm on kernel (after existing MaxNorm)" in details


@pytest.mark.parametrize("policy", ["progan", "sngan", "sagan", "biggan"])
@pytest.mark.parametrize("mode", ["constraint", "reparam"])
def test_applying_twice_changes_nothing_more(adapter, policy, mode):
    for name in ("progan_generator", "sngan_discriminator", "nested_generator"):
        model = zoo.ALL_BUILDERS[name](adapter.keras)
        once = kerasnorm.apply_normalization(model, policy, mode=mode)
        again = kerasnorm.plan(once, policy, mode=mode)
        assert again.changes == [], str(again)
        twice = kerasnorm.apply_normalization(once, policy, mode=mode)
        assert sorted(_all_layers(twice, adapter)) == sorted(_all_layers(once, adapter))


def test_combined_gan_normalizes_each_part_by_its_role(adapter):
    _, _, combined = zoo.gan(adapter.keras)
    before = snapshot(combined)
    new = kerasnorm.apply_normalization(combined, ["progan", "sngan"])
    assert snapshot(combined) == before
    g, d = new.get_layer("generator"), new.get_layer("discriminator")
    pixel = sorted(
        layer.name for layer in g.layers if isinstance(layer, adapter.PixelNorm)
    )
    assert pixel == sorted(
        f"{n}_pixel_norm" for n in zoo.GAN_EXPECTED["generator"]["progan_after"]
    )
    constrained = sorted(
        layer.name
        for layer in d.layers
        if isinstance(getattr(layer, "kernel_constraint", None), adapter.SpectralNorm)
    )
    assert constrained == zoo.GAN_EXPECTED["discriminator"]["kernel_layers"]
    assert not any(
        isinstance(getattr(layer, "kernel_constraint", None), adapter.SpectralNorm)
        for layer in g.layers
    )
    assert not any(isinstance(layer, adapter.PixelNorm) for layer in d.layers)


def test_sagan_and_biggan_differ_on_generator_embeddings(adapter):
    model = zoo.conditional_generator(adapter.keras)
    sagan = kerasnorm.plan(model, "sagan")
    biggan = kerasnorm.plan(model, "biggan")
    assert "embedding" in {e.layer for e in sagan.changes}
    assert "embedding" not in {e.layer for e in biggan.changes}
    assert {e.layer for e in sagan.changes} - {"embedding"} == {
        e.layer for e in biggan.changes
    }


def test_shared_layer_stays_shared_and_is_normalized_once(adapter):
    model = zoo.shared_layers(adapter.keras)
    the_plan = kerasnorm.plan(model, "sngan")
    assert [e.layer for e in the_plan.changes].count("shared_conv") == 1
    new = kerasnorm.apply_normalization(model, "sngan")
    graph = kerasnorm.to_graph(new)
    calls = [
        n for n, data in graph.nodes(data=True) if data["layer_name"] == "shared_conv"
    ]
    assert len(calls) == 2
    assert graph.nodes[calls[0]]["op"] is graph.nodes[calls[1]]["op"]


def test_sequential_stays_sequential(adapter):
    model = zoo.sequential_discriminator(adapter.keras)
    new = kerasnorm.apply_normalization(model, "sngan", mode="reparam")
    assert isinstance(new, adapter.keras.Sequential)
    assert [layer.name for layer in new.layers] == [
        layer.name for layer in model.layers
    ]


def test_pixel_norm_follows_channels_first(adapter):
    new = kerasnorm.apply_normalization(
        zoo.channels_first_generator(adapter.keras), "progan"
    )
    axes = {
        layer.name: layer.axis
        for layer in new.layers
        if isinstance(layer, adapter.PixelNorm)
    }
    assert axes["conv_1_pixel_norm"] == 1 and axes["z_pixel_norm"] == -1


def test_reparam_wrappers_carry_the_original_names_and_train(adapter):
    model = zoo.dcgan_discriminator(adapter.keras)
    new = kerasnorm.apply_normalization(model, "sngan", mode="reparam", n_iter=2)
    wrapper = new.get_layer("conv_1")
    assert type(wrapper) is adapter.SpectralNormalization
    assert wrapper.layer.name == "conv_1" and wrapper.tracking.n_iter == 2
    x = zoo.forward_input(adapter.keras, model)
    new.compile(optimizer="adam", loss="mse")
    new.fit(x, np.ones((2, 1), "float32"), epochs=2, verbose=0)
    # The raw kernel trains; the effective kernel W / sigma has norm 1.
    folded = wrapper.fold()
    matrix = np.asarray(folded.kernel).reshape(-1, folded.kernel.shape[-1])
    np.testing.assert_allclose(np.linalg.norm(matrix, 2), 1.0, atol=1e-3)


def test_compiled_model_comes_back_compiled_with_a_fresh_optimizer(adapter):
    model = zoo.dcgan_discriminator(adapter.keras)
    model.compile(
        optimizer=adapter.keras.optimizers.Adam(1e-3), loss="mse", metrics=["mae"]
    )
    x = zoo.forward_input(adapter.keras, model)
    model.fit(x, np.ones((2, 1), "float32"), verbose=0)
    with pytest.warns(UserWarning, match="fresh optimizer"):
        new = kerasnorm.apply_normalization(model, "sngan")
    assert new.optimizer is not model.optimizer
    assert type(new.optimizer) is type(model.optimizer)
    np.testing.assert_allclose(float(new.optimizer.learning_rate), 1e-3)
    assert int(new.optimizer.iterations) == 0
    history = new.fit(x, np.ones((2, 1), "float32"), verbose=0)
    assert "mae" in history.history


def test_mixed_precision_policies_are_kept(adapter):
    model = zoo.mixed_precision_discriminator(adapter.keras)
    new = kerasnorm.apply_normalization(model, "sngan", mode="reparam")
    for layer in model.layers:
        counterpart = new.get_layer(layer.name)
        inner = getattr(counterpart, "layer", counterpart)
        assert inner.dtype_policy.name == layer.dtype_policy.name


def test_constraint_states_exist_before_the_first_step_and_solve_exactly(adapter):
    model = zoo.with_constraints(adapter.keras)
    new = kerasnorm.apply_normalization(model, "sngan")
    chain = new.get_layer("conv").kernel_constraint
    spectral = chain.constraints[1]
    kernel = new.get_layer("conv").kernel
    ((variable, state, _),) = spectral._states.values()
    assert variable is kernel
    # Created by the rewrite (so under its strategy), empty until first used.
    assert not np.asarray(state).any()
    projected = np.asarray(spectral.project(kernel, kernel))
    matrix = np.asarray(kernel).reshape(-1, kernel.shape[-1])
    top = np.linalg.svd(matrix)[2][0]
    np.testing.assert_allclose(abs(np.dot(np.asarray(state)[0], top)), 1.0, atol=1e-5)
    assert top_singular_value(projected) == pytest.approx(1.0, abs=1e-5)


def test_a_nested_model_called_twice_stays_one_model(adapter):
    keras = adapter.keras
    _, discriminator, _ = zoo.gan(keras)
    real = keras.Input(zoo.IMAGE_SHAPE, name="real")
    fake = keras.Input(zoo.IMAGE_SHAPE, name="fake")
    both = keras.Model(
        [real, fake], [discriminator(real), discriminator(fake)], name="critic_pair"
    )
    new = kerasnorm.apply_normalization(both, "sngan", role="discriminator")
    graph = kerasnorm.to_graph(new)
    calls = [n for n, d in graph.nodes(data=True) if d["layer_name"] == "d_conv_1"]
    assert calls == ["discriminator/d_conv_1", "discriminator#1/d_conv_1"]
    assert graph.nodes[calls[0]]["op"] is graph.nodes[calls[1]]["op"]
    nested = [layer for layer in new.layers if layer.name == "discriminator"]
    assert len(nested) == 1
    x = np.random.default_rng(0).normal(size=(2, *zoo.IMAGE_SHAPE)).astype("float32")
    for got, want in zip(_outputs(new, [x, x]), _outputs(both, [x, x]), strict=True):
        np.testing.assert_array_equal(got, want)


def test_progress_counts_each_layer_cloned_and_copied_once(adapter):
    keras = adapter.keras
    shared = keras.layers.Dense(8, name="shared")
    block_input = keras.Input((8,), name="block_input")
    block = keras.Model(block_input, shared(block_input), name="block")
    z = keras.Input((8,), name="z")
    hidden = shared(block(block(z)))
    model = keras.Model(z, keras.layers.Dense(1, name="out")(hidden))
    calls = []
    the_plan = kerasnorm.plan(model, "sngan", role="discriminator")
    rewrite(the_plan, progress=lambda *call: calls.append(call))
    # Two layers (`shared`, in the block and at the top, and `out`), each
    # cloned once and its weights copied once.
    assert calls == [(1, 4), (2, 4), (3, 4), (4, 4)]
