"""Section 1: what spectral normalization adds to a discriminator's train step."""

from __future__ import annotations

import tensorflow as tf

import kerasnorm
from benchmarks import models, training
from benchmarks.config import Config
from benchmarks.report import Section, Table, Target
from benchmarks.timing import ratios, time_interleaved

VARIANTS = {
    "none": "no normalization",
    "copy": "no normalization, a second model (the timer's noise)",
    "power": "one power iteration per step (a naive SN constraint)",
    "constraint": "kerasnorm SpectralNorm constraint (defaults)",
    "seed": "seed constraint (5 power iterations from a random u)",
    "pytorch": "one power iteration, gradient through sigma (PyTorch's wrapper)",
    "reparam": "kerasnorm SpectralNormalization wrapper (defaults)",
    "keras": "Keras's SpectralNormalization wrapper",
    "given": "gradient through sigma alone, sigma given (any such wrapper's floor)",
}

# Step-cost limits by batch size class: the targets for the large
# batch (a slow step) and the small one (where fixed per-step costs show).
CONSTRAINT_LIMIT = {"large": 1.02, "small": 1.05}
WRAPPER_LIMIT = {"large": 1.05, "small": 1.08}
# At the small batch the constraint may cost a naive power iteration's
# ratio plus this.
OVER_POWER_ITERATION = 0.01
# The unnormalized model against a copy of itself reads 1 but for the
# timer's noise: within this, differences of 0.01 between variants mean
# something.
NOISE_LIMIT = 0.01


def build_variant(variant: str, flavor: str, config: Config):
    """The discriminator normalized as `variant` says.

    Raises:
        Exception: Whatever the Keras in question raises when the variant
            does not work there (Keras's own wrapper on tf-keras).
    """
    build = dict(
        flavor=flavor, size=config.image_size, widths=config.discriminator_widths
    )
    if variant == "keras":
        wrapper = models.keras_of(flavor).layers.SpectralNormalization
        return models.dcgan_discriminator(**build, wrapper=wrapper)
    if variant in ("pytorch", "given"):
        make = {
            "pytorch": models.power_iteration_wrapper,
            "given": models.given_sigma_wrapper,
        }[variant]
        return models.dcgan_discriminator(**build, wrapper=make(flavor))
    if variant in ("seed", "power"):
        make = {
            "seed": models.seed_spectral_norm,
            "power": models.power_iteration_constraint,
        }[variant]
        return models.dcgan_discriminator(
            **build, kernel_constraint=lambda: make(flavor)
        )
    if variant in ("none", "copy"):
        return models.dcgan_discriminator(**build)
    return normalized_discriminator(flavor, config, mode=variant)


def normalized_discriminator(flavor: str, config: Config, **options):
    """The discriminator with kerasnorm's SNGAN normalization and `options`."""
    plain = models.dcgan_discriminator(
        flavor, config.image_size, config.discriminator_widths
    )
    return kerasnorm.apply_normalization(
        plain, "sngan", role="discriminator", **options
    )


def batches(config: Config, batch: int | None = None) -> tuple[tf.Tensor, tf.Tensor]:
    """One real and one fake batch, of `config.batch` images unless given."""
    batch = batch or config.batch
    return (
        tf.constant(models.real_images(batch, config.image_size)),
        tf.constant(models.fake_images(batch, config.image_size)),
    )


def prepared_steps(
    flavor: str,
    config: Config,
    variants,
    options=None,
    batch: int | None = None,
    jit_compile: bool = False,
):
    """Blocking train steps of each variant that builds, and why the others fail.

    Args:
        flavor: The Keras.
        config: Sizes.
        variants: Variant names.
        options: Variant name to `apply_normalization` SN options (with
            `mode`, else the constraint), for variants named other than
            those in `VARIANTS`.
        batch: Images per batch; `config.batch` by default.
        jit_compile: Compile the steps with XLA.

    Returns:
        `(steps, failures)`: name to a no-argument callable, name to the
        error message.
    """
    real, fake = batches(config, batch)
    steps, failures = {}, {}
    for variant in variants:
        try:
            if options and variant in options:
                model = normalized_discriminator(flavor, config, **options[variant])
            else:
                model = build_variant(variant, flavor, config)
            step = training.discriminator_step(model, flavor, jit_compile=jit_compile)
            run = training.blocking(step, real, fake)
            run()
        except Exception as error:  # reported in the table, not hidden
            failures[variant] = f"{type(error).__name__}: {str(error).splitlines()[0]}"
            continue
        steps[variant] = run
    return steps, failures


def run(config: Config) -> Section:
    section = Section(
        "sn_cost",
        "1. Train-step cost of spectral normalization",
        f"One discriminator update (Adam, BCE on a real and a fake batch) of the "
        f"DCGAN discriminator on {config.image_size}x{config.image_size}x3 "
        f"images (Conv2D {'-'.join(map(str, config.discriminator_widths))}, "
        "kernel 4, stride 2, LeakyReLU 0.2, Dense 1), normalized seven ways, "
        f"with batches of {config.batch} and of {config.small_batch} (where "
        "the fixed cost of each step shows, as it would on an accelerator), "
        f"then with batches of {config.small_batch} compiled by XLA "
        f"(`jit_compile=True`); {config.steps} rounds after {config.warmup} "
        "warm-up steps; the ratio to the unnormalized model is the median of "
        "the per-round ratios, the step time a plain median. The naive "
        "constraint and PyTorch's wrapper are the baselines: one power iteration "
        "per step and nothing else (PyTorch's also differentiates sigma = "
        "u^T W v, as kerasnorm's wrapper does, where Keras's treats sigma as "
        "a constant). Below those, a wrapper given sigma and its singular "
        "vectors (solved once, before training) that only divides the kernel "
        "and differentiates sigma, with kerasnorm's gradient: any wrapper that "
        "differentiates sigma spends this on kernel-sized tensors at every "
        "call whatever its estimate costs, so its ratio is the floor of the "
        "wrapper's targets. The seed constraint is the article kerasnorm started "
        "from, with its `call` renamed `__call__` so Keras applies it. A "
        "second unnormalized model, timed as one more variant, shows the "
        "timer's noise: its ratio would be 1.000 without any. Then "
        "the ops each compiled step runs: on a CPU or an accelerator alike, "
        "every op is a launch, and at a small batch their count, not the "
        "reads of the kernels, sets the cost.",
    )
    rows = []
    runs = [
        (config.batch, False, "large"),
        (config.small_batch, False, "small"),
        (config.small_batch, True, "small"),
    ]
    for flavor in config.flavors:
        for batch, jit_compile, size in runs:
            label = f"batch {batch}{', XLA' if jit_compile else ''}"
            steps, failures = prepared_steps(
                flavor, config, VARIANTS, batch=batch, jit_compile=jit_compile
            )
            timings = time_interleaved(steps, config.steps, config.warmup)
            ratio = ratios(timings, "none")
            section.data[f"{flavor}, {label}"] = {
                "median_ms": {name: 1e3 * t.median for name, t in timings.items()},
                "ratio": ratio,
                "failures": failures,
            }
            for name, description in VARIANTS.items():
                if name in failures:
                    row = [None, f"fails: {failures[name]}"]
                else:
                    row = [1e3 * timings[name].median, ratio[name]]
                rows.append([flavor, label, description, *row])
            section.targets += _targets(ratio, f"{label} ({flavor})", size)
    section.tables.append(
        Table(
            "Median step time and ratio to no normalization",
            ["Keras", "step", "variant", "step (ms)", "ratio"],
            rows,
        )
    )
    _op_counts(section, config)
    return section


# Ops that do no work of their own once TensorFlow has built the graph.
_BOOKKEEPING = {"Const", "Identity", "NoOp", "Placeholder"}
# Ops that call a function of the graph's library, named by their `f`.
_CALLS = ("PartitionedCall", "StatefulPartitionedCall")
# Conditionals and loops, by the attributes naming their branch functions.
_BRANCHES = {
    "If": ("then_branch", "else_branch"),
    "StatelessIf": ("then_branch", "else_branch"),
    "While": ("cond", "body"),
    "StatelessWhile": ("cond", "body"),
}
# The variants whose ops are counted, by label: a `VARIANTS` name, or SN
# options of `apply_normalization`.
OP_COUNT_VARIANTS = {
    "no normalization": "none",
    "one power iteration per step (a naive SN constraint)": "power",
    "kerasnorm constraint (defaults)": {},
    "kerasnorm constraint, tol=None (a fixed iteration count)": {"tol": None},
    "kerasnorm wrapper (defaults)": {"mode": "reparam"},
}


def step_ops(model, flavor: str, config: Config) -> tuple[int, int]:
    """The ops of `model`'s compiled train step as TensorFlow instantiates
    it: on its straight path (run by every step), and inside branches,
    loops and functions called rather than inlined (run when taken).

    A function TensorFlow inlines counts at each call; one marked not to be
    inlined counts once, however many sites call it.
    """
    real, fake = batches(config, config.small_batch)
    step = training.discriminator_step(model, flavor)
    graph = step.get_concrete_function(real, fake).graph.as_graph_def()
    library = {function.signature.name: function for function in graph.library.function}
    called = []  # Names of the functions not inlined, each counted once.

    def counted(nodes) -> tuple[int, int]:
        path = inside = 0
        for node in nodes:
            if node.op in _CALLS:
                name = node.attr["f"].func.name
                function = library[name]
                if function.attr["_noinline"].b:
                    path += 1
                    if name not in called:
                        called.append(name)
                    continue
                more_path, more_inside = counted(function.node_def)
                path, inside = path + more_path, inside + more_inside
                continue
            if node.op not in _BOOKKEEPING:
                path += 1
            for attribute in _BRANCHES.get(node.op, ()):
                body = library[node.attr[attribute].func.name]
                inside += sum(counted(body.node_def))
        return path, inside

    path, inside = counted(graph.node)
    for name in called:  # grows while it is walked: calls inside calls
        inside += sum(counted(library[name].node_def))
    return path, inside


def _op_counts(section: Section, config: Config) -> None:
    """Adds the table of ops per train step of the first Keras."""
    flavor = config.flavors[0]
    counts = {}
    for label, variant in OP_COUNT_VARIANTS.items():
        if isinstance(variant, dict):
            model = normalized_discriminator(flavor, config, **variant)
        else:
            model = build_variant(variant, flavor, config)
        counts[label] = step_ops(model, flavor, config)
    kernels = len(models.kernel_layer_names(build_variant("none", flavor, config)))
    plain = counts["no normalization"][0]
    section.data[f"op_counts_{flavor}"] = counts
    section.tables.append(
        Table(
            f"Ops of the compiled train step ({flavor}, TensorFlow graph, "
            f"{kernels} kernels): on the path every step runs, added per kernel "
            "on that path, and in branches, loops and functions called rather "
            "than inlined, run only when taken",
            ["variant", "every step", "added per kernel", "in branches and loops"],
            [
                [label, path, (path - plain) / kernels, inside]
                for label, (path, inside) in counts.items()
            ],
        )
    )


def _targets(ratio: dict, label: str, size: str) -> list[Target]:
    """The step-cost targets of one run, `size` "large" or "small" batch."""
    targets = [
        Target(
            f"SN constraint step cost, {label}",
            ratio.get("constraint"),
            CONSTRAINT_LIMIT[size],
        ),
        Target(
            f"SN wrapper step cost, {label}",
            ratio.get("reparam"),
            WRAPPER_LIMIT[size],
            floor=ratio.get("given"),
        ),
    ]
    if "constraint" in ratio and "power" in ratio and size == "small":
        targets.append(
            Target(
                f"SN constraint cost over a power iteration's, {label}",
                ratio["constraint"] - ratio["power"],
                OVER_POWER_ITERATION,
            )
        )
    if "copy" in ratio:
        targets.append(noise_target(ratio, label))
    if "reparam" in ratio and "pytorch" in ratio:
        targets.append(
            Target(
                f"SN wrapper cost over PyTorch's, {label}",
                ratio["reparam"] / ratio["pytorch"],
                1.0,
            )
        )
    return targets


def noise_target(ratio: dict, label: str) -> Target:
    """How far the copy of the unnormalized model reads from 1 in a run."""
    return Target(
        f"timer noise: |copy of the unnormalized step - 1|, {label}",
        abs(ratio["copy"] - 1),
        NOISE_LIMIT,
    )
