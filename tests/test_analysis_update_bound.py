"""Tests of adamlab.analysis.update_bound: the exact supremum of |m̂_t|/√v̂_t (Kingma & Ba 2015, §2.1).

The closed form B_t is checked against brute force (dense grids over all directions at t = 2, 3),
against the numerical adversarial search, against Adam itself fed the attaining history, and
against the weights of the unrolled moments; limits and bad input are checked too.
"""

import math

import numpy as np
import pytest

from _blas_bounds import assert_within, gamma
from adamlab.analysis.update_bound import (
    adam_ratio,
    adam_steps as library_adam_steps,
    adversarial_search,
    attaining_history,
    check_betas,
    corrected_moments,
    moment_weights,
    paper_bound,
    sparse_ratio,
    sup_ratio,
    sup_ratio_expr,
    sup_ratio_limit,
)
from adamlab.optim import Adam

BETAS = [(0.9, 0.999), (0.9, 0.99), (0.99, 0.999), (0.0, 0.9), (0.5, 0.3), (0.99, 0.9),
         (0.3, 0.3), (0.5, 0.25)]


def adam_steps(grads, beta1, beta2, eps=0.0):
    """|Δ_s|/α for s = 1..t: feed the history (t, n) to adamlab.optim.Adam with α = 1."""
    opt = Adam(lr=1.0, beta1=beta1, beta2=beta2, eps=eps)
    params = {"theta": np.zeros(grads.shape[1:])}
    steps = []
    for g in grads:
        before = params["theta"].copy()
        opt.update(params, {"theta": np.array(g, dtype=np.float64)})
        steps.append(params["theta"] - before)
    return np.abs(np.array(steps))


# ----------------------------------------------------------------------------- closed form vs brute force

@pytest.mark.parametrize("beta1, beta2", BETAS)
def test_closed_form_is_the_maximum_over_all_directions_at_t2(beta1, beta2):
    """The ratio is scale invariant, so at t = 2 a dense grid of angles covers every history."""
    phi = np.linspace(0.0, 2 * np.pi, 400_001)
    grads = np.stack([np.cos(phi), np.sin(phi)])  # (t = 2, number of histories)
    ratios = np.abs(adam_ratio(grads, beta1, beta2)[-1])
    bound = sup_ratio(beta1, beta2, 2)
    assert ratios.max() <= bound * (1 + 1e-12)
    assert ratios.max() >= bound * (1 - 1e-9)


@pytest.mark.parametrize("beta1, beta2", BETAS[:5])
def test_closed_form_is_the_maximum_over_the_sphere_at_t3(beta1, beta2):
    n = 400_000  # Fibonacci lattice on the unit sphere: directions of (g_1, g_2, g_3)
    i = np.arange(n) + 0.5
    z = 1 - 2 * i / n
    r = np.sqrt(1 - z**2)
    phi = np.pi * (1 + 5**0.5) * i
    grads = np.stack([r * np.cos(phi), r * np.sin(phi), z])
    ratios = np.abs(adam_ratio(grads, beta1, beta2)[-1])
    bound = sup_ratio(beta1, beta2, 3)
    assert ratios.max() <= bound * (1 + 1e-12)
    assert ratios.max() >= bound * (1 - 1e-4)


@pytest.mark.parametrize("beta1, beta2", BETAS)
def test_no_random_history_exceeds_the_bound_at_any_step(beta1, beta2):
    rng = np.random.default_rng(5)
    t = 150
    growth = rng.choice([0.8, 1.0, 1.05, 1.3], size=400) ** np.arange(t)[:, None]
    grads = rng.normal(size=(t, 400)) * growth * (rng.random(size=(t, 400)) < 0.7)
    grads[0] += 1e-3  # v̂ > 0 from the first step on
    ratios = np.abs(adam_ratio(grads, beta1, beta2))
    bounds = np.array([sup_ratio(beta1, beta2, s) for s in range(1, t + 1)])
    assert np.all(ratios <= bounds[:, None] * (1 + 1e-12))


@pytest.mark.parametrize("beta1, beta2", [(0.9, 0.999), (0.99, 0.9), (0.0, 0.9), (0.5, 0.3)])
@pytest.mark.parametrize("t", [1, 2, 4, 6])
def test_adversarial_search_finds_the_closed_form(beta1, beta2, t):
    result = adversarial_search(lambda g: adam_ratio(g, beta1, beta2)[-1], t, starts=2,
                                rng=np.random.default_rng(t))
    assert result.value == pytest.approx(sup_ratio(beta1, beta2, t), rel=1e-7)
    assert result.value <= sup_ratio(beta1, beta2, t) * (1 + 1e-12)
    assert result.values.shape == (2,) and result.nfev > 0
    assert np.max(np.abs(result.history)) == pytest.approx(1.0)
    if t > 1 and beta1 > 0:  # the maximiser is unique up to scale: the attaining history
        np.testing.assert_allclose(result.history, attaining_history(beta1, beta2, t), atol=1e-4)


def test_adversarial_search_odd_shortcut_and_sign():
    """odd=True searches one sign only (half the work) and finds the same maximum; the history
    returned always has a positive ratio."""
    fn = lambda g: adam_ratio(g, 0.9, 0.99)[-1]
    both = adversarial_search(fn, 5, starts=2, rng=np.random.default_rng(1))
    one = adversarial_search(fn, 5, starts=2, rng=np.random.default_rng(1), odd=True)
    assert one.value == pytest.approx(both.value, rel=1e-9)
    assert one.nfev < both.nfev
    assert fn(both.history) > 0 and fn(one.history) > 0
    # a function that is not odd: f = c for c > 0, 2c for c < 0, with c = cos(g, (1, 1, 1)).
    # max |f| = 2 (at g = −(1, 1, 1)) is found by the two-sided search; odd=True sees only max f = 1
    def lopsided(g):
        c = np.sum(g) / np.sqrt(g.size * np.sum(g**2))
        return c if c > 0 else 2 * c
    two_sided = adversarial_search(lopsided, 3, starts=2, rng=np.random.default_rng(2))
    assert two_sided.value == pytest.approx(2.0, rel=1e-6)
    np.testing.assert_allclose(two_sided.history, -1.0, atol=1e-3)
    one_sided = adversarial_search(lopsided, 3, starts=2, rng=np.random.default_rng(2), odd=True)
    assert one_sided.value == pytest.approx(1.0, rel=1e-6)


# ----------------------------------------------------------------------------- Adam attains it

@pytest.mark.parametrize("beta1, beta2", [(0.9, 0.999), (0.9, 0.99), (0.99, 0.999), (0.0, 0.999),
                                          (0.99, 0.9)])
@pytest.mark.parametrize("t", [1, 2, 10, 100, 1000])
def test_attaining_history_makes_adam_step_the_supremum(beta1, beta2, t):
    """adamlab.optim.Adam, fed the history, steps by α·B_t at step t (ε tiny, α = 1)."""
    grads = attaining_history(beta1, beta2, t)[:, None]
    step = adam_steps(grads, beta1, beta2, eps=1e-300)[-1, 0]
    assert step == pytest.approx(sup_ratio(beta1, beta2, t), rel=1e-9)


def test_adam_ratio_is_what_adam_steps():
    rng = np.random.default_rng(11)
    grads = rng.normal(size=(60, 5)) * 10.0 ** rng.uniform(-3, 3, size=5)
    for beta1, beta2 in BETAS:
        np.testing.assert_allclose(adam_steps(grads, beta1, beta2),
                                   np.abs(adam_ratio(grads, beta1, beta2)), rtol=1e-12)


def test_corrected_moments_are_the_weighted_sums():
    rng = np.random.default_rng(5)
    grads = rng.normal(size=(40, 3)) * np.array([1e-3, 1.0, 1e3])
    for beta1, beta2 in BETAS:
        m_hat, v_hat = corrected_moments(grads, beta1, beta2)
        assert m_hat.shape == v_hat.shape == grads.shape
        for t in (1, 2, 17, 40):
            a, b = moment_weights(beta1, beta2, t)
            # m̂ cancels (gradients of both signs): round-off of the t-step recursion and of the
            # t-term product, both relative to Σ|a_k·g_k| (3 roundings per step)
            assert_within(m_hat[t - 1], a @ grads[:t], gamma(3 * t + 3) * (np.abs(a) @ np.abs(grads[:t])))
            np.testing.assert_allclose(v_hat[t - 1], b @ grads[:t] ** 2, rtol=1e-12)


def test_library_adam_steps_are_the_optimizers_steps():
    rng = np.random.default_rng(12)
    grads = rng.normal(size=(50, 4)) * 10.0 ** rng.uniform(-3, 3, size=4)
    for beta1, beta2 in BETAS[:4]:
        for eps, lr in ((0.0, 1.0), (1e-8, 1e-3)):
            steps = library_adam_steps(grads, beta1, beta2, eps=eps, lr=lr)
            assert steps.shape == grads.shape
            np.testing.assert_allclose(np.abs(steps) / lr,
                                       adam_steps(grads, beta1, beta2, eps=eps), rtol=1e-9)
            assert np.all(np.sign(steps) == -np.sign(adam_ratio(grads, beta1, beta2)))
    with pytest.raises(ValueError, match="grads must have shape"):
        library_adam_steps(np.zeros((0, 2)), 0.9, 0.999)


def test_adam_ratio_is_zero_while_every_gradient_is_zero():
    ratios = adam_ratio(np.array([0.0, 0.0, 2.0, -1.0]), 0.9, 0.999)
    assert ratios[0] == 0.0 and ratios[1] == 0.0
    assert ratios[2] == pytest.approx(sparse_ratio(0.9, 0.999, 3), rel=1e-12)  # the sparse case at t = 3


# ----------------------------------------------------------------------------- closed form, limits

@pytest.mark.parametrize("beta1, beta2", BETAS)
@pytest.mark.parametrize("t", [1, 2, 7, 300])
def test_sup_ratio_is_cauchy_schwarz_of_the_weights(beta1, beta2, t):
    a, b = moment_weights(beta1, beta2, t)
    assert a.sum() == pytest.approx(1.0) and b.sum() == pytest.approx(1.0)
    assert sup_ratio(beta1, beta2, t) == pytest.approx(math.sqrt(np.sum(a**2 / b)), rel=1e-12)
    g = attaining_history(beta1, beta2, t)
    assert (a @ g) / math.sqrt(b @ g**2) == pytest.approx(sup_ratio(beta1, beta2, t), rel=1e-12)


@pytest.mark.parametrize("beta1, beta2", [(0.9, 0.999), (0.9, 0.99), (0.99, 0.999), (0.3, 0.3),
                                          (0.2, 0.5)])
def test_limit_formula_and_convergence(beta1, beta2):
    kappa = beta1**2 / beta2
    limit = (1 - beta1) / math.sqrt((1 - beta2) * (1 - kappa))
    assert sup_ratio_limit(beta1, beta2) == pytest.approx(limit, rel=1e-14)
    assert sup_ratio(beta1, beta2, 10**6) == pytest.approx(limit, rel=1e-12)
    # limit² − 1 = (β1 − β2)²/((1 − β2)(β2 − β1²)) ≥ 0: never below the constant-gradient value 1
    assert limit**2 - 1 == pytest.approx((beta1 - beta2) ** 2 / ((1 - beta2) * (beta2 - beta1**2)),
                                         rel=1e-9, abs=1e-14)
    # the limit exceeds the sparse case by 1/√(1 − κ)
    assert limit == pytest.approx(sparse_ratio(beta1, beta2, math.inf) / math.sqrt(1 - kappa))


def test_defaults_agree_with_the_documented_counterexamples():
    """The figures of tests/test_optim_properties.py, from the closed form here."""
    assert paper_bound(0.9, 0.999) == pytest.approx(0.1 / math.sqrt(0.001))
    first = next(t for t in range(1, 5000) if sup_ratio(0.9, 0.999, t) > paper_bound(0.9, 0.999))
    assert first == 210
    assert sup_ratio(0.9, 0.999, 1000) == pytest.approx(5.78, abs=5e-3)
    assert sup_ratio_limit(0.9, 0.999) == pytest.approx(7.27, abs=5e-3)
    assert sup_ratio(0.99, 0.999, 1000) == pytest.approx(1.83, abs=5e-3)


def test_equal_betas_keep_every_step_within_lr():
    for beta in (0.0, 0.3, 0.9, 0.999):
        for t in (1, 2, 50, 10**4, math.inf):
            assert sup_ratio(beta, beta, t) == pytest.approx(1.0, rel=1e-12)


def test_unbounded_when_beta1_squared_reaches_beta2():
    assert sup_ratio_limit(0.9, 0.5) == math.inf
    assert sup_ratio_limit(0.5, 0.25) == math.inf  # κ = 1 exactly: B_t grows like √t
    assert sup_ratio(0.5, 0.25, 400) == pytest.approx(
        0.5 / (1 - 0.5**400) * math.sqrt((1 - 0.25**400) / 0.75) * math.sqrt(400), rel=1e-12)
    values = [sup_ratio(0.9, 0.5, t) for t in (10, 20, 40, 60)]
    assert all(b > a for a, b in zip(values, values[1:])) and values[-1] > 1e5
    assert sup_ratio(0.5, 0.0, 1) == 1.0 and sup_ratio(0.5, 0.0, 2) == math.inf
    assert sup_ratio(0.0, 0.0, 5) == 1.0


def test_beta1_zero_makes_the_paper_bound_tight():
    """β1 = 0 (bias-corrected RMSProp): the attaining history is the paper's sparse one."""
    for beta2 in (0.9, 0.999):
        np.testing.assert_array_equal(attaining_history(0.0, beta2, 5), [0, 0, 0, 0, 1])
        for t in (1, 3, 100, math.inf):
            assert sup_ratio(0.0, beta2, t) == pytest.approx(sparse_ratio(0.0, beta2, t), rel=1e-14)
        assert sup_ratio_limit(0.0, beta2) == pytest.approx(paper_bound(0.0, beta2), rel=1e-14)


@pytest.mark.parametrize("beta1, beta2", BETAS[:5])
def test_sparse_case_and_paper_bound(beta1, beta2):
    for t in (1, 2, 10, 500):
        history = np.zeros(t)
        history[-1] = -3.0
        assert abs(adam_ratio(history, beta1, beta2)[-1]) == pytest.approx(
            sparse_ratio(beta1, beta2, t), rel=1e-12)
        assert sup_ratio(beta1, beta2, t) >= max(sparse_ratio(beta1, beta2, t), 1.0) * (1 - 1e-12)
    sparse_limit = (1 - beta1) / math.sqrt(1 - beta2)
    assert sparse_ratio(beta1, beta2, math.inf) == pytest.approx(sparse_limit)
    assert paper_bound(beta1, beta2) == pytest.approx(max(sparse_limit, 1.0))


def test_sympy_expression_matches_the_numbers():
    import sympy as sp

    b1, b2, t = sp.symbols("beta_1 beta_2 t", positive=True)
    expr = sup_ratio_expr(b1, b2, t)
    f = sp.lambdify((b1, b2, t), expr, "math")
    for beta1, beta2 in [(0.9, 0.999), (0.99, 0.999), (0.5, 0.3)]:
        for tt in (1, 5, 100):
            assert f(beta1, beta2, tt) == pytest.approx(sup_ratio(beta1, beta2, tt), rel=1e-12)
    assert float(sup_ratio_expr(sp.Rational(9, 10), sp.Rational(999, 1000), 1)) == 1.0


def test_attaining_history_does_not_overflow_for_beta1_above_beta2():
    g = attaining_history(0.99, 0.9, 5000)
    assert np.all(np.isfinite(g)) and g.max() == 1.0 and g[0] == 1.0


# ----------------------------------------------------------------------------- bad input

@pytest.mark.parametrize("beta1, beta2, message", [
    (1.0, 0.999, "beta1 must be in [0, 1), got 1.0"),
    (-0.1, 0.999, "beta1 must be in [0, 1), got -0.1"),
    (0.9, 1.0, "beta2 must be in [0, 1), got 1.0"),
    (0.9, float("nan"), "beta2 must be finite, got nan"),
    (0.9, "0.999", "beta2 must be a real number, got '0.999'"),
])
def test_bad_betas_are_named(beta1, beta2, message):
    for fn in (check_betas, paper_bound, sup_ratio_limit, lambda b1, b2: sup_ratio(b1, b2, 3),
               lambda b1, b2: sparse_ratio(b1, b2, 3), lambda b1, b2: moment_weights(b1, b2, 3),
               lambda b1, b2: attaining_history(b1, b2, 3),
               lambda b1, b2: adam_ratio(np.ones(3), b1, b2)):
        with pytest.raises(ValueError) as err:
            fn(beta1, beta2)
        assert str(err.value) == message


@pytest.mark.parametrize("t", [0, -3, 2.5, True, "10", math.nan])
def test_bad_t_is_named(t):
    with pytest.raises(ValueError, match=r"t must be a positive integer"):
        sup_ratio(0.9, 0.999, t)
    with pytest.raises(ValueError, match=r"t must be a positive integer, got"):
        attaining_history(0.9, 0.999, t)


def test_infinite_t_only_where_a_limit_makes_sense():
    assert sup_ratio(0.9, 0.999, math.inf) == sup_ratio_limit(0.9, 0.999)
    with pytest.raises(ValueError, match=r"t must be a positive integer, got inf"):
        attaining_history(0.9, 0.999, math.inf)
    with pytest.raises(ValueError, match=r"t must be a positive integer, got inf"):
        moment_weights(0.9, 0.999, math.inf)


def test_other_bad_input():
    with pytest.raises(ValueError, match=r"attaining_history needs beta2 > 0, got 0.0"):
        attaining_history(0.5, 0.0, 4)
    with pytest.raises(ValueError, match=r"grads must have shape \(t, \.\.\.\) with t >= 1, got shape \(0,\)"):
        adam_ratio(np.array([]), 0.9, 0.999)
    with pytest.raises(ValueError, match=r"starts must be a positive integer, got 0"):
        adversarial_search(lambda g: adam_ratio(g, 0.9, 0.999)[-1], 3, starts=0,
                           rng=np.random.default_rng(0))


def test_theorem41_condition_admits_pairs_with_unbounded_steps():
    # Theorem 4.1 (§4) asks γ = β1²/√β2 < 1; this module's κ = β1²/β2 is a different quantity.
    # β1⁴ < β2 ≤ β1² satisfies the theorem's condition, yet the supremum of the step is infinite.
    from adamlab.analysis.convergence import theorem41_bound

    beta1, beta2 = 0.9, 0.7
    assert beta1**2 / math.sqrt(beta2) < 1 <= beta1**2 / beta2
    g = np.ones((3, 1))
    assert theorem41_bound(g, np.zeros((3, 1)), np.zeros((1, 1)), np.array([3]), 0.1, beta1,
                           beta2, 0.5).gamma < 1  # accepted by the theorem's bound
    assert sup_ratio_limit(beta1, beta2) == math.inf
    assert sup_ratio(beta1, beta2, 100) > 100 * sup_ratio(beta1, beta2, 10)
