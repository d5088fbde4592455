"""Tests for adamlab.analysis.related (the §5 related-work chapter's helpers)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from _blas_bounds import assert_within, gamma, product_bound
from adamlab.analysis.related import (
    batched_paths,
    empirical_fisher_diag,
    expected_minibatch_sq,
    impulse_response,
    linear_regression_stream,
    logistic_data,
    logistic_per_example_grads,
    minibatch_vhat,
    noisy_quadratic_stream,
    preconditioned_step,
    sigmoid,
    true_fisher_diag,
    vhat_weights,
    vhat_weights_recursive,
)
from adamlab.optim import SGD, AdaGrad, Adam, RMSProp, inverse_sqrt

# ----------------------------------------------------------------------------- v̂ weights


@pytest.mark.parametrize("beta2", [0.5, 0.9, 0.999])
@pytest.mark.parametrize("t", [1, 7, 60])
def test_vhat_weights_match_the_recursion_and_sum_to_one(beta2, t):
    w = vhat_weights(beta2, t)
    assert w.shape == (t,)
    np.testing.assert_allclose(w, vhat_weights_recursive(beta2, t), rtol=1e-12)
    assert abs(w.sum() - 1.0) < 1e-12
    assert np.all(np.diff(w) > 0)  # the most recent gradient weighs most


def test_vhat_weights_tend_to_one_over_t_at_the_first_order_rate():
    t = 50
    i = np.arange(1, t + 1)
    for c in (1e-3, 1e-6, 1e-9):
        w = vhat_weights(1.0 - c, t)
        # first-order term of the series in c = 1 − β2: w_i = 1/t + c(2i − t − 1)/(2t) + O(c²)
        np.testing.assert_allclose(w, 1 / t + c * (2 * i - t - 1) / (2 * t), rtol=0, atol=5 * c**2 * t)
    assert np.max(np.abs(vhat_weights(0.5, t) - 1 / t)) > 0.4  # far from 1/t when β2 is not near 1


def test_vhat_weights_stay_accurate_very_close_to_one():
    w = vhat_weights(1.0 - 1e-13, 1000)
    assert abs(w.sum() - 1.0) < 1e-9
    np.testing.assert_allclose(w, 1e-3, rtol=1e-9)


@pytest.mark.parametrize("beta2", [1.0, 0.0, -0.1, 1.5, float("nan")])
def test_vhat_weights_reject_bad_beta2(beta2):
    with pytest.raises(ValueError, match="beta2 must be in"):
        vhat_weights(beta2, 5)


@pytest.mark.parametrize("t", [0, -1, 2.5, True])
def test_vhat_weights_reject_bad_t(t):
    with pytest.raises(ValueError, match="t must be an integer >= 1"):
        vhat_weights(0.9, t)


# ----------------------------------------------------------------------------- batched runs vs optim


def _library_path(opt, grad_fn, theta0, steps):
    params = {"theta": theta0.copy()}
    path = [theta0.copy()]
    for t in range(1, steps + 1):
        opt.update(params, {"theta": grad_fn(params["theta"][None, :], t)[0]})
        path.append(params["theta"].copy())
    return np.array(path)


STEPS = 150
SCALES = np.array([0.3, 1.0, 4.0])
THETA0 = np.array([1.0, -2.0, 0.5])


@pytest.mark.parametrize(
    "kwargs, factory",
    [
        (dict(method="sgd", lr=[0.05, 0.1]), lambda lr: SGD(lr=lr)),
        (dict(method="adagrad", lr=[0.1, 0.5], eps=0.0), lambda lr: AdaGrad(lr=lr, eps=0.0)),
        (dict(method="adagrad", lr=[0.1, 0.5], eps=1e-8), lambda lr: AdaGrad(lr=lr, eps=1e-8)),
        (dict(method="adam", lr=[0.01, 0.1]), lambda lr: Adam(lr=lr)),
        (dict(method="adam", lr=[0.01, 0.1], bias_correction=False),
         lambda lr: Adam(lr=lr, bias_correction=False)),
        (dict(method="adam", lr=[0.2, 0.5], lr_decay=True, beta1=0.0, beta2=0.99, eps=0.0),
         lambda lr: Adam(lr=inverse_sqrt(lr), beta1=0.0, beta2=0.99, eps=0.0)),
        (dict(method="rmsprop", lr=[0.01, 0.03], beta2=0.9, bias_correction=False),
         lambda lr: RMSProp(lr=lr, beta2=0.9)),
        (dict(method="rmsprop", lr=[0.01, 0.03], beta2=0.95, momentum=0.9, bias_correction=False),
         lambda lr: RMSProp(lr=lr, beta2=0.95, momentum=0.9)),
        (dict(method="rmsprop", lr=[0.01, 0.03], beta2=0.999, momentum=0.9, bias_correction=True),
         lambda lr: RMSProp(lr=lr, beta2=0.999, momentum=0.9, bias_correction=True)),
    ],
)
def test_batched_paths_match_the_library_optimizers(kwargs, factory):
    grad_fn = noisy_quadratic_stream(SCALES, sigma=0.5, steps=STEPS, seed=3)
    path = batched_paths(grad_fn, THETA0, STEPS, **kwargs)
    assert path.shape == (STEPS + 1, 2, 3)
    for row, lr in enumerate(kwargs["lr"]):
        ref = _library_path(factory(lr), grad_fn, THETA0, STEPS)
        travelled = np.max(np.abs(ref - THETA0))
        assert travelled > 0.05
        np.testing.assert_allclose(path[:, row], ref, rtol=0, atol=1e-12 * travelled)


def test_batched_paths_rows_with_different_beta2_are_independent():
    grad_fn = noisy_quadratic_stream(SCALES, sigma=0.5, steps=50, seed=4)
    beta2 = np.array([0.9, 0.99, 0.999])
    together = batched_paths(grad_fn, THETA0, 50, method="adam", lr=0.1, beta2=beta2)
    for row, b2 in enumerate(beta2):
        alone = batched_paths(grad_fn, THETA0, 50, method="adam", lr=0.1, beta2=b2)
        np.testing.assert_array_equal(together[:, row], alone[:, 0])


def test_adam_near_beta2_one_approaches_adagrad():
    grad_fn = noisy_quadratic_stream(SCALES, sigma=0.5, steps=300, seed=5)
    ada = batched_paths(grad_fn, THETA0, 300, method="adagrad", lr=0.5, eps=0.0)[:, 0]
    c = np.array([1e-2, 1e-4, 1e-6])
    adam = batched_paths(grad_fn, THETA0, 300, method="adam", lr=0.5, lr_decay=True, beta1=0.0,
                         beta2=1.0 - c, eps=0.0)
    dist = np.max(np.abs(adam - ada[:, None, :]), axis=(0, 2))
    assert dist[2] < 2e-4 * dist[0] and dist[2] < 1e-5  # linear in 1 − β2
    no_bc = batched_paths(grad_fn, THETA0, 300, method="adam", lr=0.5, lr_decay=True, beta1=0.0,
                          beta2=1.0 - c, eps=0.0, bias_correction=False)
    dist_no_bc = np.max(np.abs(no_bc - ada[:, None, :]), axis=(0, 2))
    assert np.all(np.diff(dist_no_bc) > 0) and dist_no_bc[2] > 1.0


def test_batched_paths_with_beta2_within_1e12_of_one_is_adagrad():
    # (1 − β2)·t = 1e-10 over the run: the limit of §5 holds to rounding
    grad_fn = noisy_quadratic_stream(SCALES, sigma=0.5, steps=100, seed=6)
    ada = batched_paths(grad_fn, THETA0, 100, method="adagrad", lr=0.5, eps=0.0)[:, 0]
    adam = batched_paths(grad_fn, THETA0, 100, method="adam", lr=0.5, lr_decay=True, beta1=0.0,
                         beta2=1.0 - 1e-12, eps=0.0)[:, 0]
    assert np.max(np.abs(adam - ada)) < 1e-9


def test_batched_paths_zero_gradient_with_zero_eps_is_a_no_op():
    def grad_fn(theta, t):
        return np.zeros_like(theta)

    for method in ("adagrad", "rmsprop", "adam"):
        path = batched_paths(grad_fn, THETA0, 5, method=method, lr=0.1, eps=0.0)
        assert np.all(np.isfinite(path)) and np.all(path == THETA0)


def test_batched_paths_errors():
    grad_fn = noisy_quadratic_stream(SCALES, sigma=0.5, steps=10, seed=1)
    with pytest.raises(ValueError, match="method must be one of sgd, adagrad, rmsprop, adam, got 'adamw'"):
        batched_paths(grad_fn, THETA0, 3, method="adamw", lr=0.1)
    with pytest.raises(ValueError, match="lr must be positive"):
        batched_paths(grad_fn, THETA0, 3, method="sgd", lr=[0.1, -1.0])
    with pytest.raises(ValueError, match="beta2 must be in"):
        batched_paths(grad_fn, THETA0, 3, method="adam", lr=0.1, beta2=1.0)
    with pytest.raises(ValueError, match="per-row settings disagree on the number of rows: lr 2, beta1 3"):
        batched_paths(grad_fn, THETA0, 3, method="adam", lr=[0.1, 0.2], beta1=[0.0, 0.5, 0.9])
    with pytest.raises(ValueError, match="lr has 2 values but theta0 has 3 rows"):
        batched_paths(grad_fn, np.zeros((3, 3)), 3, method="adam", lr=[0.1, 0.2])
    with pytest.raises(ValueError, match=r"grad_fn returned shape \(1, 2\) at step 1, expected \(1, 3\)"):
        batched_paths(lambda th, t: np.zeros((1, 2)), THETA0, 3, method="sgd", lr=0.1)
    with pytest.raises(ValueError, match="steps must be an integer >= 0"):
        batched_paths(grad_fn, THETA0, -1, method="sgd", lr=0.1)
    with pytest.raises(ValueError, match="theta0 must have shape"):
        batched_paths(grad_fn, np.zeros((2, 2, 3)), 3, method="sgd", lr=0.1)


# ----------------------------------------------------------------------------- impulse response


@pytest.mark.parametrize("beta2", [0.9, 0.999])
def test_impulse_response_matches_runs(beta2):
    beta1, alpha, k = 0.9, 0.01, 40

    def grad_fn(theta, t):
        return np.full_like(theta, 2.5 if t == 1 else 0.0)

    adam = batched_paths(grad_fn, np.zeros(1), k, method="adam", lr=alpha, beta1=beta1, beta2=beta2,
                         eps=0.0, bias_correction=False)[:, 0, 0]
    rms = batched_paths(grad_fn, np.zeros(1), k, method="rmsprop", lr=alpha * (1 - beta1), beta2=beta2,
                        momentum=beta1, eps=0.0, bias_correction=False)[:, 0, 0]
    np.testing.assert_allclose(-np.diff(adam) / alpha, impulse_response(k, beta1, beta2, ordering="adam"),
                               rtol=1e-12)
    np.testing.assert_allclose(-np.diff(rms) / alpha, impulse_response(k, beta1, beta2, ordering="rmsprop"),
                               rtol=1e-12)


def test_impulse_response_errors():
    with pytest.raises(ValueError, match="ordering must be 'adam' or 'rmsprop', got 'sgd'"):
        impulse_response(5, 0.9, 0.999, ordering="sgd")
    with pytest.raises(ValueError, match="beta1 must be in"):
        impulse_response(5, 1.0, 0.999, ordering="adam")


# ----------------------------------------------------------------------------- logistic regression


def _nll_i(w, x, y):
    z = x @ w
    return np.logaddexp(0.0, z) - y * z


def test_per_example_gradients_against_finite_differences():
    X, y, _ = logistic_data(20, np.array([0.5, 1.0, 3.0]), seed=2)
    w = np.array([0.3, -0.7, 0.2])
    G = logistic_per_example_grads(w, X, y)
    h = 1e-6
    for i in range(len(y)):
        fd = [(_nll_i(w + h * e, X[i], y[i]) - _nll_i(w - h * e, X[i], y[i])) / (2 * h) for e in np.eye(3)]
        np.testing.assert_allclose(G[i], fd, rtol=1e-6, atol=1e-9)


def test_fisher_diagonals_against_brute_force():
    X, y, _ = logistic_data(30, np.array([0.2, 1.0, 5.0]), seed=4)
    w = np.array([1.0, -0.5, 0.1])
    # empirical Fisher: average outer product of the observed-label gradients, one example at a time
    emp = sum(np.outer(g, g) for g in logistic_per_example_grads(w, X, y)) / len(y)
    np.testing.assert_allclose(empirical_fisher_diag(w, X, y), np.diag(emp), rtol=1e-12)
    # true Fisher: for each x_i, enumerate both labels weighted by the model's probability of each
    true = np.zeros((3, 3))
    for x in X:
        p1 = 1.0 / (1.0 + np.exp(-x @ w))
        for label, prob in ((1.0, p1), (0.0, 1.0 - p1)):
            g = logistic_per_example_grads(w, x[None, :], np.array([label]))[0]
            true += prob * np.outer(g, g)
    true /= len(X)
    np.testing.assert_allclose(true_fisher_diag(w, X), np.diag(true), rtol=1e-12)
    assert np.max(np.abs(np.diag(emp) / np.diag(true) - 1)) > 0.05  # they are different things


def test_expected_minibatch_square_against_enumeration():
    G = np.random.default_rng(0).normal(size=(5, 2)) + np.array([0.5, -1.0])
    for batch in (1, 2, 3):
        tuples = np.array(list(itertools.product(range(5), repeat=batch)))
        brute = np.mean(G[tuples].mean(axis=1) ** 2, axis=0)
        np.testing.assert_allclose(expected_minibatch_sq(G, batch), brute, rtol=1e-12)


def test_minibatch_vhat_equals_the_recursion_on_the_same_draws():
    G = np.random.default_rng(1).normal(size=(40, 3))
    steps, batch, beta2, seed = 500, 4, 0.99, 9
    idx = np.random.default_rng(seed).integers(0, 40, size=(steps, batch))
    v = np.zeros(3)
    for t in range(steps):
        g = G[idx[t]].mean(axis=0)
        v = beta2 * v + (1 - beta2) * g * g
    np.testing.assert_allclose(minibatch_vhat(G, batch, steps, beta2, seed, chunk=steps), v / (1 - beta2**steps),
                               rtol=1e-12)


def test_minibatch_vhat_is_close_to_its_expectation_with_a_long_window():
    X, y, w_true = logistic_data(2000, np.array([0.1, 1.0, 10.0]), seed=5)
    G = logistic_per_example_grads(w_true, X, y)
    vh = minibatch_vhat(G, 8, 60000, 1 - 1e-4, seed=6)
    np.testing.assert_allclose(vh, expected_minibatch_sq(G, 8), rtol=0.1)


def test_preconditioning_powers_and_scale():
    rng = np.random.default_rng(3)
    g, F = rng.normal(size=4), rng.uniform(0.5, 2.0, size=4)
    s = np.array([1.0, 10.0, 0.1, 3.0])  # rescale feature j by s_j: g_j -> s_j g_j, F_j -> s_j² F_j
    np.testing.assert_allclose(preconditioned_step(s * g, s**2 * F, 0.5), preconditioned_step(g, F, 0.5),
                               rtol=1e-14)
    np.testing.assert_allclose(preconditioned_step(s * g, s**2 * F, 1.0), preconditioned_step(g, F, 1.0) / s,
                               rtol=1e-14)
    with pytest.raises(ValueError, match="positive in every entry"):
        preconditioned_step(g, np.r_[F[:3], 0.0], 0.5)
    with pytest.raises(ValueError, match=r"g has shape \(4,\) but fisher_diag has shape \(3,\)"):
        preconditioned_step(g, F[:3], 0.5)


def test_logistic_inputs_are_checked():
    X, y, w = logistic_data(10, np.ones(2), seed=0)
    with pytest.raises(ValueError, match="w must have shape"):
        logistic_per_example_grads(np.zeros(3), X, y)
    with pytest.raises(ValueError, match=r"y must have shape \(10,\)"):
        empirical_fisher_diag(w, X, y[:5])
    with pytest.raises(ValueError, match="labels 0 and 1"):
        empirical_fisher_diag(w, X, 2 * y - 1 + 0.5)
    with pytest.raises(ValueError, match="scales must be"):
        logistic_data(10, np.array([1.0, -1.0]), seed=0)


def test_sigmoid_is_finite_and_symmetric_at_extremes():
    z = np.array([-1000.0, -30.0, 0.0, 30.0, 1000.0])
    with np.errstate(over="raise", invalid="raise", divide="raise"):  # underflow to 0 is fine
        s = sigmoid(z)
    np.testing.assert_allclose(s + sigmoid(-z), 1.0, rtol=1e-15)
    assert s[0] == 0.0 and s[-1] == 1.0 and s[2] == 0.5


# ----------------------------------------------------------------------------- streams


def test_linear_regression_stream_density_and_switch():
    w1, w2 = np.array([1.0, -1.0, 2.0]), np.array([0.0, 3.0, -2.0])
    grad_fn, X, y, targets = linear_regression_stream(w1, 20000, seed=0, density=[1.0, 0.1, 0.01],
                                                      switch_at=5000, w_star_after=w2)
    present = np.mean(X != 0, axis=0)
    np.testing.assert_allclose(present, [1.0, 0.1, 0.01], rtol=0.15)
    assert np.all(targets[:5000] == w1) and np.all(targets[5000:] == w2)
    # at the target the gradient is the noise term alone
    g = grad_fn(np.array([w1]), 10)
    # the residual cancels (y ≈ x·w): round-off relative to |x|·|w| + |y|, not to the noise
    delta = product_bound(X[9], w1, bias=y[9])
    assert_within(g[0], -(y[9] - X[9] @ w1) * X[9], (delta + gamma(2) * abs(y[9])) * np.abs(X[9]))
    with pytest.raises(ValueError, match="density must be in"):
        linear_regression_stream(w1, 10, seed=0, density=0.0)
    with pytest.raises(ValueError, match=r"w_star_after must have shape \(3,\)"):
        linear_regression_stream(w1, 10, seed=0, switch_at=5, w_star_after=np.zeros(2))


def test_linear_regression_stream_scales():
    w = np.array([1.0, -2.0])
    scale = np.where(np.arange(4000)[:, None] < 2000, 1.0, 0.1) * np.array([3.0, 1.0])
    _, X, y, _ = linear_regression_stream(w, 4000, seed=1, scale=scale, noise=0.0)
    np.testing.assert_allclose(X[:2000].std(axis=0), [3.0, 1.0], rtol=0.05)
    np.testing.assert_allclose(X[2000:].std(axis=0), [0.3, 0.1], rtol=0.05)
    assert_within(y, X @ w, product_bound(X, w))  # noise 0: the targets are x·w to round-off
    with pytest.raises(ValueError, match=r"scale must broadcast to \(4000, 2\)"):
        linear_regression_stream(w, 4000, seed=1, scale=np.ones(3))
