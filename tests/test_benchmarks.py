"""The benchmarks run end to end on tiny sizes; no test asserts a time."""

import json
import math
import os
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent


def _numbers(value):
    if isinstance(value, bool):
        return
    if isinstance(value, (int, float)):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _numbers(item)
    elif isinstance(value, list):
        for item in value:
            yield from _numbers(item)


# A minute and a half of subprocesses (one per memory case): run with -m slow,
# and by every regeneration of docs/benchmarks.md.
@pytest.mark.slow
def test_tiny_run_writes_finite_positive_results(tmp_path):
    json_path, docs_path = tmp_path / "tiny.json", tmp_path / "benchmarks.md"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks",
            "--tiny",
            "--json",
            str(json_path),
            "--docs",
            str(docs_path),
        ],
        cwd=ROOT,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
        check=True,
        capture_output=True,
        timeout=600,
    )
    results = json.loads(json_path.read_text())
    assert set(results["sections"]) == {
        "sn_cost",
        "pixel_norm",
        "sigma_accuracy",
        "rewrite_cost",
        "memory",
        "backends",
        "equalized_lr",
        "operator_norm",
    }
    assert {
        "CPU",
        "cores",
        "TensorFlow",
        "Keras 3",
        "tf-keras",
        "CPU used by other processes during the run",
    } <= set(results["machine"])
    for key, section in results["sections"].items():
        numbers = list(_numbers(section["data"]))
        assert numbers, key
        assert all(math.isfinite(n) and n >= 0 for n in numbers), key
        assert section["targets"], key
        for target in section["targets"]:
            # Timer noise can read 0; every other figure is a positive ratio.
            assert target["measured"] is None or target["measured"] >= 0, target
    timings = results["sections"]["sn_cost"]["data"]["keras3, batch 4"]["median_ms"]
    assert all(value > 0 for value in timings.values())
    page = docs_path.read_text()
    assert page.startswith("# Benchmarks")
    assert "## Machine" in page and "## 5. Peak memory" in page
    assert "## 7. Equalized learning rate" in page
    assert "## 8. The operator norm of convolutions" in page


def test_a_target_whose_limit_is_below_its_floor_reads_out_of_reach():
    from benchmarks.report import Target, markdown_table, targets_table

    beyond = Target("wrapper, batch 4", 1.289, 1.08, floor=1.142)
    reachable = Target("wrapper, batch 32", 1.060, 1.05, floor=1.020)
    met = Target("constraint, batch 32", 0.993, 1.02, floor=1.100)
    assert beyond.result == "missed, out of reach: floor 1.142"
    assert (reachable.result, met.result) == ("missed", "met")
    assert beyond.out_of_reach and not reachable.out_of_reach
    assert Target("no baseline", 1.3, 1.08).result == "missed"
    assert "Out of reach" in markdown_table(targets_table([met, beyond]))
    assert targets_table([met, reachable]).note == ""


def test_memory_reports_each_cases_median_peak_and_growth():
    from benchmarks.memory import _median_run

    runs = [
        {"before_mb": 800.0, "peak_mb": 1000.0},
        {"before_mb": 790.0, "peak_mb": 1060.0},
        {"before_mb": 810.0, "peak_mb": 1020.0},
    ]
    median = _median_run(runs)
    # Growths 200, 270 and 210: the median growth is of the runs' own
    # growths, not the median peak less the median start.
    assert (median["peak_mb"], median["growth_mb"]) == (1020.0, 210.0)
    assert median["runs"] == runs


@pytest.mark.parametrize("flavor", ["keras3", "tf_keras"])
def test_the_given_sigma_baseline_divides_by_sigma_and_differentiates_it(flavor):
    """The wrapper section 1 takes as the wrapper targets' floor computes
    `W / sigma(W)` with the gradient of SNGAN's Algorithm 1."""
    import numpy as np
    import tensorflow as tf

    from benchmarks import models

    keras = models.keras_of(flavor)
    keras.utils.set_random_seed(3)
    dense = keras.layers.Dense(5, name="dense")
    wrapper = models.given_sigma_wrapper(flavor)(dense)
    inputs = tf.constant(np.random.default_rng(0).standard_normal((2, 7)), tf.float32)
    with tf.GradientTape() as tape:
        outputs = wrapper(inputs)
        loss = tf.reduce_sum(outputs**2)
    gradient = tape.gradient(loss, dense.kernel)

    kernel = np.asarray(dense.kernel, np.float64)
    left, values, right = np.linalg.svd(kernel)
    bias = np.asarray(dense.bias, np.float64)
    expected = np.asarray(inputs, np.float64) @ (kernel / values[0]) + bias
    np.testing.assert_allclose(np.asarray(outputs), expected, rtol=1e-5, atol=1e-6)
    # d loss / d W for W / sigma(W) with sigma = u^T W v, u and v constant.
    upstream = np.asarray(inputs, np.float64).T @ (2 * expected)
    along = np.sum(upstream * kernel / values[0])
    outer = np.outer(left[:, 0], right[0])
    expected_gradient = (upstream - along * outer) / values[0]
    np.testing.assert_allclose(
        np.asarray(gradient), expected_gradient, rtol=1e-4, atol=1e-5
    )


@pytest.mark.parametrize("flavor", ["keras3", "tf_keras"])
def test_section_3_reads_the_kernel_pytorchs_wrapper_used(flavor):
    """Inside a traced step, the PyTorch-style wrapper's used kernel is
    W / (u^T W v) after one power iteration from its kept `u`."""
    import numpy as np
    import tensorflow as tf

    from benchmarks import models
    from benchmarks.sigma_accuracy import used_kernels

    keras = models.keras_of(flavor)
    keras.utils.set_random_seed(5)
    inputs = keras.Input((7,))
    wrapped = models.power_iteration_wrapper(flavor)(keras.layers.Dense(5))
    model = keras.Model(inputs, wrapped(inputs))
    start = np.asarray(wrapped.u, np.float64)[0]

    @tf.function
    def step(batch):
        model(batch, training=True)
        return used_kernels(model, "pytorch")

    (used,) = step(tf.ones((2, 7)))
    kernel = np.asarray(wrapped.layer.kernel, np.float64)
    v = kernel @ start
    v /= np.linalg.norm(v)
    u = v @ kernel
    u /= np.linalg.norm(u)
    np.testing.assert_allclose(np.asarray(used), kernel / (v @ kernel @ u), rtol=1e-5)
    np.testing.assert_allclose(np.asarray(wrapped.u)[0], u, rtol=1e-5)
