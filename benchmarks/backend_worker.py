"""One backend's SN step cost and sigma, measured in a process of its own.

    KERAS_BACKEND=jax python -m benchmarks.backend_worker MODE OUT.json

Keras 3 fixes its backend at import, so `benchmarks.backends` runs this
module once per backend. Every variant trains with `train_on_batch`, which
each backend compiles as it compiles `fit` (jit on JAX, `tf.function` on
TensorFlow, eager on PyTorch): the same code everywhere.
"""

from __future__ import annotations

import json
import sys
import warnings

import keras
import numpy as np

import kerasnorm
from benchmarks import models
from benchmarks.config import CONFIGS, Config
from benchmarks.timing import ratios, time_interleaved

VARIANTS = {
    "none": "no normalization",
    "copy": "no normalization, a second model (the timer's noise)",
    "constraint": "kerasnorm SpectralNorm constraint (defaults)",
    "reparam": "kerasnorm SpectralNormalization wrapper (defaults)",
    "keras": "Keras's SpectralNormalization wrapper",
}


def _discriminator(variant: str, config: Config):
    build = dict(
        flavor="keras3", size=config.image_size, widths=config.discriminator_widths
    )
    if variant == "keras":
        return models.dcgan_discriminator(
            **build, wrapper=keras.layers.SpectralNormalization
        )
    plain = models.dcgan_discriminator(**build)
    if variant in ("none", "copy"):
        return plain
    return kerasnorm.apply_normalization(
        plain, "sngan", role="discriminator", mode=variant
    )


def _largest_sigma_error(model) -> float:
    """max |sigma - 1| over the normalized kernels, by SVD in float64."""
    errors = []
    for layer in model.layers:
        if isinstance(layer, keras.layers.SpectralNormalization):
            kernel = keras.ops.convert_to_numpy(layer.layer.kernel)
            matrix = kernel.reshape(-1, kernel.shape[-1]).astype(np.float64)
            errors.append(abs(np.linalg.svd(matrix, compute_uv=False)[0] - 1))
    errors += [
        abs(s - 1) for s in kerasnorm.callbacks.normalized_sigmas(model).values()
    ]
    return max(errors)


def measure(config: Config) -> dict:
    real = models.real_images(config.batch, config.image_size)
    fake = models.fake_images(config.batch, config.image_size)
    images = np.concatenate([real, fake])
    labels = np.concatenate([np.ones((config.batch, 1)), np.zeros((config.batch, 1))])
    trained, steps = {}, {}
    for variant in VARIANTS:
        model = _discriminator(variant, config)
        model.compile(
            optimizer=keras.optimizers.Adam(2e-4, beta_1=0.5),
            loss=keras.losses.BinaryCrossentropy(from_logits=True),
        )
        trained[variant] = model
        steps[variant] = lambda model=model: model.train_on_batch(images, labels)
    with warnings.catch_warnings():
        # JAX's fit does not carry the constraint's state: the figure shows
        # what that costs, the warning is known.
        warnings.simplefilter("ignore", UserWarning)
        timings = time_interleaved(steps, config.steps, config.warmup)
    return {
        "backend": keras.backend.backend(),
        "median_ms": {name: 1e3 * t.median for name, t in timings.items()},
        "ratio": ratios(timings, "none"),
        "sigma_error": {
            name: _largest_sigma_error(model)
            for name, model in trained.items()
            if name not in ("none", "copy")
        },
    }


if __name__ == "__main__":
    mode, out = sys.argv[1:3]
    with open(out, "w") as file:
        json.dump(measure(CONFIGS[mode]), file)
