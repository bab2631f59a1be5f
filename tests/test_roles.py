"""Roles from structure, names as evidence: kerasnorm.roles on tiny models."""

import re

import pytest
import zoo
from helpers import snapshot

import kerasnorm
from kerasnorm.errors import KerasNormValueError
from kerasnorm.roles import name_tokens, role_from_name


def _decisions(model, role="auto"):
    """Path ("model/nested") -> RoleDecision, as the plan shows them."""
    return kerasnorm.plan(model, role=role).roles


def _top(model):
    return _decisions(model)[model.name]


# --------------------------------------------------------------------------
# Tiny builders (8x8 or 16x16 images, few filters)
# --------------------------------------------------------------------------


def _image_to_image(k, name, channels_in=3, side=16):
    """A U-Net-ish translator: down, up, skip, conv; same size out as in."""
    layers = k.layers
    image = k.Input((side, side, channels_in), name=f"{name}_image")
    down = layers.Conv2D(8, 3, strides=2, padding="same", activation="relu")(image)
    up = layers.UpSampling2D()(down)
    x = layers.Concatenate()([up, image])
    x = layers.Conv2D(3, 3, padding="same", activation="tanh")(x)
    return k.Model(image, x, name=name)


def _latent_to_image(k, name, latent=8):
    layers = k.layers
    z = k.Input((latent,))
    x = layers.Dense(4 * 4 * 8, activation="relu")(z)
    x = layers.Reshape((4, 4, 8))(x)
    x = layers.Conv2DTranspose(3, 4, strides=2, padding="same", activation="tanh")(x)
    return k.Model(z, x, name=name)


def _image_to_score(k, name, shape=(8, 8, 3)):
    layers = k.layers
    image = k.Input(shape)
    x = layers.Conv2D(8, 3, strides=2, padding="same")(image)
    x = layers.LeakyReLU(0.2)(x)
    x = layers.GlobalAveragePooling2D()(x)
    return k.Model(image, layers.Dense(1)(x), name=name)


def _patch_gan(k, name, inputs=1, side=16):
    """A PatchGAN: `inputs` images of side `side` -> a (side/4, side/4, 1) map."""
    layers = k.layers
    images = [k.Input((side, side, 3)) for _ in range(inputs)]
    x = images[0] if inputs == 1 else layers.Concatenate()(images)
    x = layers.Conv2D(8, 3, strides=2, padding="same", activation="relu")(x)
    x = layers.Conv2D(1, 3, strides=2, padding="same")(x)
    return k.Model(images if inputs > 1 else images[0], x, name=name)


# --------------------------------------------------------------------------
# Names: whole words
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, tokens",
    [
        ("unet_3d", ["unet", "3d"]),
        ("netD", ["net", "d"]),
        ("D_A", ["d", "a"]),
        ("generator1", ["generator", "1"]),
        ("conv2d_block", ["conv", "2d", "block"]),
        ("pix2pix_2d", ["pix", "2pix", "2d"]),
        ("resnet_2d_generator", ["resnet", "2d", "generator"]),
        ("netG_A2B", ["net", "g", "a", "2b"]),
        ("DCGANGenerator", ["dcgan", "generator"]),
        ("PatchGAN-critic", ["patch", "gan", "critic"]),
        ("functional_3", ["functional", "3"]),
    ],
)
def test_name_tokens_are_whole_words(name, tokens):
    assert name_tokens(name) == tokens


@pytest.mark.parametrize(
    "name, role",
    [
        ("netD", "discriminator"),
        ("D_A", "discriminator"),
        ("g_AB", "generator"),
        ("generator1", "generator"),
        ("DCGANGenerator", "generator"),
        ("wgan_critic", "discriminator"),
        ("unet_3d", None),
        ("pix2pix_2d", None),
        ("conv2d_block", None),
        ("resnet_2d_generator", "generator"),
        ("g_and_d", None),
        ("gan", None),
    ],
)
def test_role_from_name(name, role):
    assert role_from_name(name) == role


# --------------------------------------------------------------------------
# The four names: structure decides, names are whole words
# --------------------------------------------------------------------------


def test_unet_3d_and_pix2pix_2d_are_image_to_image_generators(adapter):
    k = adapter.keras
    unet = _top(_image_to_image(k, "unet_3d"))
    assert (unet.role, unet.source) == ("generator", "size")
    assert unet.reason == (
        "maps (16, 16, 3) to (16, 16, 3), more than 1/8 of its input's size"
    )
    pix2pix = _top(_image_to_image(k, "pix2pix_2d", channels_in=1))
    assert (pix2pix.role, pix2pix.source) == ("generator", "size")
    assert pix2pix.reason.startswith("maps (16, 16, 1) to (16, 16, 3)")


def test_conv2d_block_mapping_latent_to_image_is_a_generator(adapter):
    decision = _top(_latent_to_image(adapter.keras, "conv2d_block"))
    assert (decision.role, decision.source) == ("generator", "rank")
    assert decision.reason == "maps latent (8,) to (8, 8, 3)"


def test_resnet_2d_generator_structure_and_name_agree(adapter):
    k = adapter.keras
    image = k.Input((8, 8, 3))
    x = k.layers.Conv2D(3, 3, padding="same", activation="relu")(image)
    x = k.layers.Add()([image, x])
    model = k.Model(image, x, name="resnet_2d_generator")
    decision = _top(model)
    assert (decision.role, decision.source) == ("generator", "size")
    assert len(kerasnorm.plan(model, "sngan")) == 0
    assert len(kerasnorm.plan(model, "sagan")) == 1


# --------------------------------------------------------------------------
# GANs of many kinds
# --------------------------------------------------------------------------


def test_dcgan_generator_and_discriminator(adapter):
    k = adapter.keras
    g = _top(zoo.dcgan_generator(k))
    assert (g.role, g.reason) == ("generator", "maps latent (16,) to (16, 16, 3)")
    d = _top(zoo.dcgan_discriminator(k))
    assert (d.role, d.reason) == ("discriminator", "reduces (16, 16, 3) to (1,)")


def test_conditional_generator_and_projection_discriminator(adapter):
    k = adapter.keras
    g = _top(zoo.conditional_generator(k))
    assert g.role == "generator"
    assert g.reason == "maps latent (16,) + label (1,) to (8, 8, 3)"
    d = _top(zoo.sngan_discriminator(k))
    assert d.role == "discriminator"
    assert d.reason == "reduces (16, 16, 3) + label (1,) to (1,)"


def test_two_input_patch_gan_is_a_discriminator_by_size(adapter):
    decision = _top(_patch_gan(adapter.keras, "patch", inputs=2))
    assert (decision.role, decision.source) == ("discriminator", "size")
    assert decision.reason == (
        "reduces (16, 16, 3) + (16, 16, 3) to (4, 4, 1), at most 1/8 of its "
        "input's size"
    )


def test_audio_video_and_text_discriminators(adapter):
    k = adapter.keras
    layers = k.layers
    audio = k.Input((64, 1))
    x = layers.Conv1D(4, 9, strides=4, padding="same", activation="relu")(audio)
    x = layers.Conv1D(8, 9, strides=4, padding="same", activation="relu")(x)
    wave = k.Model(audio, layers.Dense(1)(layers.Flatten()(x)), name="wave")
    video = k.Input((4, 8, 8, 3))
    y = layers.Conv3D(4, 3, strides=2, padding="same", activation="relu")(video)
    y = layers.GlobalAveragePooling3D()(y)
    clip = k.Model(video, layers.Dense(1)(y), name="clip")
    tokens = k.Input((6,), dtype="int32")
    t = layers.Embedding(20, 4, name="embedding")(tokens)
    t = layers.GlobalAveragePooling1D()(t)
    text = k.Model(tokens, layers.Dense(1)(t), name="text")
    assert str(_top(wave)) == "discriminator (reduces (64, 1) to (1,))"
    assert str(_top(clip)) == "discriminator (reduces (4, 8, 8, 3) to (1,))"
    assert str(_top(text)) == "discriminator (reduces tokens (6,) to (1,))"
    new = kerasnorm.apply_normalization(text, "sngan")
    constraint = new.get_layer("embedding").embeddings_constraint
    assert isinstance(constraint, adapter.SpectralNorm)


def test_combined_gan_has_no_role_and_its_parts_have_theirs(adapter):
    _, _, gan = zoo.gan(adapter.keras)
    decisions = _decisions(gan)
    assert list(decisions) == ["gan", "gan/generator", "gan/discriminator"]
    assert decisions["gan"].role is None
    assert decisions["gan"].source == "combined"
    assert decisions["gan"].reason.startswith(
        "feeds generator 'generator' into discriminator 'discriminator'"
    )
    assert str(decisions["gan/generator"]) == (
        "generator (maps latent (16,) to (16, 16, 3))"
    )
    assert str(decisions["gan/discriminator"]) == (
        "discriminator (reduces (16, 16, 3) to (1,))"
    )
    lines = str(kerasnorm.plan(gan, ["progan", "sngan"])).splitlines()
    assert lines[1].startswith("role of 'gan': none (feeds generator")
    assert lines[2] == (
        "role of 'gan/generator': generator (maps latent (16,) to (16, 16, 3))"
    )
    assert lines[3] == (
        "role of 'gan/discriminator': discriminator (reduces (16, 16, 3) to (1,))"
    )


def _cycle_gan(k):
    """Two translators and two PatchGANs, with names that say nothing."""
    a_to_b = _image_to_image(k, "a_to_b")
    b_to_a = _image_to_image(k, "b_to_a")
    patch_a, patch_b = _patch_gan(k, "patch_a"), _patch_gan(k, "patch_b")
    a, b = k.Input((16, 16, 3), name="a"), k.Input((16, 16, 3), name="b")
    fake_b, fake_a = a_to_b(a), b_to_a(b)
    outputs = [patch_b(fake_b), patch_a(fake_a), b_to_a(fake_b), a_to_b(fake_a)]
    return k.Model([a, b], outputs, name="cycle")


def test_cycle_gan_judges_each_part_by_size(adapter):
    model = _cycle_gan(adapter.keras)
    decisions = _decisions(model)
    assert decisions["cycle"].role is None
    assert re.fullmatch(
        "feeds generator '(a_to_b|b_to_a)' into discriminator 'patch_(a|b)': a "
        "combined model, whose parts are judged on their own",
        decisions["cycle"].reason,
    )
    roles = {path: d.role for path, d in decisions.items() if path != "cycle"}
    assert roles == {
        "cycle/a_to_b": "generator",
        "cycle/b_to_a": "generator",
        "cycle/patch_b": "discriminator",
        "cycle/patch_a": "discriminator",
        "cycle/b_to_a#1": "generator",
        "cycle/a_to_b#1": "generator",
    }
    assert decisions["cycle/patch_a"].reason == (
        "reduces (16, 16, 3) to (4, 4, 1), at most 1/8 of its input's size"
    )
    before = snapshot(model)
    new = kerasnorm.apply_normalization(model, ["progan", "sngan"])
    assert snapshot(model) == before
    patch = new.get_layer("patch_a")
    assert all(
        isinstance(layer.kernel_constraint, adapter.SpectralNorm)
        for layer in patch.layers
        if hasattr(layer, "kernel")
    )
    translator = new.get_layer("a_to_b")
    assert any(isinstance(layer, adapter.PixelNorm) for layer in translator.layers)
    assert not any(
        getattr(layer, "kernel_constraint", None) for layer in translator.layers
    )


def test_blocks_in_a_generator_take_its_role_not_the_size_rule(adapter):
    k = adapter.keras
    layers = k.layers
    block_in = k.Input((4, 4, 8))
    h = layers.Conv2D(8, 3, padding="same", activation="relu")(block_in)
    residual = k.Model(block_in, layers.Add()([block_in, h]), name="residual")
    rgb_in = k.Input((8, 8, 32))
    # 192 values out of 2048: a discriminator by the size rule, were it asked.
    to_rgb = k.Model(rgb_in, layers.Conv2D(3, 1)(rgb_in), name="to_rgb")
    z = k.Input((8,))
    x = layers.Reshape((4, 4, 8))(layers.Dense(4 * 4 * 8)(z))
    x = layers.Conv2DTranspose(32, 4, strides=2, padding="same")(residual(x))
    model = k.Model(z, to_rgb(layers.LeakyReLU(0.2)(x)), name="model")
    decisions = _decisions(model)
    assert str(decisions["model"]) == "generator (maps latent (8,) to (8, 8, 3))"
    assert decisions["model/residual"].source == "enclosing"
    assert str(decisions["model/to_rgb"]) == (
        "generator (like the model around it: it maps (8, 8, 32) to (8, 8, 3), "
        "which no rank rule decides)"
    )
    standalone = _top(to_rgb)
    assert (standalone.role, standalone.source) == ("discriminator", "size")


def test_blocks_in_a_discriminator_do_not_make_it_combined(adapter):
    k = adapter.keras
    layers = k.layers
    stem_in = k.Input((16, 16, 3))
    stem = k.Model(stem_in, layers.Conv2D(8, 3, padding="same")(stem_in), name="stem")
    down_in = k.Input((16, 16, 8))
    down = layers.Conv2D(8, 3, strides=4, padding="same", activation="relu")(down_in)
    down = k.Model(down_in, down, name="down")
    head_in = k.Input((4, 4, 8))
    head = layers.Dense(1)(layers.Flatten()(head_in))
    head = k.Model(head_in, head, name="head")
    image = k.Input((16, 16, 3))
    model = k.Model(image, head(down(stem(image))), name="model")
    roles = {path: str(d) for path, d in _decisions(model).items()}
    assert roles["model"] == "discriminator (reduces (16, 16, 3) to (1,))"
    assert roles["model/stem"].startswith("discriminator (like the model around it")
    assert roles["model/down"].startswith("discriminator (like the model around it")
    assert roles["model/head"] == "discriminator (reduces (4, 4, 8) to (1,))"


# --------------------------------------------------------------------------
# Disagreement, silence, and role=
# --------------------------------------------------------------------------


def test_name_and_structure_that_disagree_raise_and_change_nothing(adapter):
    model = _latent_to_image(adapter.keras, "netD")
    decision = _top(model)
    assert (decision.role, decision.source) == (None, "conflict")
    before = snapshot(model)
    with pytest.raises(KerasNormValueError) as raised:
        kerasnorm.apply_normalization(model, "sngan")
    assert str(raised.value) == (
        "The model 'netD' says two roles: its name says discriminator ('d') but "
        "its structure says generator (maps latent (8,) to (8, 8, 3)). Pass "
        "role='generator' or role='discriminator', or rename the model."
    )
    assert snapshot(model) == before
    new = kerasnorm.apply_normalization(model, "progan", role="generator")
    assert sum(isinstance(layer, adapter.PixelNorm) for layer in new.layers) == 2


def test_a_block_without_role_inside_a_disagreeing_model_names_that_model(adapter):
    k = adapter.keras
    block = k.Sequential(
        [k.Input((None, None, 4)), k.layers.UpSampling2D(), k.layers.Conv2D(3, 3)],
        name="block",
    )
    z = k.Input((16,))
    model = k.Model(z, block(k.layers.Reshape((2, 2, 4))(z)), name="netD")
    decisions = _decisions(model)
    assert decisions["netD/block"].source == "undecided"
    assert decisions["netD/block"].reason.endswith(
        "no role word in its name, and the model around it has no role"
    )
    with pytest.raises(KerasNormValueError, match="The model 'netD' says two roles"):
        kerasnorm.plan(model, "sngan")


def _fully_convolutional(k, name, head=None):
    image = k.Input((None, None, 3))
    x = k.layers.Conv2D(8, 3, padding="same", activation="relu")(image)
    if head == "score":
        x = k.layers.Dense(1)(k.layers.GlobalAveragePooling2D()(x))
    else:
        x = k.layers.Conv2D(3 if head is None else 1, 3, padding="same")(x)
    return k.Model(image, x, name=name)


def test_unknown_sizes_leave_the_rank_rules_then_the_name(adapter):
    k = adapter.keras
    critic = _top(_fully_convolutional(k, "fcn", head="score"))
    assert str(critic) == "discriminator (reduces (None, None, 3) to (1,))"
    named = _top(_fully_convolutional(k, "fcn_generator"))
    assert (named.role, named.source) == ("generator", "name")
    assert named.reason == (
        "its name says so ('generator'); it maps (None, None, 3) to "
        "(None, None, 3), which no rank rule decides and whose sizes are unknown"
    )
    patch = _top(_fully_convolutional(k, "patch_disc", head="map"))
    assert (patch.role, patch.source) == ("discriminator", "name")


def test_unknown_sizes_and_a_silent_name_ask_for_role(adapter):
    model = _fully_convolutional(adapter.keras, "fcn")
    assert _top(model).source == "undecided"
    with pytest.raises(KerasNormValueError) as raised:
        kerasnorm.plan(model, "sngan")
    assert str(raised.value) == (
        "Cannot tell whether model 'fcn' is a generator or a discriminator (it "
        "holds layer 'conv2d'): it maps (None, None, 3) to (None, None, 3), which "
        "no rank rule decides and whose sizes are unknown; no role word in its "
        "name. Pass role='generator' or role='discriminator', or name the model "
        "so that it says (e.g. 'my_generator')."
    )
    assert len(kerasnorm.plan(model, "sngan", role="discriminator")) == 2


def test_latent_to_vector_is_undecided(adapter):
    k = adapter.keras
    z = k.Input((4,))
    decision = _top(k.Model(z, k.layers.Dense(2)(z), name="mapping"))
    assert str(decision) == (
        "none (maps latent (4,) to (2,), which neither rule decides; no role word "
        "in its name)"
    )


def test_an_explicit_role_covers_every_part(adapter):
    _, _, gan = zoo.gan(adapter.keras)
    decisions = _decisions(gan, role="discriminator")
    assert {str(d) for d in decisions.values()} == {
        "discriminator (role='discriminator' was given)"
    }
    graph = kerasnorm.to_graph(gan, role="discriminator")
    assert set(graph.graph["roles"].values()) == {"discriminator"}
    assert {data["role"] for _, data in graph.nodes(data=True)} == {"discriminator"}
