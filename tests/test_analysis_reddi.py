"""Tests of adamlab.analysis.reddi: the scans, the counterexample problems, the fast runs."""

import numpy as np
import pytest

from adamlab.analysis.reddi import (
    adam_moments,
    affine_scan,
    barrier_run,
    bernoulli_gradients,
    clamp_scan,
    class_linear_run,
    fast_linear_run,
    fast_steps,
    linear_regret,
    lr_sequence,
    periodic_gradients,
    reddi_gradients,
)
from adamlab.optim import SGD, AdaGrad, Adam, AMSGrad, RMSProp, algorithm1_step, inverse_sqrt


def test_affine_scan_matches_the_loop_with_lanes():
    rng = np.random.default_rng(0)
    T = 1000
    a = rng.uniform(0, 1, size=(T, 3))
    b = rng.normal(size=(T, 3))
    y = np.array([0.5, -1.0, 2.0])
    expected = np.empty((T, 3))
    for t in range(T):
        y = a[t] * y + b[t]
        expected[t] = y
    np.testing.assert_allclose(affine_scan(a, b, np.array([0.5, -1.0, 2.0])), expected, rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("T", [1, 2, 3, 7, 8, 9, 1000])
def test_clamp_scan_matches_projected_loop(T):
    rng = np.random.default_rng(T)
    delta = rng.normal(scale=0.7, size=(T, 4))  # large enough to hit both ends often
    x0 = np.array([-1.0, -0.2, 0.4, 1.0])
    x = x0.copy()
    expected = np.empty((T, 4))
    for t in range(T):
        x = np.clip(x - delta[t], -1.0, 1.0)
        expected[t] = x
    got = clamp_scan(delta, x0, -1.0, 1.0)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)
    assert np.all((got >= -1) & (got <= 1))
    if T == 1000:
        assert np.any(expected == 1.0) and np.any(expected == -1.0)  # projection really was active


def test_clamp_scan_rejects_bad_interval_and_start():
    with pytest.raises(ValueError, match="lo < hi"):
        clamp_scan(np.ones(3), 0.0, 1.0, 1.0)
    with pytest.raises(ValueError, match="x0 must lie in"):
        clamp_scan(np.ones(3), 1.5, -1.0, 1.0)
    with pytest.raises(ValueError, match="time axis"):
        clamp_scan(np.ones(0), 0.0, -1.0, 1.0)


def test_reddi_gradients_pattern_and_errors():
    g = reddi_gradients(7, 3.0)
    np.testing.assert_array_equal(g, [3, -1, -1, 3, -1, -1, 3])
    with pytest.raises(ValueError, match="C must be > 2"):
        reddi_gradients(10, 2.0)
    with pytest.raises(ValueError, match="T must be an integer >= 1"):
        reddi_gradients(0, 3.0)


def test_periodic_and_bernoulli_gradients():
    g = periodic_gradients(203, 1010.0, -10.0, 101)
    assert np.flatnonzero(g == 1010.0).tolist() == [0, 101, 202]
    assert np.all(g[g != 1010.0] == -10.0)
    gb = bernoulli_gradients(100_000, 1010.0, -10.0, 0.01, np.random.default_rng(1))
    assert abs(np.mean(gb == 1010.0) - 0.01) < 0.002
    with pytest.raises(ValueError, match="period must be"):
        periodic_gradients(10, 1.0, -1.0, 1)
    with pytest.raises(ValueError, match="p must be in"):
        bernoulli_gradients(10, 1.0, -1.0, 1.5, np.random.default_rng(0))


def test_lr_sequence_forms():
    np.testing.assert_allclose(lr_sequence(inverse_sqrt(0.5), 4), 0.5 / np.sqrt([1, 2, 3, 4]), rtol=1e-15)
    np.testing.assert_array_equal(lr_sequence(0.1, 3), [0.1, 0.1, 0.1])
    np.testing.assert_allclose(lr_sequence(lambda t: 1.0 / t, 3), [1, 0.5, 1 / 3], rtol=1e-15)


def test_adam_moments_match_algorithm1():
    rng = np.random.default_rng(3)
    g = rng.normal(size=(50, 2))
    m_hat, v_hat = adam_moments(g, 0.9, 0.99)
    m, v = np.zeros(2), np.zeros(2)
    for t in range(1, 51):
        m = 0.9 * m + 0.1 * g[t - 1]
        v = 0.99 * v + 0.01 * g[t - 1] ** 2
        np.testing.assert_allclose(m_hat[t - 1], m / (1 - 0.9**t), rtol=1e-12)
        np.testing.assert_allclose(v_hat[t - 1], v / (1 - 0.99**t), rtol=1e-12)
    # the step built from them is Algorithm 1's step
    theta, m, v = algorithm1_step(np.zeros(2), g[0], np.zeros(2), np.zeros(2), 1, 0.1, 0.9, 0.99, 1e-8)
    np.testing.assert_allclose(-theta, 0.1 * m_hat[0] / (np.sqrt(v_hat[0]) + 1e-8), rtol=1e-14)


OPTIMIZERS = {
    "Adam": lambda: Adam(lr=inverse_sqrt(0.5), beta1=0.0, beta2=0.1),
    "Adam-momentum-decay": lambda: Adam(lr=inverse_sqrt(0.2), beta1=0.9, beta2=0.99, beta1_decay=0.999),
    "Adam-no-bias-correction": lambda: Adam(lr=0.05, beta1=0.5, beta2=0.9, eps=1e-3, bias_correction=False),
    "AMSGrad": lambda: AMSGrad(lr=inverse_sqrt(0.5), beta1=0.0, beta2=0.1),
    "AMSGrad-bias-corrected": lambda: AMSGrad(lr=inverse_sqrt(0.3), beta1=0.9, beta2=0.99, bias_correction=True),
    "AdaGrad": lambda: AdaGrad(lr=0.5),
    "AdaGrad-eps0": lambda: AdaGrad(lr=0.5, eps=0.0),
    "SGD": lambda: SGD(lr=inverse_sqrt(0.1)),
}


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
@pytest.mark.parametrize("problem", ["reddi", "random"])
def test_fast_run_equals_optimizer_class_step_by_step(name, problem):
    T = 2000
    if problem == "reddi":
        g = reddi_gradients(T, 3.0)
    else:
        g = np.random.default_rng(5).normal(scale=2.0, size=T)
    make = OPTIMIZERS[name]
    fast = fast_linear_run(make(), g, 0.3)
    slow = class_linear_run(make(), g, 0.3)
    np.testing.assert_allclose(fast, slow, rtol=0, atol=1e-11)
    assert fast[0] == 0.3


def test_fast_run_lanes_of_starting_points():
    g = reddi_gradients(500, 3.0)
    x0 = np.array([-1.0, 0.0, 1.0])
    fast = fast_linear_run(AMSGrad(lr=inverse_sqrt(0.5), beta1=0.0, beta2=0.1), g, x0)
    assert fast.shape == (500, 3)
    for k, start in enumerate(x0):
        slow = class_linear_run(AMSGrad(lr=inverse_sqrt(0.5), beta1=0.0, beta2=0.1), g, start)
        np.testing.assert_allclose(fast[:, k], slow, atol=1e-12)


def test_fast_steps_errors():
    with pytest.raises(TypeError, match="RMSProp"):
        fast_steps(RMSProp(), np.ones(3))
    opt = Adam()
    opt.update({"x": np.zeros(1)}, {"x": np.ones(1)})
    with pytest.raises(ValueError, match="fresh optimizer"):
        fast_steps(opt, np.ones(3))
    with pytest.raises(ValueError, match="one lane"):
        class_linear_run(Adam(), np.ones((3, 2)), 0.0)


def test_linear_regret_hand_computed():
    g = np.array([3.0, -1.0, -1.0])
    x = np.array([0.0, 1.0, -1.0])
    # played losses 0, -1, 1; Σg = 3, 2, 1 so the best fixed point is -1 with value -3, -2, -1
    np.testing.assert_allclose(linear_regret(g, x), [3.0, 1.0, 1.0])
    with pytest.raises(ValueError, match="time axis"):
        linear_regret(g, x[:2])


def test_adam_fails_on_reddi_problem_and_amsgrad_does_not():
    # Reddi et al. Theorem 1: with beta1 = 0, beta2 = 1/(1 + C²) Adam drifts to x = +1, the worst point,
    # and its average regret tends to 2(C − 2)/3; AMSGrad's tends to 0.
    C, T = 3.0, 30_000
    g = reddi_gradients(T, C)
    beta2 = 1 / (1 + C**2)
    x_adam = fast_linear_run(Adam(lr=inverse_sqrt(0.5), beta1=0.0, beta2=beta2), g, 0.0)
    x_ams = fast_linear_run(AMSGrad(lr=inverse_sqrt(0.5), beta1=0.0, beta2=beta2), g, 0.0)
    assert x_adam[-1] > 0.99 and x_ams[-1] < -0.99
    assert abs(linear_regret(g, x_adam)[-1] / T - 2 * (C - 2) / 3) < 0.01
    assert linear_regret(g, x_ams)[-1] / T < 0.02


def test_barrier_run_regret_against_brute_force_minimum():
    g = reddi_gradients(300, 3.0)
    K = 6.0
    x, grads, regret = barrier_run(Adam(lr=inverse_sqrt(0.5), beta1=0.0, beta2=0.1), g, 0.0, K)
    assert np.max(np.abs(x)) > 1  # no projection: the iterate does leave [-1, 1]
    outside = np.abs(x) > 1
    np.testing.assert_array_equal(grads[outside], g[outside] + K * np.sign(x[outside]))
    np.testing.assert_array_equal(grads[~outside], g[~outside])
    grid = np.linspace(-3, 3, 6001)  # contains -1 and 1
    for T in (1, 2, 3, 100, 300):
        totals = g[:T].sum() * grid + T * K * np.maximum(0, np.abs(grid) - 1)
        played = np.sum(g[:T] * x[:T] + K * np.maximum(0, np.abs(x[:T]) - 1))
        np.testing.assert_allclose(regret[T - 1], played - totals.min(), rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match="K must exceed max"):
        barrier_run(Adam(), g, 0.0, 3.0)
