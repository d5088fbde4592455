"""Tests of adamlab.nn.conv: Conv2D and MaxPool2D.

* Conv2D agrees with a direct convolution written as loops (float64), for square and non-square
  images, c_in != c_out, kernels 5 and 3, and images smaller than the kernel;
* finite-difference gradient checks in float64 (relative error < 1e-6) for the kernel, the bias and
  the input of Conv2D and for the input of MaxPool2D (on inputs without ties);
* MaxPool2D agrees with a loop over −inf-padded windows, gives ceil(H/2) x ceil(W/2)
  (32→16→8→4), and routes tied gradients to the first maximum in window order;
* dtypes (float32 stays float32, float64 stays float64, no other dtype accepted), reuse of buffers
  across batch shapes, determinism, and clear errors for bad input.
"""

from __future__ import annotations

import numpy as np
import pytest

from _blas_bounds import assert_within, gamma
from adamlab.nn.conv import Conv2D, MaxPool2D
from adamlab.nn.gradcheck import numerical_gradient, relative_error

TOL = 1e-6


def naive_conv(x, W, b):
    """Direct "same" cross-correlation, stride 1: loops over images, output pixels and channels."""
    n, h, w, c_in = x.shape
    k, _, _, c_out = W.shape
    p = k // 2
    y = np.zeros((n, h, w, c_out))
    for a in range(n):
        for r in range(h):
            for q in range(w):
                for o in range(c_out):
                    s = b[o]
                    for i in range(k):
                        for j in range(k):
                            rr, qq = r + i - p, q + j - p
                            if 0 <= rr < h and 0 <= qq < w:
                                for c in range(c_in):
                                    s += x[a, rr, qq, c] * W[i, j, c, o]
                    y[a, r, q, o] = s
    return y


def shifted_conv(x, W):
    """The same cross-correlation as :func:`naive_conv` without bias, as a sum over the k² kernel
    offsets of shifted images times W[i, j]: fast, and independent of the layer's im2col."""
    n, h, w, _ = x.shape
    k = W.shape[0]
    p = k // 2
    xp = np.zeros((n, h + 2 * p, w + 2 * p, x.shape[3]))
    xp[:, p:p + h, p:p + w] = x
    y = np.zeros((n, h, w, W.shape[3]))
    for i in range(k):
        for j in range(k):
            y += xp[:, i:i + h, j:j + w] @ W[i, j]
    return y


def conv_bound(x, W, b, dtype=np.float64):
    """Round-off bound of one computation of the convolution, entry by entry, in any order of
    summation (a GEMM over im2col columns or the loops above): γ_{K+1}·(|x| ⋆ |W| + |b|) with
    K = k²·c_in products per output (tests/_blas_bounds.py)."""
    k, _, c_in, _ = W.shape
    return gamma(k * k * c_in + 3, dtype) * (shifted_conv(np.abs(x), np.abs(W)) + np.abs(b))


def conv_input_grad_bound(dy, W, dtype=np.float64):
    """Round-off bound of dL/dx = dy ⋆ W flipped (a full correlation): γ_{K}·(|dy| ⋆ |W'|), where
    W'[i, j, o, c] = W[k−1−i, k−1−j, c, o] and K = k²·c_out."""
    k, _, _, c_out = W.shape
    flipped = np.abs(W)[::-1, ::-1].transpose(0, 1, 3, 2)
    return gamma(k * k * c_out + 3, dtype) * shifted_conv(np.abs(dy), flipped)


def naive_pool(x, dy=None, size=3, stride=2):
    """Max over −inf-padded windows by loops; with ``dy``, dL/dx routed to the first arg-max too."""
    n, h, w, c = x.shape
    p = size // 2
    ho, wo = -(-h // stride), -(-w // stride)
    xp = np.full((n, h + 2 * size, w + 2 * size, c), -np.inf)
    xp[:, p:p + h, p:p + w] = x
    y = np.zeros((n, ho, wo, c))
    dx = np.zeros(x.shape)
    for a in range(n):
        for r in range(ho):
            for q in range(wo):
                for ch in range(c):
                    window = xp[a, r * stride:r * stride + size, q * stride:q * stride + size, ch]
                    i, j = np.unravel_index(np.argmax(window), window.shape)  # first maximum
                    y[a, r, q, ch] = window[i, j]
                    if dy is not None:
                        dx[a, r * stride + i - p, q * stride + j - p, ch] += dy[a, r, q, ch]
    return y, dx


def conv64(c_in, c_out, kernel=5, seed=0, **kw):
    layer = Conv2D(c_in, c_out, kernel=kernel, rng=np.random.default_rng(seed), dtype=np.float64,
                   **kw)
    layer.params["b"][:] = np.random.default_rng(seed + 1).standard_normal(c_out)
    return layer


# ----------------------------------------------------------------------------- Conv2D forward


@pytest.mark.parametrize("shape, c_out, kernel", [
    ((2, 6, 5, 3), 4, 5),   # non-square image, c_in != c_out
    ((1, 4, 7, 2), 3, 3),
    ((2, 3, 2, 2), 5, 5),   # image smaller than the kernel
    ((1, 1, 1, 3), 2, 5),
    ((2, 5, 4, 3), 2, 1),
])
def test_conv_matches_direct_convolution(shape, c_out, kernel):
    layer = conv64(shape[3], c_out, kernel)
    x = np.random.default_rng(2).standard_normal(shape)
    y = layer.forward(x)
    assert y.shape == shape[:3] + (c_out,)
    W, b = layer.params["W"], layer.params["b"]
    assert_within(y, naive_conv(x, W, b), conv_bound(x, W, b), label="conv")


def test_conv_same_padding_and_orientation_on_a_single_pixel():
    # One 1 in the middle of a zero image: the output is the kernel flipped (cross-correlation).
    layer = conv64(1, 1, 3)
    layer.params["b"][:] = 0
    layer.params["W"][:, :, 0, 0] = np.arange(9.0).reshape(3, 3)
    x = np.zeros((1, 5, 5, 1))
    x[0, 2, 2, 0] = 1.0
    y = layer.forward(x)[0, :, :, 0]
    np.testing.assert_array_equal(y[1:4, 1:4], np.arange(9.0)[::-1].reshape(3, 3))
    assert np.count_nonzero(y) == 8  # the kernel's 0 lands at (3, 3)


def test_conv_he_initialisation():
    layer = Conv2D(64, 128, rng=np.random.default_rng(0))
    W = layer.params["W"]
    assert W.shape == (5, 5, 64, 128) and layer.params["b"].shape == (128,)
    assert abs(W.std() / np.sqrt(2.0 / (25 * 64)) - 1) < 0.02
    assert abs(W.mean()) < 0.01 * W.std()
    np.testing.assert_array_equal(layer.params["b"], 0)


# ----------------------------------------------------------------------------- Conv2D gradients


def check_conv_gradients(shape, c_out, kernel, seed=0):
    layer = conv64(shape[3], c_out, kernel, seed=seed)
    rng = np.random.default_rng(seed + 10)
    x = rng.standard_normal(shape)
    dy = rng.standard_normal(shape[:3] + (c_out,))

    def f():
        return float(np.sum(layer.forward(x) * dy))

    layer.forward(x)
    dx = layer.backward(dy).copy()
    grads = {k: g.copy() for k, g in layer.grads.items()}
    errors = {"x": relative_error(dx, numerical_gradient(f, x))}
    for k, p in layer.params.items():
        errors[k] = relative_error(grads[k], numerical_gradient(f, p))
    return errors


@pytest.mark.parametrize("shape, c_out, kernel", [
    ((2, 6, 5, 3), 4, 5),   # non-square, c_in != c_out
    ((3, 5, 7, 4), 2, 5),
    ((1, 3, 2, 2), 3, 5),   # smaller than the kernel: taps that reach nothing
    ((2, 4, 4, 2), 3, 3),
])
def test_conv_gradient_check(shape, c_out, kernel):
    errors = check_conv_gradients(shape, c_out, kernel)
    assert max(errors.values()) < TOL, errors


def test_conv_without_input_gradient_returns_none_and_same_parameter_grads():
    x = np.random.default_rng(3).standard_normal((2, 5, 6, 3))
    dy = np.random.default_rng(4).standard_normal((2, 5, 6, 4))
    full, first = conv64(3, 4), conv64(3, 4, input_grad=False)
    full.forward(x)
    first.forward(x)
    assert full.backward(dy) is not None
    assert first.backward(dy) is None
    for k in full.grads:
        np.testing.assert_array_equal(first.grads[k], full.grads[k])


def test_conv_grads_overwritten_not_accumulated_and_arrays_kept():
    layer = conv64(2, 3)
    x = np.random.default_rng(5).standard_normal((2, 4, 4, 2))
    dy = np.random.default_rng(6).standard_normal((2, 4, 4, 3))
    ids = {k: id(g) for k, g in layer.grads.items()}
    layer.forward(x)
    layer.backward(dy)
    once = {k: g.copy() for k, g in layer.grads.items()}
    layer.forward(x)
    layer.backward(dy)
    for k, g in layer.grads.items():
        assert id(g) == ids[k]
        np.testing.assert_array_equal(g, once[k])


def test_conv_buffers_follow_the_batch_shape():
    layer = conv64(3, 2)
    rng = np.random.default_rng(7)
    for shape in [(2, 6, 5, 3), (3, 6, 5, 3), (2, 4, 7, 3), (2, 6, 5, 3)]:
        x = rng.standard_normal(shape)
        W, b = layer.params["W"], layer.params["b"]
        assert_within(layer.forward(x), naive_conv(x, W, b), conv_bound(x, W, b), label="conv")


def test_conv_col2im_blocks_cover_the_batch():
    # The input gradient is summed a few images at a time; a batch that is not a multiple of the
    # block must still get every image: compare with the gradient of each image alone.
    layer = conv64(2, 3)
    layer._buffers(1, 4, 4)
    rng = np.random.default_rng(8)
    n = 2 * layer._block + 3
    x = rng.standard_normal((n, 4, 4, 2))
    dy = rng.standard_normal((n, 4, 4, 3))
    layer.forward(x)
    dx = layer.backward(dy).copy()
    bound = conv_input_grad_bound(dy, layer.params["W"])
    for a in (0, layer._block, n - 1):
        layer.forward(x[a:a + 1])
        assert_within(dx[a:a + 1], layer.backward(dy[a:a + 1]), bound[a:a + 1], label=f"dx[{a}]")


# ----------------------------------------------------------------------------- MaxPool2D


@pytest.mark.parametrize("h, w, ho, wo", [(32, 32, 16, 16), (16, 16, 8, 8), (8, 8, 4, 4),
                                          (7, 5, 4, 3), (1, 1, 1, 1), (2, 3, 1, 2)])
def test_pool_output_shape_and_values(h, w, ho, wo):
    pool = MaxPool2D()
    x = np.random.default_rng(9).standard_normal((2, h, w, 3))
    y = pool.forward(x)
    assert y.shape == (2, ho, wo, 3) == pool.output_shape(x.shape)
    np.testing.assert_array_equal(y, naive_pool(x)[0])


def test_pool_cifar_chain_32_16_8_4():
    x = np.random.default_rng(10).standard_normal((1, 32, 32, 2)).astype(np.float32)
    shapes = []
    for _ in range(3):
        x = MaxPool2D(3, 2).forward(x)
        shapes.append(x.shape[1:3])
    assert shapes == [(16, 16), (8, 8), (4, 4)]


@pytest.mark.parametrize("shape", [(2, 6, 6, 3), (2, 7, 5, 2), (1, 4, 9, 1)])
def test_pool_gradient_check(shape):
    pool = MaxPool2D()
    rng = np.random.default_rng(11)
    # Distinct values 0.01 apart: no ties, and h = 1e-6 never changes an arg-max.
    x = rng.permutation(np.prod(shape)).reshape(shape) * 0.01
    dy = rng.standard_normal(pool.output_shape(shape))

    def f():
        return float(np.sum(pool.forward(x) * dy))

    pool.forward(x)
    dx = pool.backward(dy).copy()
    assert relative_error(dx, numerical_gradient(f, x)) < TOL
    np.testing.assert_allclose(dx, naive_pool(x, dy)[1], rtol=1e-12)


@pytest.mark.parametrize("size, stride", [(3, 2), (3, 1), (5, 2), (5, 3), (3, 3), (1, 1)])
def test_pool_ties_go_to_the_first_maximum_in_window_order(size, stride):
    rng = np.random.default_rng(12)
    pool = MaxPool2D(size, stride)
    for shape in [(2, 7, 6, 3), (1, 5, 9, 2), (2, 1, 4, 1)]:
        x = rng.integers(0, 3, shape).astype(np.float64)  # many ties
        y = pool.forward(x)
        dy = rng.standard_normal(y.shape)
        dx = pool.backward(dy)
        y_ref, dx_ref = naive_pool(x, dy, size, stride)
        np.testing.assert_array_equal(y, y_ref)
        np.testing.assert_allclose(dx, dx_ref, rtol=1e-12, atol=1e-15)


def test_pool_all_equal_window_routes_to_top_left():
    pool = MaxPool2D()
    x = np.ones((1, 4, 4, 1))
    pool.forward(x)
    dx = pool.backward(np.ones((1, 2, 2, 1)))[0, :, :, 0]
    # Window (r, q) starts at input (2r − 1, 2q − 1); its first in-image position wins.
    expected = np.zeros((4, 4))
    for r0, q0 in [(0, 0), (0, 1), (1, 0), (1, 1)]:
        expected[max(2 * r0 - 1, 0), max(2 * q0 - 1, 0)] += 1
    np.testing.assert_array_equal(dx, expected)


def test_pool_blocks_cover_the_batch():
    # The layer pools a few images at a time (here 2 of 256 KiB); a batch that is not a multiple
    # of the block must still get every image: compare with each image pooled alone.
    rng = np.random.default_rng(14)
    x = rng.standard_normal((5, 64, 64, 8))
    pool = MaxPool2D()
    y = pool.forward(x).copy()
    assert len(pool._blocks) == 3
    dy = rng.standard_normal(y.shape)
    dx = pool.backward(dy).copy()
    alone = MaxPool2D()
    for a in range(5):
        np.testing.assert_array_equal(alone.forward(x[a:a + 1]), y[a:a + 1])
        np.testing.assert_array_equal(alone.backward(dy[a:a + 1]), dx[a:a + 1])


def test_pool_backward_also_after_evaluation_forward():
    # Model.loss_and_grads(train=False) back-propagates through an evaluation pass.
    pool = MaxPool2D()
    x = np.random.default_rng(13).permutation(16).reshape(1, 4, 4, 1).astype(np.float64)
    dy = np.arange(1.0, 5.0).reshape(1, 2, 2, 1)
    pool.forward(x, train=False)
    np.testing.assert_array_equal(pool.backward(dy), naive_pool(x, dy)[1])


# ----------------------------------------------------------------------------- dtypes


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtypes_are_kept(dtype):
    rng = np.random.default_rng(14)
    conv = Conv2D(3, 4, rng=rng, dtype=dtype)
    pool = MaxPool2D()
    assert all(a.dtype == dtype for a in (*conv.params.values(), *conv.grads.values()))
    x = rng.standard_normal((2, 8, 6, 3)).astype(dtype)
    y = conv.forward(x)
    z = pool.forward(y)
    assert y.dtype == dtype and z.dtype == dtype
    dz = pool.backward(np.ones_like(z))
    dx = conv.backward(dz)
    assert dz.dtype == dtype and dx.dtype == dtype
    assert all(g.dtype == dtype for g in conv.grads.values())


def test_float32_conv_is_close_to_float64():
    rng = np.random.default_rng(15)
    c32 = Conv2D(3, 4, rng=np.random.default_rng(0), dtype=np.float32)
    c64 = Conv2D(3, 4, rng=np.random.default_rng(0), dtype=np.float64)
    x = rng.standard_normal((2, 6, 6, 3))
    y32 = c32.forward(x.astype(np.float32))
    np.testing.assert_allclose(y32, c64.forward(x), rtol=1e-5, atol=1e-5)


def test_other_dtypes_are_rejected():
    rng = np.random.default_rng(16)
    with pytest.raises(TypeError, match="float16"):
        Conv2D(3, 4, rng=rng, dtype=np.float16)
    conv = Conv2D(3, 4, rng=rng, dtype=np.float32)
    with pytest.raises(TypeError, match="float64"):
        conv.forward(np.zeros((1, 4, 4, 3)))  # no silent cast
    with pytest.raises(TypeError, match="int64"):
        MaxPool2D().forward(np.zeros((1, 4, 4, 3), dtype=np.int64))
    conv.forward(np.zeros((1, 4, 4, 3), dtype=np.float32))
    with pytest.raises(TypeError, match="float64"):
        conv.backward(np.zeros((1, 4, 4, 4)))


# ----------------------------------------------------------------------------- determinism


def test_same_seed_same_weights_same_outputs():
    x = np.random.default_rng(17).standard_normal((2, 5, 5, 3)).astype(np.float32)
    a = Conv2D(3, 4, rng=np.random.default_rng(1))
    b = Conv2D(3, 4, rng=np.random.default_rng(1))
    c = Conv2D(3, 4, rng=np.random.default_rng(2))
    np.testing.assert_array_equal(a.params["W"], b.params["W"])
    assert not np.array_equal(a.params["W"], c.params["W"])
    ya = a.forward(x).copy()
    np.testing.assert_array_equal(ya, b.forward(x))
    np.testing.assert_array_equal(ya, a.forward(x))


# ----------------------------------------------------------------------------- errors


def test_conv_input_errors_name_both_shapes():
    conv = Conv2D(3, 4, rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match=r"\(N, H, W, 3\).*\(2, 8, 8, 5\)"):
        conv.forward(np.zeros((2, 8, 8, 5), dtype=np.float32))
    with pytest.raises(ValueError, match=r"\(N, H, W, 3\).*\(8, 8, 3\)"):
        conv.forward(np.zeros((8, 8, 3), dtype=np.float32))
    with pytest.raises(ValueError, match="empty"):
        conv.forward(np.zeros((0, 8, 8, 3), dtype=np.float32))
    with pytest.raises(ValueError, match=r"\(N, H, W, 3\).*list"):
        conv.forward([[1.0]])


def test_conv_backward_errors():
    conv = Conv2D(3, 4, rng=np.random.default_rng(0))
    with pytest.raises(RuntimeError, match="forward"):
        conv.backward(np.zeros((1, 4, 4, 4), dtype=np.float32))
    conv.forward(np.zeros((1, 4, 4, 3), dtype=np.float32))
    with pytest.raises(ValueError, match=r"\(1, 4, 4, 4\).*\(1, 4, 4, 3\)"):
        conv.backward(np.zeros((1, 4, 4, 3), dtype=np.float32))
    conv.backward(np.zeros((1, 4, 4, 4), dtype=np.float32))
    with pytest.raises(RuntimeError, match="one backward per forward"):
        conv.backward(np.zeros((1, 4, 4, 4), dtype=np.float32))


@pytest.mark.parametrize("kwargs, match", [
    ({"c_in": 0}, "c_in must be a positive integer, got 0"),
    ({"c_out": 2.5}, "c_out must be a positive integer, got 2.5"),
    ({"kernel": 4}, "kernel must be odd"),
    ({"kernel": True}, "kernel must be a positive integer, got True"),
])
def test_conv_constructor_errors(kwargs, match):
    args = {"c_in": 3, "c_out": 4, **kwargs}
    with pytest.raises(ValueError, match=match):
        Conv2D(args.pop("c_in"), args.pop("c_out"), rng=np.random.default_rng(0), **args)


def test_conv_needs_a_generator():
    with pytest.raises(TypeError, match="rng must be a numpy.random.Generator"):
        Conv2D(3, 4, rng=None)


def test_pool_errors():
    with pytest.raises(ValueError, match="size must be odd"):
        MaxPool2D(2, 2)
    with pytest.raises(ValueError, match="stride must be at most size"):
        MaxPool2D(3, 4)
    with pytest.raises(ValueError, match="stride must be a positive integer, got 0"):
        MaxPool2D(3, 0)
    pool = MaxPool2D()
    with pytest.raises(ValueError, match=r"\(N, H, W, C\).*\(4, 4\)"):
        pool.forward(np.zeros((4, 4)))
    with pytest.raises(RuntimeError, match="forward"):
        pool.backward(np.zeros((1, 2, 2, 1)))
    pool.forward(np.zeros((1, 4, 4, 1)))
    with pytest.raises(ValueError, match=r"\(1, 2, 2, 1\).*\(1, 4, 4, 1\)"):
        pool.backward(np.zeros((1, 4, 4, 1)))
    with pytest.raises(TypeError, match="float32"):
        pool.backward(np.zeros((1, 2, 2, 1), dtype=np.float32))
