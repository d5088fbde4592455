"""Tests of adamlab.analysis.bias: the §3 bias-correction algebra against independent numbers.

* the SymPy expectations equal exact brute-force averages over every gradient history, and the
  recursion run on expectations;
* the non-stationary ζ vanishes only for stationary gradients, and its limit bounds it;
* the step-size ratio formula equals the ratio of the steps ``adamlab.optim.Adam`` takes with and
  without bias correction;
* the Monte Carlo helper reproduces a direct recursion on the same gradients;
* bad β, t and probabilities raise errors naming them.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse
import sympy as sp

from adamlab.analysis import bias
from adamlab.optim import Adam

b, t, s, rho = sp.symbols("beta t s rho", positive=True)


# ----------------------------------------------------------------------------- unrolling, stationary


def test_unrolled_sum_equals_recursion_for_concrete_t():
    g = sp.IndexedBase("g")
    i = sp.Symbol("i", integer=True, positive=True)
    avg = 0
    for k in range(1, 7):
        avg = b * avg + (1 - b) * g[k]  # m_t ← β·m_{t−1} + (1 − β)·g_t
        assert sp.expand(bias.unrolled_ema(b, k, g, i).doit() - avg) == 0


def test_stationary_expectation_has_the_factor():
    assert sp.simplify(bias.expected_ema_stationary(b, t, s) - s * (1 - b**t)) == 0


@pytest.mark.parametrize("power, beta", [(1, 0.9), (2, 0.999), (2, 0.5), (1, 0.0)])
def test_stationary_expectation_equals_brute_force(power, beta):
    values, probs = [-1.0, 3.0], [0.6, 0.4]
    moment = sum(p * x**power for x, p in zip(values, probs))
    formula = sp.lambdify(t, bias.expected_ema_stationary(sp.nsimplify(beta), t, moment))
    for steps in (1, 2, 5, 11):
        exact = bias.exact_mean_by_enumeration(beta, steps, values, probs, power=power)
        assert exact == pytest.approx(float(formula(steps)), rel=1e-12, abs=1e-15)
        corrected = bias.exact_mean_by_enumeration(beta, steps, values, probs, power=power, corrected=True)
        assert corrected == pytest.approx(moment, rel=1e-12)


def test_generic_branch_finite_and_infinite_sums():
    i = sp.Symbol("i", integer=True, positive=True)
    k = sp.Symbol("k", integer=True, nonnegative=True)
    finite = bias.generic_branch(sp.summation(b ** (t - i), (i, 1, t)))
    assert sp.simplify(finite - (1 - b**t) / (1 - b)) == 0
    infinite = bias.generic_branch(sp.summation(b ** (2 * k), (k, 0, sp.oo)))
    assert sp.simplify(infinite - 1 / (1 - b**2)) == 0
    assert bias.generic_branch(b + 1) == b + 1


def test_enumeration_detects_a_wrong_factor():
    # the check above can fail: the uncorrected mean is not the moment
    exact = bias.exact_mean_by_enumeration(0.9, 3, [-1.0, 3.0], [0.6, 0.4], power=2)
    assert abs(exact - 4.2) > 1.0


# ----------------------------------------------------------------------------- non-stationary model


@pytest.mark.parametrize("beta, rho_", [(0.999, 1.001), (0.9, 0.95), (0.99, 1.02), (0.5, 0.3)])
def test_geometric_expectation_equals_recursion(beta, rho_):
    steps = np.arange(1, 301)
    s0 = 2.5
    expr = bias.expected_ema_geometric(b, rho, t, s)
    f = sp.lambdify((b, rho, t, s), expr)
    expected = bias.expected_ema_recursion(beta, s0 * rho_ ** steps.astype(float))
    np.testing.assert_allclose(f(beta, rho_, steps.astype(float), s0), expected, rtol=1e-9)
    zeta = sp.lambdify((b, rho, t, s), bias.zeta_geometric(b, rho, t, s))
    np.testing.assert_allclose(zeta(beta, rho_, steps.astype(float), s0),
                               expected - s0 * rho_**steps * (1 - beta**steps), rtol=1e-7, atol=1e-12)


def test_zeta_vanishes_only_when_stationary():
    zeta = bias.zeta_geometric(b, rho, t, s)
    assert sp.simplify(zeta.subs(rho, 1)) == 0
    assert float(zeta.subs({b: 0.9, rho: 1.1, t: 5, s: 1})) != pytest.approx(0.0, abs=1e-3)
    assert b in zeta.free_symbols and sp.Symbol("beta_1") not in zeta.free_symbols


def test_relative_bias_limit_and_bound():
    lim = bias.relative_bias_limit(b, rho)
    assert sp.simplify(lim - b * (1 - rho) / (rho - b)) == 0
    rel = sp.lambdify((b, rho, t), bias.relative_bias(b, rho, t))
    lim_f = sp.lambdify((b, rho), lim)
    steps = np.arange(1, 20001, dtype=float)
    for beta, rho_ in [(0.999, 1.0005), (0.999, 0.9995), (0.9, 1.05), (0.99, 0.995)]:
        r = bias.relative_bias_value(beta, rho_, steps)
        # the lambdified SymPy form subtracts nearly equal powers: compare with a loose tolerance
        np.testing.assert_allclose(r[:200], rel(beta, rho_, steps[:200]), rtol=1e-6, atol=1e-9)
        assert r[0] == pytest.approx(0.0, abs=1e-12)  # v̂_1 = g_1²: no bias at the first step
        assert np.all(np.abs(r) <= abs(lim_f(beta, rho_)) * (1 + 1e-9))
        assert np.all(np.diff(np.abs(r)) >= -1e-12)  # monotone towards the limit
        assert r[-1] == pytest.approx(lim_f(beta, rho_), rel=1e-3)


# ----------------------------------------------------------------------------- step-size ratio


def test_step_ratio_symbolic_form_and_values():
    b1, b2 = sp.symbols("beta_1 beta_2", positive=True)
    expr = bias.step_ratio(b1, b2, t)
    assert sp.simplify(expr - (1 - b1**t) / sp.sqrt(1 - b2**t)) == 0
    f = sp.lambdify((b1, b2, t), expr)
    ts = np.arange(1, 50)
    np.testing.assert_allclose(bias.step_ratio_value(0.9, 0.9999, ts), f(0.9, 0.9999, ts.astype(float)), rtol=1e-9)
    assert bias.step_ratio_value(0.9, 0.9999, 1) == pytest.approx(10.0, rel=1e-9)
    assert bias.step_ratio_value(0.0, 0.9999, 1) == pytest.approx(100.0, rel=1e-9)
    assert bias.step_ratio_value(0.0, 0.0, 7) == 1.0


@pytest.mark.parametrize("beta1, beta2", [(0.9, 0.9999), (0.9, 0.999), (0.0, 0.99), (0.99, 0.9)])
def test_step_ratio_matches_adam_with_and_without_correction(beta1, beta2):
    rng = np.random.default_rng(5)
    steps, dim = 60, 8
    grads = rng.normal(size=(steps, dim)) * rng.uniform(0.1, 10.0, size=dim)
    grads[rng.random((steps, dim)) < 0.5] = 0.0  # sparse: half the entries are exactly zero
    grads[0] = rng.normal(size=dim)  # every coordinate has a gradient at t = 1
    on = Adam(lr=0.01, beta1=beta1, beta2=beta2, eps=0.0)
    off = Adam(lr=0.01, beta1=beta1, beta2=beta2, eps=0.0, bias_correction=False)
    p_on, p_off = {"w": np.zeros(dim)}, {"w": np.zeros(dim)}
    n_compared = 0
    for k in range(steps):
        before_on, before_off = p_on["w"].copy(), p_off["w"].copy()
        on.update(p_on, {"w": grads[k]})
        off.update(p_off, {"w": grads[k]})
        d_on, d_off = p_on["w"] - before_on, p_off["w"] - before_off
        moving = d_on != 0
        n_compared += int(moving.sum())
        np.testing.assert_allclose(d_off[moving] / d_on[moving], bias.step_ratio_value(beta1, beta2, k + 1),
                                   rtol=1e-10)
    assert n_compared > steps * dim // 3


# ----------------------------------------------------------------------------- Monte Carlo


def test_monte_carlo_matches_direct_recursion():
    beta1, beta2, steps, n, mean, std, seed = 0.8, 0.95, 40, 50, 0.3, 2.0, 11
    out = bias.monte_carlo_moments(beta1, beta2, steps, n, mean, std, seed)
    children = np.random.SeedSequence(seed).spawn(n)
    g = np.stack([np.random.default_rng(c).normal(mean, std, size=steps) for c in children], axis=1)
    m = v = np.zeros(n)
    for k in range(steps):
        m = beta1 * m + (1 - beta1) * g[k]
        v = beta2 * v + (1 - beta2) * g[k] ** 2
        tt = k + 1
        assert out["m_mean"][k] == pytest.approx(m.mean(), rel=1e-12, abs=1e-15)
        assert out["v_hat_mean"][k] == pytest.approx((v / (1 - beta2**tt)).mean(), rel=1e-12)
        assert out["m_hat_se"][k] == pytest.approx((m / (1 - beta1**tt)).std(ddof=1) / np.sqrt(n), rel=1e-10)
    assert out["sqrt_v_hat_mean"][0] == pytest.approx(np.abs(g[0]).mean(), rel=1e-12)  # √v̂_1 = |g_1|


# ----------------------------------------------------------------------------- sparse problem


def test_logistic_gradient_by_finite_differences():
    X, y, _ = bias.sparse_logistic_problem(n=50, d=6, seed=3)
    w = np.random.default_rng(0).normal(size=6)
    _, g = bias.logistic_loss_grad(w, X, y)
    h = 1e-6
    fd = [(bias.logistic_loss_grad(w + h * e, X, y)[0] - bias.logistic_loss_grad(w - h * e, X, y)[0]) / (2 * h)
          for e in np.eye(6)]
    np.testing.assert_allclose(g, fd, rtol=1e-6, atol=1e-9)
    assert bias.logistic_loss(w, scipy.sparse.csr_matrix(X), y) == pytest.approx(bias.logistic_loss_grad(w, X, y)[0],
                                                                                rel=1e-14)
    with pytest.raises(ValueError, match=r"X must have shape \(50, 5\)"):
        bias.logistic_loss_grad(w[:5], X, y)


def test_sparse_run_first_step_follows_the_ratio():
    X, y, p = bias.sparse_logistic_problem(n=400, d=50, seed=0)
    assert p.min() < 0.05 and p.max() == 0.5
    runs = {bc: bias.run_sparse(X, y, 0.01, 0.9, 0.9999, bc, epochs=1, batch_size=32) for bc in (True, False)}
    assert runs[True]["max_step"][0] == pytest.approx(1.0, rel=1e-5)  # |Δ_1| = α·|g|/(|g| + ε)
    assert runs[False]["max_step"][0] == pytest.approx(bias.step_ratio_value(0.9, 0.9999, 1), rel=1e-4)
    assert runs[True]["steps_per_epoch"] == 13 and len(runs[True]["loss_epoch"]) == 2


# ----------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("beta1, beta2, name, bad", [(0.9, 1.0, "beta2", "1.0"), (-0.1, 0.9, "beta1", "-0.1"),
                                                     (1.5, 0.9, "beta1", "1.5")])
def test_bad_beta_is_named(beta1, beta2, name, bad):
    with pytest.raises(ValueError, match=rf"{name} must be in \[0, 1\), got {bad}"):
        bias.step_ratio_value(beta1, beta2, 1)
    with pytest.raises(ValueError, match=rf"{name} must be in \[0, 1\), got"):
        bias.step_ratio(beta1, beta2, t)
    with pytest.raises(ValueError, match=rf"{name} must be in \[0, 1\)"):
        bias.monte_carlo_moments(beta1, beta2, 3, 4, 0.0, 1.0, 0)


def test_bad_other_inputs():
    with pytest.raises(ValueError, match="beta must be in"):
        bias.expected_ema_stationary(1, t, s)
    with pytest.raises(ValueError, match="t must hold integers >= 1"):
        bias.step_ratio_value(0.9, 0.999, 0)
    with pytest.raises(ValueError, match="probs must be non-negative and sum to 1"):
        bias.exact_mean_by_enumeration(0.9, 3, [0.0, 1.0], [0.5, 0.6])
    with pytest.raises(ValueError, match="too many to enumerate"):
        bias.exact_mean_by_enumeration(0.9, 20, [0.0, 1.0], [0.5, 0.5])
    with pytest.raises(ValueError, match="n_seeds must be at least 2"):
        bias.monte_carlo_moments(0.9, 0.999, 3, 1, 0.0, 1.0, 0)
    with pytest.raises(ValueError, match="std must be positive"):
        bias.monte_carlo_moments(0.9, 0.999, 3, 4, 0.0, 0.0, 0)
    with pytest.raises(TypeError, match="beta1 must be a number here"):
        bias.step_ratio_value(sp.Symbol("beta_1"), 0.9, 1)
    with pytest.raises(ValueError, match="needs 0 < beta != rho"):
        bias.relative_bias_value(0.9, 0.9, 3)
    with pytest.raises(ValueError, match="moments must be a non-empty 1-D array"):
        bias.expected_ema_recursion(0.9, [])
