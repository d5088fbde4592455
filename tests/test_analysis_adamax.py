"""adamlab.analysis.adamax: the exact supremum of AdaMax's step and the Lp → L∞ limit (§7.1)."""

import math

import numpy as np
import pytest

from adamlab.analysis.adamax import adamax_steps as library_adamax_steps
from adamlab.analysis.adamax import (adamax_u, adversarial_search, attaining_history, lp_ratio_bounds,
                                     lp_u_log, lp_u_naive, step_ratio, sup_step, sup_step_limit)
from adamlab.optim import AdaMax, Adam

BETAS = [(0.9, 0.999), (0.9, 0.99), (0.99, 0.999), (0.5, 0.9), (0.9, 0.5), (0.999, 0.999), (0.0, 0.9)]


def adamax_steps(grads, beta1, beta2, lr=1.0):
    """|Δ_t|/α of adamlab.optim.AdaMax for each step of a (t, n) gradient history."""
    opt = AdaMax(lr=lr, beta1=beta1, beta2=beta2)
    params = {"x": np.zeros(grads.shape[1:])}
    steps = []
    for g in grads:
        before = params["x"].copy()
        opt.update(params, {"x": g.copy()})
        steps.append(np.abs(params["x"] - before) / lr)
    return np.array(steps)


def brute_sup(beta1, beta2, t):
    return sum((1 - beta1) * (beta1 / beta2) ** k for k in range(t)) / (1 - beta1**t)


@pytest.mark.parametrize("beta1, beta2", BETAS)
def test_closed_form_equals_the_sum_it_came_from(beta1, beta2):
    for t in (1, 2, 3, 10, 57, 300):
        assert sup_step(beta1, beta2, t) == pytest.approx(brute_sup(beta1, beta2, t), rel=1e-12)


@pytest.mark.parametrize("beta1, beta2", BETAS)
def test_attaining_history_reaches_the_supremum_in_adamax(beta1, beta2):
    for t in (1, 2, 5, 40, 300):
        g = attaining_history(beta2, t)
        assert g[-1] == 1.0 and np.all(np.diff(g) < 0)  # shrinking by β2 per step
        measured = adamax_steps(g[:, None], beta1, beta2, lr=0.37)[-1, 0]
        assert measured == pytest.approx(sup_step(beta1, beta2, t), rel=1e-12)
        assert step_ratio(g, beta1, beta2) == pytest.approx(sup_step(beta1, beta2, t), rel=1e-12)


@pytest.mark.parametrize("beta1, beta2", BETAS)
def test_no_history_exceeds_the_supremum(beta1, beta2):
    rng = np.random.default_rng(11)
    for t in (1, 2, 3, 8, 30):
        g = rng.normal(size=(t, 2000)) * 10.0 ** rng.uniform(-4, 4, size=(t, 2000))
        g[:, :500] = np.abs(g[:, :500]) * beta2 ** -np.arange(t - 1, -1, -1.0)[:, None]  # near-extremal
        bound = sup_step(beta1, beta2, t)
        assert np.all(step_ratio(g, beta1, beta2) <= bound * (1 + 1e-12))
        assert np.all(adamax_steps(g[:, :200], beta1, beta2)[-1] <= bound * (1 + 1e-12))


def test_library_adamax_steps_are_the_optimizers_steps():
    rng = np.random.default_rng(21)
    g = rng.normal(size=(60, 5)) * 10.0 ** rng.uniform(-3, 3, size=5)
    g[10:20, 2] = 0.0
    for beta1, beta2 in BETAS:
        steps = library_adamax_steps(g, beta1, beta2, lr=0.37)
        assert steps.shape == g.shape
        np.testing.assert_allclose(np.abs(steps), adamax_steps(g, beta1, beta2, lr=0.37) * 0.37,
                                   rtol=1e-9, atol=1e-300)
        s_last = step_ratio(g, beta1, beta2)  # |Δ_t|/α at t = 60, from the unrolled sums
        np.testing.assert_allclose(np.abs(steps[-1]) / 0.37, s_last, rtol=1e-12)
    with pytest.raises(ValueError, match="grads must"):
        library_adamax_steps(np.zeros((0, 2)), 0.9, 0.999)


def test_defaults_numbers():
    assert sup_step(0.9, 0.999, 1) == 1.0
    assert sup_step_limit(0.9, 0.999) == pytest.approx(0.1 * 0.999 / 0.099, rel=1e-15)
    assert sup_step_limit(0.9, 0.999) == pytest.approx(1.0090909, abs=1e-7)
    assert sup_step(0.9, 0.999, math.inf) == sup_step_limit(0.9, 0.999)
    assert sup_step(0.9, 0.999, 10**6) == pytest.approx(sup_step_limit(0.9, 0.999), rel=1e-12)


@pytest.mark.parametrize("beta1, beta2", [(0.9, 0.999), (0.5, 0.9), (0.99, 0.999), (0.9, 0.9)])
def test_supremum_increases_with_t_and_stays_below_its_limit(beta1, beta2):
    a = np.array([sup_step(beta1, beta2, t) for t in range(1, 2000)])
    assert np.all(np.diff(a) >= -1e-15 * a[1:])
    assert a[1] > 1.0
    limit = sup_step_limit(beta1, beta2)
    assert np.all(a <= limit * (1 + 1e-15))
    assert a[29] < limit  # strictly below while the gap is far above rounding


def test_finiteness_conditions():
    assert sup_step_limit(0.0, 0.0) == 1.0 and sup_step_limit(0.0, 0.5) == 1.0
    assert sup_step_limit(0.9, 0.9) == math.inf and sup_step_limit(0.95, 0.9) == math.inf
    assert sup_step(0.9, 0.9, 1000) == pytest.approx(0.1 * 1000 / (1 - 0.9**1000), rel=1e-12)
    assert sup_step(0.99, 0.5, 10**6) == math.inf  # overflows to inf instead of raising
    assert sup_step(0.9, 0.0, 2) == math.inf and sup_step(0.9, 0.0, 1) == 1.0
    assert math.isfinite(sup_step(0.99, 0.5, 50)) and sup_step(0.99, 0.5, 50) > 1e13


def test_adversarial_search_finds_the_supremum_and_no_more():
    for beta1, beta2, t in [(0.9, 0.5, 4), (0.5, 0.9, 3), (0.9, 0.999, 3)]:
        best, g = adversarial_search(beta1, beta2, t, seed=2)
        exact = sup_step(beta1, beta2, t)
        assert best <= exact * (1 + 1e-12)
        assert best == pytest.approx(exact, rel=1e-9)
        assert g.shape == (t,) and np.all(np.abs(g) <= 1.0)


def test_validation_errors_name_the_culprit():
    with pytest.raises(ValueError, match="beta1 must be in"):
        sup_step(1.0, 0.9, 3)
    with pytest.raises(ValueError, match="beta2 must be in"):
        sup_step_limit(0.9, -0.1)
    with pytest.raises(ValueError, match="t must be"):
        sup_step(0.9, 0.99, 0)
    with pytest.raises(ValueError, match="t must be"):
        sup_step(0.9, 0.99, 2.5)
    with pytest.raises(ValueError, match="beta2 must be > 0"):
        attaining_history(0.0, 3)
    with pytest.raises(ValueError, match="overflows"):
        attaining_history(0.5, 2000)
    with pytest.raises(ValueError, match="p must be"):
        lp_u_log(np.ones(3), 0.9, 0.0)
    with pytest.raises(ValueError, match="finite"):
        step_ratio(np.array([1.0, np.nan]), 0.9, 0.99)


def test_adamax_u_is_the_optimizers_u_and_the_max_of_decayed_magnitudes():
    rng = np.random.default_rng(5)
    g = rng.normal(size=(60, 7)) * 10.0 ** rng.uniform(-3, 3, size=(60, 7))
    g[30:40] = 0.0
    opt = AdaMax(beta2=0.97)
    params = {"x": np.zeros(7)}
    for gi in g:
        opt.update(params, {"x": gi.copy()})
    u = adamax_u(g, 0.97)
    np.testing.assert_array_equal(u[-1], opt.state_dict()["state"]["x"]["u"])
    k = np.arange(59, -1, -1.0)[:, None]
    np.testing.assert_allclose(u[-1], np.max(0.97**k * np.abs(g), axis=0), rtol=1e-13)


def test_lp_p2_is_adam_second_moment_with_beta2_squared():
    """p = 2: v_t = β2²·v_{t−1} + (1 − β2²)·g_t², Adam's v_t with decay β2² (an independent check)."""
    rng = np.random.default_rng(6)
    g = rng.normal(size=(25, 4))
    opt = Adam(beta2=0.95**2)
    params = {"x": np.zeros(4)}
    for gi in g:
        opt.update(params, {"x": gi.copy()})
    v = opt.state_dict()["state"]["x"]["v"]
    np.testing.assert_allclose(lp_u_naive(g, 0.95, 2)[-1] ** 2, v, rtol=1e-13)
    np.testing.assert_allclose(lp_u_log(g, 0.95, 2)[-1] ** 2, v, rtol=1e-13)


def test_log_form_equals_naive_form_where_naive_is_finite_and_survives_where_it_fails():
    rng = np.random.default_rng(7)
    g = 3.0 * rng.normal(size=(200, 3))
    for p in (1, 2.5, 10, 100):
        np.testing.assert_allclose(lp_u_log(g, 0.99, p), lp_u_naive(g, 0.99, p), rtol=1e-12)
    assert not np.all(np.isfinite(lp_u_naive(g, 0.99, 2000)))  # |g|^2000 overflows for |g| > 1.43
    assert np.all(np.isfinite(lp_u_log(g, 0.99, 2000)))
    assert np.all(lp_u_naive(1e-3 * g, 0.99, 200)[-1] == 0.0)  # underflow: v_t = 0
    assert np.all(lp_u_log(1e-3 * g, 0.99, 200)[-1] > 0.0)


def test_lp_tends_to_adamax_within_the_bounds():
    rng = np.random.default_rng(8)
    g = rng.normal(size=(300, 5)) * 10.0 ** rng.uniform(-20, 20, size=(300, 5))
    g[100:150] = 0.0
    u = adamax_u(g, 0.999)
    for p in (1, 4, 64, 1000, 10**5):
        lo, hi = lp_ratio_bounds(0.999, p, 300)
        r = lp_u_log(g, 0.999, p)[-1] / u[-1]
        assert np.all(r >= lo * (1 - 1e-12)) and np.all(r <= hi * (1 + 1e-12))
    np.testing.assert_allclose(lp_u_log(g, 0.999, 1e7), u, rtol=1e-9)
    np.testing.assert_array_equal(lp_u_log(np.zeros((3, 2)), 0.9, 50), np.zeros((3, 2)))
