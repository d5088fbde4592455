"""adamlab.analysis.averaging: the bias-corrected parameter average of §7.2 and its experiments."""

import numpy as np
import pytest

from _blas_bounds import assert_within, gamma
from adamlab.analysis.averaging import (LogisticTask, average_weights, explicit_average, mean_age,
                                        mean_se, noisy_quadratic_grad, run_with_averages)
from adamlab.optim import Adam, TemporalAverage


@pytest.mark.parametrize("beta", [0.0, 0.5, 0.9, 0.999])
def test_weights_sum_to_one_and_decay_geometrically(beta):
    for t in (1, 2, 7, 500):
        w = average_weights(beta, t)
        assert w.shape == (t,)
        assert w.sum() == pytest.approx(1.0, rel=1e-13)
        if beta > 0 and t > 1:
            np.testing.assert_allclose(w[:-1] / w[1:], beta, rtol=1e-13)
    np.testing.assert_array_equal(average_weights(0.0, 4), [0.0, 0.0, 0.0, 1.0])


@pytest.mark.parametrize("beta", [0.3, 0.9, 0.999])
def test_temporal_average_equals_the_explicit_weighted_average(beta):
    rng = np.random.default_rng(1)
    thetas = rng.normal(size=(80, 6)) + np.linspace(0, 5, 80)[:, None]
    avg = TemporalAverage(beta=beta)
    for t, theta in enumerate(thetas, start=1):
        avg.update({"theta": theta.copy()})
        # rtol for 1 − β^t (relative error u·β^t/(1 − β^t), 5e-14 for β = 0.999 at t = 2, common
        # to all entries); atol 1e-12 lies above the operand bound γ_{3t+3}·Σ w_i·|θ_i| < 2e-13 of
        # an entry that cancels (|θ| < 7 here, t ≤ 80)
        np.testing.assert_allclose(avg.average()["theta"], explicit_average(thetas[:t], beta),
                                   rtol=1e-12, atol=1e-12)


def test_bias_correction_makes_a_constant_sequence_its_own_average():
    avg = TemporalAverage(beta=0.999)
    c = np.array([2.0, -3.0, 0.5])
    for _ in range(10):
        avg.update({"theta": c.copy()})
    np.testing.assert_allclose(avg.average()["theta"], c, rtol=1e-12)
    # the uncorrected average θ̄_t has only the weight 1 − β^t = 0.00996 on it
    np.testing.assert_allclose(avg.state_dict()["state"]["theta"]["avg"], (1 - 0.999**10) * c,
                               rtol=1e-12)


def test_mean_age_closed_form():
    for beta in (0.0, 0.5, 0.9, 0.99):
        for t in (1, 3, 50, 2000):
            w = average_weights(beta, t)
            direct = float(np.sum(np.arange(t - 1, -1, -1) * w))
            assert mean_age(beta, t) == pytest.approx(direct, rel=1e-10, abs=1e-12)
    assert mean_age(0.99, 10**5) == pytest.approx(99.0, rel=1e-12)


def test_mean_se():
    x = np.array([[1.0, 2.0, 3.0, 6.0], [0.0, 0.0, 0.0, 0.0]])
    m, se = mean_se(x)
    np.testing.assert_allclose(m, [3.0, 0.0])
    np.testing.assert_allclose(se, [np.std([1, 2, 3, 6], ddof=1) / 2, 0.0])
    with pytest.raises(ValueError, match="at least 2"):
        mean_se(np.ones((3, 1)))


def test_validation():
    with pytest.raises(ValueError, match="beta must be in"):
        average_weights(1.0, 3)
    with pytest.raises(ValueError, match="t must be"):
        mean_age(0.9, 0)
    with pytest.raises(ValueError, match="record must"):
        run_with_averages(Adam(), np.zeros((2, 2)), lambda th, t: th, 5, [0.9], lambda th: th[:, 0],
                          [6])


def test_rows_of_one_run_are_independent_runs_and_averages_match():
    h = np.array([1.0, 0.1, 0.01])
    grads = np.random.default_rng(2).normal(size=(40, 3, 3))  # step, run, coordinate

    def grad(theta, t):
        return h * theta + grads[t - 1, : theta.shape[0]]

    theta0 = np.ones((3, 3))
    both = run_with_averages(Adam(lr=0.1), theta0, grad, 40, [0.9], lambda th: th.copy(), [10, 40])
    assert both["last"].shape == (2, 3, 3)
    for r in range(3):
        def grad_r(theta, t, r=r):
            return h * theta + grads[t - 1, r : r + 1]

        one = run_with_averages(Adam(lr=0.1), theta0[r : r + 1], grad_r, 40, [0.9], lambda th: th.copy(),
                                [10, 40])
        np.testing.assert_array_equal(one["last"][:, 0], both["last"][:, r])
        np.testing.assert_array_equal(one["avg"][0.9][:, 0], both["avg"][0.9][:, r])
    # the recorded average is the explicit weighted average of the iterates
    path, opt, params = [], Adam(lr=0.1), {"theta": theta0.copy()}
    for t in range(1, 41):
        opt.update(params, {"theta": grad(params["theta"], t)})
        path.append(params["theta"].copy())
    # the recursion and a BLAS product of 40 terms, which may cancel when θ crosses 0: round-off
    # relative to Σ w_i·|θ_i| (3 roundings a step, and 1 − β^t, which is well conditioned here)
    assert_within(both["avg"][0.9][-1], explicit_average(np.array(path), 0.9),
                  gamma(3 * 40 + 6) * explicit_average(np.abs(np.array(path)), 0.9))
    np.testing.assert_array_equal(both["last"][-1], path[-1])


def test_noisy_quadratic_grad():
    theta = np.array([1.0, -2.0])
    h = np.array([3.0, 0.5])
    np.testing.assert_array_equal(noisy_quadratic_grad(theta, h, 0.0, np.random.default_rng(0)),
                                  h * theta)
    noise = noisy_quadratic_grad(np.zeros((20000, 2)), h, 2.0, np.random.default_rng(0))
    assert noise.std() == pytest.approx(2.0, rel=0.02)


def test_logistic_task_loss_and_gradient():
    task = LogisticTask.make(np.random.default_rng(3), runs=3, n_train=40, n_test=30, d=5)
    assert task.X_train.shape == (3, 40, 5) and task.y_test.shape == (3, 30)
    assert set(np.unique(task.y_train)) <= {0.0, 1.0}
    np.testing.assert_allclose(task.test_loss(np.zeros((3, 5))), np.log(2.0), rtol=1e-14)
    w = np.random.default_rng(4).normal(size=(3, 5))
    g = task.minibatch_grad(w, np.random.default_rng(9), batch=8)
    idx = np.random.default_rng(9).integers(0, 40, size=(3, 8))  # the same draw, replayed
    X = np.take_along_axis(task.X_train, idx[:, :, None], axis=1)
    y = np.take_along_axis(task.y_train, idx, axis=1)
    fd = np.zeros_like(w)
    for j in range(5):
        e = np.zeros(5)
        e[j] = 1e-6
        fd[:, j] = (LogisticTask.loss(w + e, X, y) - LogisticTask.loss(w - e, X, y)) / 2e-6
    np.testing.assert_allclose(g, fd, rtol=1e-7, atol=1e-9)
