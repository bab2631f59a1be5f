"""Tracking sigma, against NumPy's SVD; backend-neutral (see tests/backend.py)."""

import backend
import numpy as np
import pytest
from backend import numpy as as_numpy
from backend import tensor
from keras import ops as kops

from kerasnorm.ops import layouts
from kerasnorm.ops import sigma as ops


def _svd(matrix):
    return np.linalg.svd(np.asarray(matrix, np.float64), full_matrices=False)


def _with_singular_values(rows, values, seed=0):
    rng = np.random.default_rng(seed)
    left, _ = np.linalg.qr(rng.normal(size=(rows, len(values))))
    right, _ = np.linalg.qr(rng.normal(size=(len(values), len(values))))
    return ((left * np.asarray(values)) @ right.T).astype("float32"), right


@pytest.mark.parametrize("shape", [(64, 32), (20, 50), (576, 64), (7, 1), (1, 9)])
def test_warm_start_is_the_exact_top_singular_block(shape):
    matrix = np.random.default_rng(1).normal(size=shape).astype("float32")
    state = as_numpy(ops.warm_start(tensor(matrix), block=2))
    _, _, vt = _svd(matrix)
    block = ops.block_size(*shape, 2)
    assert state.shape == (block, shape[1])
    # Same subspace as the top singular vectors, up to sign.
    np.testing.assert_allclose(
        np.abs(np.sum(state * vt[:block], axis=1)), 1.0, atol=1e-5
    )


def test_warm_start_of_a_rank_one_matrix_zeroes_the_second_row():
    matrix = np.outer(np.arange(1.0, 6.0), np.arange(1.0, 4.0)).astype("float32")
    state = as_numpy(ops.warm_start(tensor(matrix), block=2))
    np.testing.assert_allclose(np.linalg.norm(state[0]), 1.0, rtol=1e-6)
    np.testing.assert_array_equal(state[1], 0.0)


@pytest.mark.parametrize("shape", [(300, 40), (40, 300), (1000, 64)])
def test_track_from_a_random_start_converges_to_sigma(shape):
    matrix = np.random.default_rng(2).normal(size=shape).astype("float32")
    start = ops.initial_state(shape[1], 2)
    estimate = ops.track(tensor(matrix), start, n_iter=1, tol=1e-5, max_iter=40)
    sigma = _svd(matrix)[1][0]
    np.testing.assert_allclose(float(estimate.sigma), sigma, rtol=1e-5)
    u, v = as_numpy(estimate.u), as_numpy(estimate.v)
    np.testing.assert_allclose([np.linalg.norm(u), np.linalg.norm(v)], 1.0, rtol=1e-5)
    np.testing.assert_allclose(u @ matrix @ v, float(estimate.sigma), rtol=1e-5)
    state = as_numpy(estimate.state)
    np.testing.assert_allclose(state @ state.T, np.eye(2), atol=1e-5)


def test_fixed_mode_runs_exactly_n_iter_and_adaptive_mode_stops_early():
    matrix, _ = _with_singular_values(50, [5.0, 1.0, 0.5, 0.1])
    state = ops.warm_start(tensor(matrix))
    assert int(ops.track(tensor(matrix), state, n_iter=3, tol=None).iterations) == 3
    easy = ops.track(tensor(matrix), state, n_iter=1, tol=1e-3, max_iter=6)
    assert int(easy.iterations) == 1
    rng = np.random.default_rng(3)
    hard = rng.normal(size=(2000, 300)).astype("float32")
    state = ops.initial_state(300, 2)
    assert int(ops.track(tensor(hard), state, 1, tol=1e-6, max_iter=6).iterations) == 6


def test_a_small_matrix_is_exact_once_the_krylov_space_is_full():
    matrix = np.random.default_rng(4).normal(size=(8, 6)).astype("float32")
    estimate = ops.track(tensor(matrix), ops.initial_state(6, 2), n_iter=3, tol=None)
    np.testing.assert_allclose(float(estimate.sigma), _svd(matrix)[1][0], rtol=1e-5)


def test_block_tracking_catches_a_direction_that_overtakes():
    # sigma_2 grows past sigma_1 in one step: the tracked top vector is now
    # the second one. One vector and one iteration (SNGAN) stays on the old
    # direction; the tracked block already holds the new one.
    before, right = _with_singular_values(200, [1.0, 0.99, 0.5, 0.4, 0.3, 0.2])
    after = before @ right @ np.diag([1.0, 1.03, 1, 1, 1, 1]) @ right.T
    after = after.astype("float32")
    true = _svd(after)[1][0]
    state = ops.warm_start(tensor(before))
    block = ops.track(tensor(after), state, n_iter=1, tol=None)
    single = ops.track(tensor(after), state[:1], n_iter=1, tol=None)
    assert abs(float(block.sigma) / true - 1) < 1e-5
    assert abs(float(single.sigma) / true - 1) > 1e-3


def test_zero_matrix_and_zero_state():
    zero = ops.track(
        tensor(np.zeros((6, 4), "float32")), ops.initial_state(4, 2), n_iter=2, tol=1e-3
    )
    assert float(zero.sigma) == 0.0
    assert np.all(np.isfinite(as_numpy(zero.u))) and np.all(
        np.isfinite(as_numpy(zero.state))
    )
    np.testing.assert_array_equal(as_numpy(zero.state), 0.0)
    matrix = np.random.default_rng(5).normal(size=(6, 4)).astype("float32")
    revived = ops.track(tensor(matrix), zero.state, n_iter=3, tol=None)
    np.testing.assert_allclose(float(revived.sigma), _svd(matrix)[1][0], rtol=1e-5)


def test_right_estimate_is_at_least_the_tracked_sigma():
    matrix = np.random.default_rng(6).normal(size=(100, 30)).astype("float32")
    estimate = ops.track(tensor(matrix), ops.initial_state(30, 2), 1, None)
    u, sigma = ops.right_estimate(tensor(matrix), estimate.v)
    assert float(sigma) >= float(estimate.sigma) * (1 - 1e-6)
    np.testing.assert_allclose(np.linalg.norm(as_numpy(u)), 1.0, rtol=1e-6)


@pytest.mark.skipif(
    not backend.float64_available(), reason="compared in float64, off on this backend"
)
@pytest.mark.parametrize(
    "shape, layout",
    [((6, 4), "dense"), ((3, 3, 5, 4), "transpose"), ((3, 3, 2, 3), "depthwise")],
)
def test_divide_by_sigma_has_the_gradient_of_w_over_u_m_v(shape, layout):
    rng = np.random.default_rng(7)
    kernel = rng.normal(size=shape)
    upstream = tensor(rng.normal(size=shape))
    matrix = layouts.kernel_matrix(tensor(kernel), layout)
    estimate = ops.track(
        matrix, ops.initial_state(matrix.shape[1], 2, "float64"), 6, None
    )
    u, v = estimate.u, estimate.v

    def by_definition(kernel):
        # Autodiff of sigma = u M v, u and v constant.
        sigma = kops.sum(u * kops.matmul(layouts.kernel_matrix(kernel, layout), v))
        return kops.sum(upstream * kernel / sigma)

    def ours(kernel):
        return kops.sum(
            upstream * ops.divide_by_sigma(kernel, estimate.sigma, u, v, layout)
        )

    sigma = float(estimate.sigma)
    divided = ops.divide_by_sigma(tensor(kernel), estimate.sigma, u, v, layout)
    np.testing.assert_allclose(as_numpy(divided), kernel / sigma, rtol=1e-10)
    np.testing.assert_allclose(
        backend.gradient(ours, kernel),
        backend.gradient(by_definition, kernel),
        rtol=1e-9,
        atol=1e-12,
    )
    np.testing.assert_allclose(sigma, _svd(as_numpy(matrix))[1][0], rtol=1e-10)


def test_divide_by_sigma_leaves_a_zero_kernel_and_its_gradient():
    zero = np.zeros((4, 3), "float32")

    def divided_sum(kernel):
        return kops.sum(
            ops.divide_by_sigma(
                kernel,
                tensor(0.0, "float32"),
                tensor(np.zeros(4, "float32")),
                tensor(np.zeros(3, "float32")),
            )
        )

    divided = ops.divide_by_sigma(
        tensor(zero),
        tensor(0.0, "float32"),
        tensor(np.zeros(4, "float32")),
        tensor(np.zeros(3, "float32")),
    )
    np.testing.assert_array_equal(as_numpy(divided), 0.0)
    np.testing.assert_array_equal(backend.gradient(divided_sum, zero), 1.0)


def test_track_runs_compiled():
    matrix = np.random.default_rng(8).normal(size=(64, 16)).astype("float32")
    traced = backend.compiled(lambda m, s: ops.track(m, s, 1, 3e-3, 6))
    estimate = traced(tensor(matrix), ops.initial_state(16, 2))
    np.testing.assert_allclose(float(estimate.sigma), _svd(matrix)[1][0], rtol=1e-3)


def test_estimate_says_whether_it_converged():
    rng = np.random.default_rng(9)
    hard = rng.normal(size=(2000, 300)).astype("float32")
    estimate = ops.track(tensor(hard), ops.initial_state(300, 2), 1, 1e-6, 2)
    assert not bool(estimate.converged)
    easy, _ = _with_singular_values(50, [5.0, 1.0, 0.5])
    estimate = ops.track(tensor(easy), ops.warm_start(tensor(easy)), 1, 1e-3, 2)
    assert bool(estimate.converged)
