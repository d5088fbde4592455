"""Tests of adamlab.analysis.convergence: Theorem 4.1's bound, the lemmas, Γ_t, online problems."""

import math

import numpy as np
import pytest

from _blas_bounds import assert_within, gamma, product_bound
from adamlab.analysis.convergence import (
    OnlineLeastSquares,
    OnlineLogistic,
    best_fixed,
    gamma_increments,
    lane_search,
    lemma103_sides,
    lemma104_sides,
    run_online,
    running_diameter,
    telescoping_check,
    theorem41_bound,
)
from adamlab.optim import Adam, inverse_sqrt

# ----------------------------------------------------------------------------- Theorem 4.1


def test_bound_terms_on_a_hand_computed_case():
    # d = 1, T = 2: g = (1, -2), played points (0, 0.5), comparator -0.5;
    # alpha = 0.5, beta1 = 0.5, beta2 = 0.25, lambda = 0.5.
    grads = np.array([[1.0], [-2.0]])
    points = np.array([[0.0], [0.5]])
    b = theorem41_bound(grads, points, [[-0.5]], [2], 0.5, 0.5, 0.25, 0.5)
    # by hand: G = G∞ = 2; D = D∞ = 1 (from -0.5 to 0.5); gamma = 0.25/0.5 = 0.5
    # v_1 = 0.75, v_2 = 0.25·0.75 + 0.75·4 = 3.1875, v̂_2 = 3.1875/(1 - 0.0625) = 3.4
    assert b.G[0] == 2 and b.G_inf[0] == 2 and b.D[0] == 1 and b.D_inf[0] == 1 and b.gamma == 0.5
    term1 = 1 / (2 * 0.5 * 0.5) * math.sqrt(2 * 3.4)
    term2 = 0.5 * 1.5 * 2 / (0.5 * math.sqrt(0.75) * 0.25) * math.sqrt(5)
    term3 = 1 * 2 * math.sqrt(0.75) / (2 * 0.5 * 0.5 * 0.25)
    np.testing.assert_allclose([b.term1[0], b.term2[0], b.term3[0]], [term1, term2, term3], rtol=1e-14)
    np.testing.assert_allclose(b.total[0], term1 + term2 + term3, rtol=1e-14)


def test_bound_uses_only_the_history_up_to_each_horizon():
    grads = np.array([[1.0, 0.0], [-2.0, 3.0], [0.5, 0.5]])
    points = np.array([[0.0, 0.0], [0.5, 0.0], [0.5, 2.0]])
    stars = np.zeros((2, 2))
    b = theorem41_bound(grads, points, stars, [1, 2], 0.1, 0.9, 0.999, 0.9)
    np.testing.assert_allclose(b.G, [1.0, math.sqrt(13)])
    np.testing.assert_allclose(b.G_inf, [1.0, 3.0])
    np.testing.assert_allclose(b.D, [0.0, 0.5])  # the point (0.5, 2) comes at T = 3
    b3 = theorem41_bound(grads, points, [[0.0, 0.0]], [3], 0.1, 0.9, 0.999, 0.9)
    np.testing.assert_allclose(b3.D, [math.hypot(0.5, 2.0)])
    np.testing.assert_allclose(b3.D_inf, [2.0])


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"beta1": 0.9, "beta2": 0.5}, "gamma = beta1\\*\\*2/sqrt\\(beta2\\) < 1, got 1.14551"),
        ({"lam": 1.0}, "lam must be in \\(0, 1\\), got 1.0"),
        ({"alpha": 0.0}, "alpha must be > 0, got 0.0"),
        ({"Ts": [4]}, "every horizon in Ts must be an integer in \\[1, 3\\]"),
        ({"beta2": 1.0}, "need beta1 in \\[0, 1\\) and beta2 in \\(0, 1\\)"),
    ],
)
def test_bound_errors_name_the_culprit(kwargs, message):
    args = {"Ts": [3], "alpha": 0.1, "beta1": 0.5, "beta2": 0.999, "lam": 0.5} | kwargs
    grads = points = np.ones((3, 2))
    with pytest.raises(ValueError, match=message):
        theorem41_bound(grads, points, np.zeros((1, 2)), args["Ts"], args["alpha"], args["beta1"],
                        args["beta2"], args["lam"])


def test_bound_shape_mismatch():
    with pytest.raises(ValueError, match="both be \\(T, d\\)"):
        theorem41_bound(np.ones((3, 2)), np.ones((3, 1)), [[0.0]], [1], 0.1, 0.5, 0.9, 0.5)


def test_running_diameter_against_brute_force():
    P = np.random.default_rng(2).normal(size=(120, 3))
    D = running_diameter(P)
    brute = [np.linalg.norm(P[:t, None] - P[None, :t], axis=2).max() for t in range(1, 121)]
    np.testing.assert_allclose(D, brute, rtol=1e-10, atol=1e-12)
    np.testing.assert_array_equal(running_diameter(np.array([0.0, 2.0, -1.0, 0.5])), [0, 2, 3, 3])


# ----------------------------------------------------------------------------- lemmas


def test_lemma103_hand_cases():
    lhs, rhs = lemma103_sides([0.25])  # T = 1, G∞ = 0.25: lhs 0.25 > rhs 2·0.25·0.25
    np.testing.assert_allclose([lhs[0], rhs[0]], [0.25, 0.125])
    g = 1 / np.sqrt(np.arange(1, 32))  # G∞ = 1: lhs = H_T, rhs = 2√H_T; violated iff H_T > 4, first at T = 31
    lhs31, rhs31 = lemma103_sides(g)
    lhs30, rhs30 = lemma103_sides(g[:30])
    assert lhs31[0] > rhs31[0] and lhs30[0] < rhs30[0]
    np.testing.assert_allclose(lhs31[0], sum(1 / t for t in range(1, 32)), rtol=1e-14)
    with pytest.raises(ValueError, match="G_inf is smaller than max"):
        lemma103_sides([2.0], G_inf=1.0)


def test_lemma103_lanes_and_coordinates():
    g = np.zeros((2, 2, 3))
    g[:, 0, :] = 1.0
    g[:, 1, :] = [[0.5], [0.0]]
    lhs, rhs = lemma103_sides(g)
    assert lhs.shape == (2, 3)
    np.testing.assert_allclose(lhs[:, 0], [1 + 1 / math.sqrt(2), 0.5])
    np.testing.assert_allclose(rhs[:, 0], [2 * math.sqrt(2), 2 * 0.5])  # G∞ = 1 is shared by coordinates


def _lemma104_loop(g, beta1, beta2):
    m = v = lhs = 0.0
    for t, gt in enumerate(g, start=1):
        m = beta1 * m + (1 - beta1) * gt
        v = beta2 * v + (1 - beta2) * gt**2
        m_hat, v_hat = m / (1 - beta1**t), v / (1 - beta2**t)
        lhs += m_hat**2 / math.sqrt(t * v_hat)
    gamma = beta1**2 / math.sqrt(beta2)
    return lhs, 2 / (1 - gamma) / math.sqrt(1 - beta2) * math.sqrt(sum(x * x for x in g))


def test_lemma104_against_a_plain_loop():
    rng = np.random.default_rng(4)
    for beta1, beta2 in [(0.0, 0.5), (0.9, 0.999), (0.3, 0.02)]:
        g = rng.normal(size=40)
        lhs, rhs = lemma104_sides(g, beta1, beta2)
        np.testing.assert_allclose([lhs[0], rhs[0]], _lemma104_loop(g, beta1, beta2), rtol=1e-11)


def test_lemma104_counterexample_and_errors():
    g = 1 / np.sqrt(np.arange(1, 32))
    lhs, rhs = lemma104_sides(g, 0.0, 1e-6)
    assert lhs[0] > rhs[0]
    lhs, rhs = lemma104_sides(np.array([0.0, 1.0]), 0.5, 0.9)  # a zero first gradient adds 0, not nan
    assert np.isfinite(lhs[0])
    with pytest.raises(ValueError, match="gamma = beta1\\*\\*2/sqrt\\(beta2\\) < 1"):
        lemma104_sides(g, 0.9, 0.25)
    with pytest.raises(ValueError, match="must be finite"):
        lemma104_sides([np.nan], 0.0, 0.5)


def test_lane_search_climbs():
    rng = np.random.default_rng(0)
    target = np.array([[0.2], [0.7]])
    x, best, n = lane_search(lambda x: -np.sum((x - target) ** 2, axis=0), rng.random((2, 8)), 200, rng)
    assert n == 201 and best.max() > -1e-6
    np.testing.assert_allclose(x[:, np.argmax(best)], target[:, 0], atol=1e-3)


# ----------------------------------------------------------------------------- Γ_t and the telescoping


def test_gamma_increments_hand_case():
    gam = gamma_increments(np.array([1.0, 0.25, 1.0]), alpha=1.0)
    np.testing.assert_allclose(gam, [math.sqrt(0.5) - 1, math.sqrt(3) - math.sqrt(0.5)])
    with pytest.raises(ValueError, match="at least two steps"):
        gamma_increments(np.array([1.0]), 1.0)


def test_telescoping_holds_when_gamma_is_nonnegative_and_can_fail_otherwise():
    v_up = np.array([1.0, 1.0, 2.0, 3.0])
    res = telescoping_check(np.array([0.0, 1.0, -1.0, 0.5]), 0.0, v_up, 1.0)
    assert res["negative_fraction"] == 0 and res["S"] <= res["B"] + 1e-12
    np.testing.assert_allclose(res["B"], 2.0**2 * math.sqrt(4 * 3.0))  # D∞ = 2: the points span [-1, 1]
    # Γ_2 < 0 while the iterate is far from θ*, Γ_3 > 0 while it sits on θ*: S exceeds the telescoped B
    res = telescoping_check(np.array([1.0, 1.0, 0.0]), 0.0, np.array([1.0, 0.01, 1.0]), 1.0)
    # S = 1·1 + 1·(√0.02 − 1) + 0; B = 1·√3
    np.testing.assert_allclose(res["S"], math.sqrt(0.02))
    assert res["S"] < res["B"]
    res = telescoping_check(np.array([1.0, 1.0, 0.0]), 0.0, np.array([1.0, 4.0, 0.01]), 1.0)
    # Γ_2 = √8 − 1 > 0 while (θ − θ*)² = 1, Γ_3 = √0.03 − √8 < 0 while θ = θ*:
    # S = 1 + (√8 − 1) + 0 = √8 exceeds the telescoped B = 1·√0.03, not B⁺ = 1 + (√8 − 1)
    np.testing.assert_allclose(res["S"], math.sqrt(8))
    np.testing.assert_allclose(res["B"], math.sqrt(0.03))
    np.testing.assert_allclose(res["B_plus"], math.sqrt(8))
    assert res["S"] > res["B"] and res["negative_fraction"] == 0.5


# ----------------------------------------------------------------------------- online problems


def _data(T=200, d=3, seed=0):
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(T, d))
    y = np.where(rng.random(T) < 0.5, 1.0, -1.0)
    return A, y


@pytest.mark.parametrize("cls", [OnlineLogistic, OnlineLeastSquares])
def test_online_gradients_by_finite_differences(cls):
    A, y = _data()
    P = cls(A, y, -1.0, 1.0)
    theta = np.array([0.3, -0.2, 0.7])
    for t in (1, 17, 200):
        fd = [(P.loss(theta + h, t) - P.loss(theta - h, t)) / 2e-6 for h in 1e-6 * np.eye(3)]
        np.testing.assert_allclose(P.grad(theta, t), fd, rtol=1e-6, atol=1e-9)
    f, grad = P.total(theta, 50)
    np.testing.assert_allclose(f, sum(P.loss(theta, t) for t in range(1, 51)), rtol=1e-12)
    # Σ_t ℓ'(a_t·θ)·a_t cancels: each z_t = a_t·θ (a GEMV against one dot each) is within δ_t,
    # ℓ' is 1-Lipschitz and rounds within a few units, the sums of 50 terms within γ_51.
    A50 = A[:50]
    z = A50 @ theta
    dl = np.abs(P._dell(z, P.y[:50]))  # |ℓ'(z_t)|
    per_t = 2 * product_bound(A50, theta, bias=P.y[:50]) + 2 * gamma(8) * (dl + np.abs(z))
    assert_within(grad, sum(P.grad(theta, t) for t in range(1, 51)),
                  np.abs(A50).T @ per_t + gamma(53) * (np.abs(A50).T @ dl), computations=2)


def test_run_online_projects_and_best_fixed_satisfies_kkt():
    A, _ = _data(T=300)
    P = OnlineLeastSquares(A, A @ np.array([2.0, -0.3, 0.1]), -0.5, 0.5)  # the box binds in θ_1
    points, grads, losses = run_online(Adam(lr=inverse_sqrt(0.5)), P, np.zeros(3), 300)
    assert np.all(np.abs(points) <= 0.5) and np.any(np.abs(points) == 0.5)
    np.testing.assert_allclose(grads[10], P.grad(points[10], 11))
    np.testing.assert_allclose(losses[10], P.loss(points[10], 11))
    theta, value = best_fixed(P, 300)
    _, grad = P.total(theta, 300)
    for i in range(3):  # projected-gradient optimality on the box
        if theta[i] <= -0.5 + 1e-9:
            assert grad[i] >= -1e-6
        elif theta[i] >= 0.5 - 1e-9:
            assert grad[i] <= 1e-6
        else:
            assert abs(grad[i]) < 1e-6
    assert np.any(np.abs(theta) == 0.5)
    assert value <= P.total(np.zeros(3), 300)[0]


def test_online_problem_errors():
    A, y = _data()
    with pytest.raises(ValueError, match="labels y must be -1 or \\+1"):
        OnlineLogistic(A, np.zeros(200), -1, 1)
    with pytest.raises(ValueError, match="A must be \\(T, d\\) and y \\(T,\\)"):
        OnlineLogistic(A, y[:10], -1, 1)
    with pytest.raises(ValueError, match="lo < hi"):
        OnlineLeastSquares(A, y, 1, 1)
    P = OnlineLeastSquares(A, y, -1, 1)
    with pytest.raises(ValueError, match="theta0 must lie in the box"):
        run_online(Adam(), P, np.full(3, 2.0), 10)
    with pytest.raises(ValueError, match="theta0 must have shape \\(3,\\)"):
        run_online(Adam(), P, np.zeros(2), 10)
    with pytest.raises(ValueError, match="T must be an integer in \\[1, 200\\]"):
        best_fixed(P, 201)


def test_lemma104_cannot_fail_with_beta1_zero_before_t31():
    # β1 = 0: m̂_t = g_t and v̂_t ≥ (1 − β2)·g_t², so lhs ≤ Σ|g_t|/√(t(1 − β2)) ≤ √H_T·‖g‖/√(1 − β2)
    # = (√H_T/2)·rhs, below rhs exactly while H_T < 4, i.e. T ≤ 30; the ratio of 1/√t comes closest.
    rng = np.random.default_rng(11)
    for T in (1, 5, 30):
        H = sum(1 / t for t in range(1, T + 1))
        g = rng.normal(size=(T, 1, 200)) * (rng.random((T, 1, 200)) < 0.7)
        g[0, 0, np.all(g[:, 0] == 0, axis=0)] = 1.0
        beta2 = 10.0 ** -rng.uniform(0, 12, size=200)
        lhs, rhs = lemma104_sides(g, 0.0, np.minimum(beta2, 0.999))
        assert np.all(lhs / rhs <= math.sqrt(H) / 2 * (1 + 1e-12))
    worst = lemma104_sides(1 / np.sqrt(np.arange(1, 31)), 0.0, 1e-12)
    assert 0.999 < worst[0][0] / worst[1][0] < 1


def test_theorem41_bound_fails_on_reddi_problem_with_decaying_beta1():
    # all assumptions hold with a non-trivial β1,t = 0.3·0.5^(t−1) (γ ≈ 0.28); the regret grows like 2T/3
    from adamlab.analysis.reddi import fast_linear_run, linear_regret, reddi_gradients

    T = 5000
    g = reddi_gradients(T, 3.0)
    x = fast_linear_run(Adam(lr=inverse_sqrt(0.5), beta1=0.3, beta2=0.1, beta1_decay=0.5), g, 0.0)
    star = [[-1.0 if g.sum() > 0 else 1.0]]
    bound = theorem41_bound(g[:, None], x[:, None], star, [T], 0.5, 0.3, 0.1, 0.5)
    assert bound.gamma < 1 and x[-1] > 0.99
    assert linear_regret(g, x)[-1] > 1.5 * bound.total[0]
