"""Sizes and step counts of the three run modes: full, quick and tiny."""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class Config:
    """What one run measures, and how long.

    Attributes:
        mode: `"full"`, `"quick"` or `"tiny"`.
        flavors: The Kerases compared: `"keras3"`, `"tf_keras"`.
        image_size: Height and width of the discriminator's images and the
            generator's output.
        batch: Images per batch (real and fake batches each).
        small_batch: Images per batch of the step-cost section's second
            run, where a step's fixed costs show.
        discriminator_widths: Filters of the discriminator's convolutions.
        generator_widths: Filters per resolution of the generator.
        latent: The generator's latent size.
        steps: Timed train steps per variant (a median is taken).
        warmup: Untimed steps per variant first.
        op_shape: The tensor the PixelNorm op is timed on.
        op_runs: Timed forward+backward runs of the op per variant.
        op_smaller_shapes: Smaller tensors the op and LeakyReLU are also
            timed on, to show whether the ratio depends on the tensor
            fitting in the CPU's caches.
        accuracy_steps: Training steps followed in the sigma accuracy section.
        trade_offs: Labels of the kerasnorm options on the trade-off curve
            (keys of `benchmarks.sigma_accuracy.TRADE_OFFS`); none, no curve.
        applications: `keras.applications` models rewritten.
        chain_lengths: Lengths of the Dense chains rewritten.
        generator_chain_lengths: Activations of the generator chains the
            `progan` policy rewrites (one PixelNorm inserted after each).
        rewrite_runs: Timed rewrites per model and variant.
        insertion_runs: Timed rewrites per generator chain and variant.
        memory_model: The model of the memory section's rewrite: an
            application name, or `"chain"` (the longest chain).
        memory_steps: Train steps of the memory section's training run.
        memory_runs: Fresh processes per memory case; the section reports
            the median peak (one process's peak varies by tens of MB).
        gan_steps: Steps of the demo's GAN trained with and without
            equalized learning rate.
    """

    mode: str
    flavors: tuple[str, ...]
    image_size: int
    batch: int
    small_batch: int
    discriminator_widths: tuple[int, ...]
    generator_widths: tuple[int, ...]
    latent: int
    steps: int
    warmup: int
    op_shape: tuple[int, ...]
    op_runs: int
    op_smaller_shapes: tuple[tuple[int, ...], ...]
    accuracy_steps: int
    trade_offs: tuple[str, ...]
    applications: tuple[str, ...]
    chain_lengths: tuple[int, ...]
    generator_chain_lengths: tuple[int, ...]
    rewrite_runs: int
    insertion_runs: int
    memory_model: str
    memory_steps: int
    memory_runs: int
    gan_steps: int


FULL = Config(
    mode="full",
    flavors=("keras3", "tf_keras"),
    image_size=64,
    batch=32,
    small_batch=4,
    discriminator_widths=(64, 128, 256, 512),
    generator_widths=(256, 256, 128, 64, 32),
    latent=128,
    steps=50,
    warmup=3,
    op_shape=(32, 64, 64, 128),
    op_runs=30,
    op_smaller_shapes=((4, 32, 32, 128), (32, 32, 32, 128)),
    accuracy_steps=100,
    trade_offs=(
        "n_iter=1, tol=None",
        "n_iter=4, tol=None",
        "tol=1e-2",
        "tol=5e-3 (default)",
        "tol=3e-3",
        "tol=1e-3",
        "tol=1e-4, max_iter=24",
        "block_size=1",
        "wrapper, block_size=2",
        "wrapper, block_size=4",
        "wrapper, block_size=8 (default)",
        "wrapper, tol=1e-3",
        "wrapper, tol=3e-4",
    ),
    applications=("ResNet50", "EfficientNetB0"),
    chain_lengths=(250, 500, 1000),
    generator_chain_lengths=(250, 500, 1000),
    # A rewrite of 500 layers varied from 1.6 s to 2.1 s between rounds:
    # nine rounds resolve a ratio to a few hundredths.
    rewrite_runs=9,
    # A round of the three chains takes about 16 s on Keras 3, 35 s on tf-keras.
    insertion_runs=5,
    memory_model="ResNet50",
    memory_steps=100,
    memory_runs=3,
    gan_steps=400,
)

QUICK = Config(
    mode="quick",
    # One Keras: building and tracing every variant twice would not fit in
    # two minutes.
    flavors=("keras3",),
    image_size=32,
    batch=16,
    small_batch=4,
    discriminator_widths=(64, 128, 256),
    generator_widths=(128, 128, 64, 32),
    latent=128,
    steps=10,
    warmup=2,
    op_shape=(16, 32, 32, 128),
    op_runs=10,
    op_smaller_shapes=((4, 32, 32, 128),),
    accuracy_steps=10,
    # The trade-off curve and the applications are left to the full run.
    trade_offs=(),
    applications=(),
    chain_lengths=(100, 200),
    generator_chain_lengths=(100, 200),
    rewrite_runs=2,
    insertion_runs=2,
    memory_model="chain",
    memory_steps=20,
    memory_runs=3,
    gan_steps=60,
)

TINY = Config(
    mode="tiny",
    flavors=("keras3",),
    image_size=16,
    batch=4,
    small_batch=2,
    discriminator_widths=(8, 16),
    generator_widths=(16, 16, 8),
    latent=16,
    steps=2,
    warmup=1,
    op_shape=(4, 8, 8, 16),
    op_runs=2,
    op_smaller_shapes=((2, 4, 4, 16),),
    accuracy_steps=3,
    trade_offs=("tol=1e-3",),
    applications=(),
    chain_lengths=(10, 20),
    generator_chain_lengths=(10, 20),
    rewrite_runs=1,
    insertion_runs=1,
    memory_model="chain",
    memory_steps=3,
    memory_runs=1,
    gan_steps=4,
)

CONFIGS = {config.mode: config for config in (FULL, QUICK, TINY)}
