"""Tests for adamlab.nn: layers, losses and initialisers.

Every layer and loss is checked against central differences in float64 (relative error < 1e-6);
float32 layers keep float32 everywhere; bad input raises an error naming the problem.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp

from _blas_bounds import assert_within, product_bound
from adamlab.nn import (Dropout, Flatten, Layer, Linear, ReLU, Softplus, bernoulli_log_likelihood,
                        fans, gaussian_kl, glorot_uniform, he_normal, numerical_gradient,
                        relative_error, sigmoid, sigmoid_binary_cross_entropy, softmax,
                        softmax_cross_entropy)

TOL = 1e-6


def away_from_zero(rng, shape, margin=1e-2):
    """Normal samples with |x| >= margin, so that h = 1e-6 never crosses a ReLU kink."""
    x = rng.standard_normal(shape)
    return np.where(np.abs(x) < margin, np.sign(x + 1e-300) * margin + x, x)


def check_layer(layer: Layer, x: np.ndarray, *, seed=None, params=True):
    """Gradient check of L = Σ forward(x)·R with respect to x and to every parameter."""
    R = np.random.default_rng(99).standard_normal(layer.forward(
        x, rng=None if seed is None else np.random.default_rng(seed)).shape)

    def f():
        rng = None if seed is None else np.random.default_rng(seed)  # same mask every call
        return float(np.sum(layer.forward(x, train=True, rng=rng) * R))

    f()
    dx = layer.backward(R)
    dx = None if dx is None else dx.copy()
    grads = {k: g.copy() for k, g in layer.grads.items()}
    errors = {}
    if dx is not None:
        errors["x"] = relative_error(dx, numerical_gradient(f, x))
    if params:
        for k, p in layer.params.items():
            errors[k] = relative_error(grads[k], numerical_gradient(f, p))
    for k, e in errors.items():
        assert e < TOL, f"{layer!r}: gradient of {k} has relative error {e:.2e}"
    return errors


# ----------------------------------------------------------------------------- gradient checks


def test_linear_gradients():
    rng = np.random.default_rng(0)
    layer = Linear(7, 5, rng=rng, dtype=np.float64)
    layer.params["b"][:] = rng.standard_normal(5)
    errors = check_layer(layer, rng.standard_normal((4, 7)))
    assert set(errors) == {"x", "W", "b"}


def test_big_linear_input_gradient_through_the_transposed_product():
    """Layers with n_in, n_out >= 256 compute dxᵀ = W·dyᵀ and copy it; the result is the same."""
    rng = np.random.default_rng(40)
    layer = Linear(256, 300, rng=rng, dtype=np.float64)
    x, R = rng.standard_normal((3, 256)), rng.standard_normal((3, 300))

    def f():
        return float(np.sum(layer.forward(x) * R))

    f()
    dx = layer.backward(R)
    assert dx.shape == (3, 256) and dx.flags.c_contiguous
    # Two GEMM paths (W·Rᵀ transposed, and R·Wᵀ): they agree to the round-off bound of a sum of
    # 300 products, not to a relative 1e-12 on entries that are mostly cancellation.
    W = layer.params["W"]
    assert_within(dx, R @ W.T, product_bound(R, W.T), label="dx")
    with pytest.raises(AssertionError, match="outside the round-off bound"):  # the bound has teeth
        assert_within(dx, R @ (W + 1e-9).T, product_bound(R, W.T))
    assert relative_error(dx, numerical_gradient(f, x)) < TOL
    idx = rng.choice(layer.params["W"].size, 200, replace=False)
    num = numerical_gradient(f, layer.params["W"], indices=idx)
    assert relative_error(layer.grads["W"].ravel()[idx], num.ravel()[idx]) < TOL
    small = Linear(256, 10, rng=rng, dtype=np.float64)  # the ordinary product
    small.forward(x)
    assert_within(small.backward(R[:, :10]), R[:, :10] @ small.params["W"].T,
                  product_bound(R[:, :10], small.params["W"].T), label="dx (small)")


def test_the_blas_bound_holds_on_cancelling_entries_and_catches_a_wrong_transpose():
    """The shared bound of tests/_blas_bounds.py: every correct product is inside it, on entries
    made to cancel; a transposed operand or an error of 1e-12 in one term is far outside it."""
    rng = np.random.default_rng(41)
    A, B = rng.standard_normal((20, 64)), rng.standard_normal((64, 64))
    A[:, -1] = -(A[:, :-1] @ B[:-1, 0]) / B[-1, 0]  # column 0 of A @ B cancels to round-off
    exact = np.array([[math.fsum(A[i] * B[:, j]) for j in range(64)] for i in range(20)])
    bound = product_bound(A, B)
    assert np.max(np.abs(exact[:, 0])) < 1e-12 < np.min(bound[:, 0]) * 1e3
    for computed in (A @ B, np.einsum("ik,kj->ij", A, B), (B.T @ A.T).T):
        assert_within(computed, exact, bound, computations=1, label="A@B")
    A32, B32 = A.astype(np.float32), B.astype(np.float32)  # float32: the same, with u = 2⁻²⁴
    exact32 = np.array([[math.fsum(A32[i].astype(float) * B32[:, j]) for j in range(64)]
                        for i in range(20)])
    assert_within(A32 @ B32, exact32, product_bound(A32, B32, dtype=np.float32), computations=1)
    with pytest.raises(AssertionError, match="outside the round-off bound"):
        assert_within(A @ B.T, exact, bound)
    wrong = B.copy()
    wrong[3, 5] += 1e-12
    with pytest.raises(AssertionError, match="outside the round-off bound"):
        assert_within(A @ wrong, exact, bound)


def test_linear_without_input_gradient_returns_none_and_fills_grads():
    rng = np.random.default_rng(1)
    full = Linear(6, 3, rng=np.random.default_rng(2), dtype=np.float64)
    first = Linear(6, 3, rng=np.random.default_rng(2), dtype=np.float64, input_grad=False)
    x, dy = rng.standard_normal((5, 6)), rng.standard_normal((5, 3))
    full.forward(x)
    first.forward(x)
    assert full.backward(dy) is not None
    assert first.backward(dy) is None
    for k in ("W", "b"):
        np.testing.assert_array_equal(first.grads[k], full.grads[k])
    check_layer(first, x)  # parameter gradients still exact


def test_linear_sparse_input_matches_dense_and_is_not_densified():
    rng = np.random.default_rng(3)
    dense = np.where(rng.random((6, 20)) < 0.2, rng.standard_normal((6, 20)), 0.0)

    class NoDense(sp.csr_matrix):
        def toarray(self, *a, **k):
            raise AssertionError("densified")

        todense = toarray

    layer = Linear(20, 4, rng=rng, dtype=np.float64, input_grad=False)
    dy = rng.standard_normal((6, 4))
    y_dense = layer.forward(dense).copy()
    layer.backward(dy)
    g_dense = {k: g.copy() for k, g in layer.grads.items()}
    y_sparse = layer.forward(NoDense(dense))
    layer.backward(dy)
    # Sparse-times-dense (SciPy) against a GEMM: equal to the round-off of a sum of 20 products.
    W, b = layer.params["W"], layer.params["b"]
    assert_within(y_sparse, y_dense, product_bound(dense, W, bias=b), label="y")
    assert_within(layer.grads["W"], g_dense["W"], product_bound(dense.T, dy), label="dW")
    np.testing.assert_array_equal(layer.grads["b"], g_dense["b"])  # Σ_rows dy either way


def test_relu_gradients():
    rng = np.random.default_rng(4)
    errors = check_layer(ReLU(), away_from_zero(rng, (5, 8)))
    assert set(errors) == {"x"}


def test_relu_values_and_input_untouched():
    x = np.array([[-2.0, -0.0, 0.0, 1e-30, 3.0]], dtype=np.float32)
    before = x.copy()
    y = ReLU().forward(x)
    np.testing.assert_array_equal(y, np.maximum(before, 0))
    np.testing.assert_array_equal(x, before)


def test_relu_inplace_matches_relu_and_overwrites_its_arguments():
    rng = np.random.default_rng(41)
    x = away_from_zero(rng, (5, 8))
    dy = rng.standard_normal((5, 8))
    plain, inplace = ReLU(), ReLU(inplace=True)
    y_ref = plain.forward(x).copy()
    dx_ref = plain.backward(dy).copy()
    xi, dyi = x.copy(), dy.copy()
    y = inplace.forward(xi)
    assert y is xi
    np.testing.assert_array_equal(y, y_ref)
    dx = inplace.backward(dyi)
    assert dx is dyi
    np.testing.assert_array_equal(dx, dx_ref)
    # gradient check through a copy (the layer overwrites what it is given)
    R = rng.standard_normal((5, 8))

    def f():
        return float(np.sum(inplace.forward(x.copy()) * R))

    f()
    assert relative_error(inplace.backward(R.copy()), numerical_gradient(f, x)) < TOL


def test_softplus_gradients_and_stability():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((4, 6)) * 5
    x[0, :3] = [40.0, -40.0, 0.0]
    check_layer(Softplus(), x)
    big = np.array([[-1000.0, -50.0, 0.0, 50.0, 1000.0]])
    layer = Softplus()
    y = layer.forward(big)
    assert np.all(np.isfinite(y))
    np.testing.assert_allclose(y, np.logaddexp(0.0, big), rtol=1e-15, atol=0)
    d = layer.backward(np.ones_like(big))
    np.testing.assert_allclose(d, [[0.0, np.exp(-50.0) / (1 + np.exp(-50.0)), 0.5,
                                    1 / (1 + np.exp(-50.0)), 1.0]], rtol=1e-15, atol=0)


def test_dropout_gradients_with_fixed_mask():
    rng = np.random.default_rng(6)
    layer = Dropout(0.4)
    x = rng.standard_normal((6, 9))
    check_layer(layer, x, seed=123)
    # the check is not vacuous: some units were dropped and some kept
    y = layer.forward(x, rng=np.random.default_rng(123))
    assert 0 < np.count_nonzero(y == 0) < y.size


def test_flatten_gradients_and_shapes():
    rng = np.random.default_rng(7)
    layer = Flatten()
    x = rng.standard_normal((3, 4, 2, 5))
    assert layer.forward(x).shape == (3, 40)
    check_layer(layer, x)
    assert layer.backward(np.ones((3, 40))).shape == (3, 4, 2, 5)


def _check_loss(fn, arg, *rest):
    """Gradient check of a loss ``fn(arg, *rest) -> (value, grad)`` with respect to ``arg``."""
    value, grad = fn(arg, *rest)
    assert isinstance(value, float)
    num = numerical_gradient(lambda: fn(arg, *rest)[0], arg)
    err = relative_error(grad, num)
    assert err < TOL, f"{fn.__name__}: relative error {err:.2e}"


def test_softmax_cross_entropy_gradient_and_value():
    rng = np.random.default_rng(8)
    z = rng.standard_normal((5, 4)) * 3
    y = rng.integers(0, 4, 5)
    _check_loss(softmax_cross_entropy, z, y)
    value, _ = softmax_cross_entropy(z, y)
    p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    assert value == pytest.approx(-np.mean(np.log(p[np.arange(5), y])), rel=1e-13)
    np.testing.assert_allclose(softmax(z), p, rtol=1e-13)


def test_softmax_cross_entropy_is_stable_for_huge_logits():
    z = np.array([[1000.0, 0.0, -1000.0], [0.0, 1000.0, 999.0]], dtype=np.float32)
    value, grad = softmax_cross_entropy(z, np.array([0, 2]))
    assert np.isfinite(value) and np.all(np.isfinite(grad))
    # row 0: log(1 + e^−1000 + e^−2000) = 0 in float; row 1: 1000 + log(1 + e^−1 + e^−1000) − 999
    expected = (0.0 + (np.log1p(np.exp(-1.0)) + 1.0)) / 2
    assert value == pytest.approx(expected, rel=1e-6)


def test_sigmoid_binary_cross_entropy_gradients_both_shapes():
    rng = np.random.default_rng(9)
    y = rng.integers(0, 2, 7)
    _check_loss(sigmoid_binary_cross_entropy, rng.standard_normal(7) * 3, y)
    z2 = rng.standard_normal((7, 1)) * 3
    _check_loss(sigmoid_binary_cross_entropy, z2, y)
    assert sigmoid_binary_cross_entropy(z2, y)[1].shape == (7, 1)
    value, _ = sigmoid_binary_cross_entropy(z2, y)
    p = 1 / (1 + np.exp(-z2[:, 0]))
    assert value == pytest.approx(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)), rel=1e-12)


def test_sigmoid_is_stable():
    z = np.array([-1000.0, -30.0, 0.0, 30.0, 1000.0], dtype=np.float32)
    s = sigmoid(z)
    assert s.dtype == np.float32 and np.all(np.isfinite(s))
    np.testing.assert_allclose(s, [0.0, np.exp(-30.0), 0.5, 1.0, 1.0], rtol=1e-6, atol=0)
    value, grad = sigmoid_binary_cross_entropy(np.array([1000.0, -1000.0]), np.array([0, 1]))
    assert value == pytest.approx(1000.0) and np.all(np.isfinite(grad))


def test_bernoulli_log_likelihood_gradient_and_sign():
    rng = np.random.default_rng(10)
    logits = rng.standard_normal((4, 6)) * 2
    x = (rng.random((4, 6)) < 0.5).astype(float)
    _check_loss(bernoulli_log_likelihood, logits, x)
    ll, _ = bernoulli_log_likelihood(logits, x)
    p = 1 / (1 + np.exp(-logits))
    expected = np.sum(x * np.log(p) + (1 - x) * np.log(1 - p)) / 4
    assert ll == pytest.approx(expected, rel=1e-12)
    assert ll < 0


def test_gaussian_kl_gradients_and_value():
    rng = np.random.default_rng(11)
    mu, logvar = rng.standard_normal((5, 3)), rng.standard_normal((5, 3))
    kl, (dmu, dlogvar) = gaussian_kl(mu, logvar)
    assert relative_error(dmu, numerical_gradient(lambda: gaussian_kl(mu, logvar)[0], mu)) < TOL
    assert relative_error(dlogvar,
                          numerical_gradient(lambda: gaussian_kl(mu, logvar)[0], logvar)) < TOL
    # the closed form against a Monte Carlo estimate of E_q[log q(z) − log p(z)] for one row
    s = np.exp(logvar[0] / 2)
    z = mu[0] + s * np.random.default_rng(12).standard_normal((200_000, 3))
    log_q = -0.5 * np.sum(((z - mu[0]) / s) ** 2 + logvar[0] + np.log(2 * np.pi), axis=1)
    log_p = -0.5 * np.sum(z ** 2 + np.log(2 * np.pi), axis=1)
    kl_row0 = gaussian_kl(mu[:1], logvar[:1])[0]
    mc = log_q - log_p
    assert abs(mc.mean() - kl_row0) < 5 * mc.std() / np.sqrt(mc.size)
    assert gaussian_kl(np.zeros((2, 3)), np.zeros((2, 3)))[0] == 0.0


# ----------------------------------------------------------------------------- dtypes


@pytest.mark.parametrize("make", [
    lambda rng: Linear(8, 5, rng=rng),
    lambda rng: Linear(8, 5, rng=rng, init="he", input_grad=False),
    lambda rng: ReLU(), lambda rng: ReLU(inplace=True), lambda rng: Softplus(),
    lambda rng: Dropout(0.3), lambda rng: Flatten(),
], ids=["Linear", "Linear-first", "ReLU", "ReLU-inplace", "Softplus", "Dropout", "Flatten"])
def test_float32_layers_stay_float32(make):
    rng = np.random.default_rng(13)
    layer = make(rng)
    x = rng.standard_normal((4, 8)).astype(np.float32)
    y = layer.forward(x, rng=rng)
    assert y.dtype == np.float32
    dx = layer.backward(np.ones_like(y))
    assert dx is None or dx.dtype == np.float32
    for k in layer.params:
        assert layer.params[k].dtype == np.float32 and layer.grads[k].dtype == np.float32


@pytest.mark.parametrize("dtype", [np.float16, np.int32, np.complex128, bool])
def test_non_float_dtypes_are_refused(dtype):
    rng = np.random.default_rng(14)
    with pytest.raises(TypeError, match="float32 or float64"):
        Linear(3, 2, rng=rng, dtype=dtype)
    with pytest.raises(TypeError, match="float32 or float64"):
        ReLU().forward(np.ones((2, 3), dtype=dtype))
    with pytest.raises(TypeError, match="float32 or float64"):
        glorot_uniform((3, 2), rng, dtype)


def test_linear_refuses_another_float_dtype_instead_of_casting():
    layer = Linear(3, 2, rng=np.random.default_rng(15))
    with pytest.raises(TypeError, match="float64.*float32"):
        layer.forward(np.ones((4, 3)))


def test_parameter_free_layer_with_a_dtype_checks_its_input():
    with pytest.raises(TypeError, match="float32"):
        ReLU(dtype=np.float32).forward(np.ones((2, 2)))


# ----------------------------------------------------------------------------- errors


def test_linear_shape_mismatch_names_both_shapes():
    layer = Linear(5, 2, rng=np.random.default_rng(16))
    with pytest.raises(ValueError, match=r"\(N, 5\).*\(3, 4\)"):
        layer.forward(np.ones((3, 4), dtype=np.float32))
    layer.forward(np.ones((3, 5), dtype=np.float32))
    with pytest.raises(ValueError, match=r"\(3, 3\).*\(3, 2\)"):
        layer.backward(np.ones((3, 3), dtype=np.float32))


@pytest.mark.parametrize("bad", [(0, 3), (3, -1), (2.5, 3), (True, 3)])
def test_linear_bad_sizes(bad):
    with pytest.raises(ValueError, match="n_in|n_out"):
        Linear(*bad, rng=np.random.default_rng(0))


def test_linear_bad_init():
    with pytest.raises(ValueError, match="init.*'xavier'"):
        Linear(2, 2, rng=np.random.default_rng(0), init="xavier")


def test_backward_before_forward():
    with pytest.raises(RuntimeError, match="before forward"):
        ReLU().backward(np.ones((1, 1)))


@pytest.mark.parametrize("p", [-0.1, 1.0, 1.5, float("nan"), True, "0.5"])
def test_dropout_bad_p(p):
    with pytest.raises(ValueError, match="p must be in \\[0, 1\\)"):
        Dropout(p)


def test_dropout_needs_rng_in_training_only():
    layer = Dropout(0.5)
    x = np.ones((2, 3), dtype=np.float32)
    with pytest.raises(TypeError, match="rng"):
        layer.forward(x, train=True, rng=None)
    assert layer.forward(x, train=False) is x  # identity at evaluation
    assert Dropout(0.0).forward(x, train=True, rng=None) is x


def test_dropout_keeps_about_1_minus_p_and_preserves_the_mean():
    p = 0.3
    x = np.ones((200, 500), dtype=np.float32)
    y = Dropout(p).forward(x, rng=np.random.default_rng(17))
    kept = np.count_nonzero(y) / y.size
    sd = np.sqrt(p * (1 - p) / y.size)
    assert abs(kept - (1 - p)) < 5 * sd
    np.testing.assert_allclose(np.unique(y), [0.0, 1 / (1 - p)], rtol=1e-6)
    assert abs(float(y.mean()) - 1.0) < 5 * sd / (1 - p)


def test_dropout_mask_is_determined_by_the_seed():
    x = np.ones((10, 10))
    layer = Dropout(0.5)
    a = layer.forward(x, rng=np.random.default_rng(5)).copy()
    b = layer.forward(x, rng=np.random.default_rng(5)).copy()
    c = layer.forward(x, rng=np.random.default_rng(6)).copy()
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_loss_label_errors():
    z = np.zeros((3, 4), dtype=np.float32)
    with pytest.raises(ValueError, match=r"\[0, 4\).*\[0, 4\]"):
        softmax_cross_entropy(z, np.array([0, 1, 4]))
    with pytest.raises(ValueError, match=r"\[-1, 1\]"):
        softmax_cross_entropy(z, np.array([0, 1, -1]))
    with pytest.raises(ValueError, match=r"\(2,\).*\(3, 4\)"):
        softmax_cross_entropy(z, np.array([0, 1]))
    with pytest.raises(TypeError, match="integers"):
        softmax_cross_entropy(z, np.array([0.0, 1.0, 2.0]))
    with pytest.raises(TypeError, match="float32 or float64"):
        softmax_cross_entropy(z.astype(np.int64), np.array([0, 1, 2]))
    with pytest.raises(ValueError, match="0 or 1"):
        sigmoid_binary_cross_entropy(np.zeros(3), np.array([0, 1, 2]))
    with pytest.raises(ValueError, match=r"\(3, 2\)"):
        sigmoid_binary_cross_entropy(np.zeros((3, 2)), np.array([0, 1, 1]))
    with pytest.raises(ValueError, match="does not match"):
        bernoulli_log_likelihood(np.zeros((2, 3)), np.zeros((2, 4)))
    with pytest.raises(ValueError, match="same shape"):
        gaussian_kl(np.zeros((2, 3)), np.zeros((2, 2)))


def test_losses_keep_float32():
    rng = np.random.default_rng(18)
    z = rng.standard_normal((4, 3)).astype(np.float32)
    assert softmax_cross_entropy(z, np.array([0, 1, 2, 0]))[1].dtype == np.float32
    assert sigmoid_binary_cross_entropy(z[:, 0], np.array([0, 1, 1, 0]))[1].dtype == np.float32
    assert bernoulli_log_likelihood(z, (z > 0).astype(np.float32))[1].dtype == np.float32
    _, (dmu, dlv) = gaussian_kl(z, z)
    assert dmu.dtype == np.float32 and dlv.dtype == np.float32


# ----------------------------------------------------------------------------- initialisers


def test_fans():
    assert fans((784, 1000)) == (784, 1000)
    assert fans((5, 5, 3, 64)) == (75, 1600)
    with pytest.raises(ValueError, match="shape"):
        fans((3, 4, 5))


def test_glorot_uniform_range_and_variance():
    rng = np.random.default_rng(19)
    w = glorot_uniform((400, 600), rng, np.float64)
    a = np.sqrt(6 / 1000)
    assert w.min() >= -a and w.max() <= a and w.max() > 0.99 * a
    assert w.var() == pytest.approx(2 / 1000, rel=0.02)  # Var U(−a, a) = a²/3
    k = glorot_uniform((5, 5, 3, 64), rng, np.float32)
    assert k.dtype == np.float32 and np.abs(k).max() <= np.sqrt(6 / (75 + 1600))


def test_he_normal_variance_and_determinism():
    w = he_normal((500, 400), np.random.default_rng(20), np.float64)
    assert w.std() == pytest.approx(np.sqrt(2 / 500), rel=0.01)
    assert abs(w.mean()) < 5 * np.sqrt(2 / 500) / np.sqrt(w.size)
    k = he_normal((5, 5, 64, 128), np.random.default_rng(20), np.float32)
    assert k.dtype == np.float32 and k.std() == pytest.approx(np.sqrt(2 / 1600), rel=0.02)
    np.testing.assert_array_equal(he_normal((3, 3), np.random.default_rng(1)),
                                  he_normal((3, 3), np.random.default_rng(1)))


def test_biases_start_at_zero_and_weights_follow_the_seed():
    a = Linear(6, 4, rng=np.random.default_rng(21))
    b = Linear(6, 4, rng=np.random.default_rng(21))
    np.testing.assert_array_equal(a.params["W"], b.params["W"])
    assert not np.any(a.params["b"])
    assert a.grads["W"] is not a.params["W"] and a.grads["W"].shape == (6, 4)
