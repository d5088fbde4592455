"""Tests of adamlab.models.CNN (§6.3's c64-c64-c128-1000 network).

* a finite-difference gradient check in float64 of every parameter of a reduced network
  (8x8x3 input, channels (2, 3, 4), FC 5), with input and FC dropout on a fixed mask and weight
  decay (relative error < 1e-6);
* the network is conv → ReLU → pool per stage: its output equals a reference built from direct
  loops in that order (the layers apply the ReLU after the pool, which is the same function);
* the paper's sizes: 32→16→8→4, parameter shapes, float32 throughout (every layer output, the
  loss gradient and the parameters after an Adam step), float64 inputs cast once;
* determinism for a fixed seed; evaluation without dropout;
* clear errors for bad input and bad hyper-parameters;
* the network learns: a few dozen Adam steps take a small stripe-orientation problem from chance
  to near-perfect held-out accuracy.
"""

from __future__ import annotations

import numpy as np
import pytest

from adamlab.models.cnn import CNN
from adamlab.nn.gradcheck import numerical_gradient, relative_error
from adamlab.nn.losses import softmax_cross_entropy
from adamlab.optim import Adam

from _blas_bounds import assert_within, gamma, product_bound
from test_nn_conv import conv_bound, naive_conv, naive_pool, shifted_conv

TOL = 1e-6


def small_cnn(dtype=np.float64, seed=0, **kw):
    return CNN((8, 8, 3), (2, 3, 4), 5, n_classes=3, rng=np.random.default_rng(seed),
               dtype=dtype, **kw)


def test_gradient_check_with_dropout_and_weight_decay():
    model = small_cnn(input_dropout=0.2, fc_dropout=0.3, weight_decay=0.01)
    rng = np.random.default_rng(1)
    for key, p in model.params.items():  # non-zero biases, so that they matter everywhere
        if key.endswith(".b"):
            p[:] = 0.1 * rng.standard_normal(p.shape)
    x = rng.standard_normal((4, 8, 8, 3))
    y = np.array([0, 2, 1, 2])

    def f():  # the same dropout masks on every call
        return model.loss_and_grads(x, y, rng=np.random.default_rng(5))

    f()
    grads = {k: g.copy() for k, g in model.grads.items()}
    assert set(grads) == {f"{n}.{p}" for n in ("conv1", "conv2", "conv3", "fc1", "fc2")
                          for p in ("W", "b")}
    dropped = model.layers["drop_in"]._mask
    assert 0 < np.count_nonzero(dropped == 0) < dropped.size  # the masks really drop something
    errors = {k: relative_error(grads[k], numerical_gradient(f, p))
              for k, p in model.params.items()}
    assert max(errors.values()) < TOL, errors


def reference_logits(model, x, loops=True):
    """The network by loops and plain products, with the round-off bound of one computation of
    it in any order of summation: each conv or dense layer adds its own γ·(|input|·|W| + |b|) and
    carries the error of its input through |W|; ReLU and max-pooling do not enlarge an error (both
    are 1-Lipschitz entry by entry). ``(logits, bound)``; ``loops=False`` convolves by shifted
    products instead of loops (faster; the bound is the same)."""
    h, err = x, np.zeros(x.shape)
    for i in range(1, len(model.channels) + 1):
        W, b = model.params[f"conv{i}.W"], model.params[f"conv{i}.b"]
        err = shifted_conv(err, np.abs(W)) + conv_bound(np.abs(h) + err, W, b)
        h = naive_conv(h, W, b) if loops else shifted_conv(h, W) + b
        h = naive_pool(np.maximum(h, 0))[0]
        err = naive_pool(err)[0]
    h, err = h.reshape(len(x), -1), err.reshape(len(x), -1)
    for name, relu in (("fc1", True), ("fc2", False)):
        W, b = model.params[f"{name}.W"], model.params[f"{name}.b"]
        err = err @ np.abs(W) + product_bound(np.abs(h) + err, W, bias=b)
        h = h @ W + b
        h = np.maximum(h, 0) if relu else h
    return h, err


def test_forward_is_conv_relu_pool_per_stage():
    model = small_cnn()
    x = np.random.default_rng(2).standard_normal((3, 8, 8, 3))
    logits, bound = reference_logits(model, x)
    assert_within(model.forward(x, train=False), logits, bound, label="logits")


def test_paper_sizes():
    model = CNN(rng=np.random.default_rng(0))
    shapes = {k: p.shape for k, p in model.params.items()}
    assert shapes == {
        "conv1.W": (5, 5, 3, 64), "conv1.b": (64,), "conv2.W": (5, 5, 64, 64), "conv2.b": (64,),
        "conv3.W": (5, 5, 64, 128), "conv3.b": (128,), "fc1.W": (4 * 4 * 128, 1000),
        "fc1.b": (1000,), "fc2.W": (1000, 10), "fc2.b": (10,)}
    h = np.random.default_rng(1).standard_normal((2, 32, 32, 3)).astype(np.float32)
    sizes = []
    for name, layer in model.layers.items():
        h = layer.forward(h, train=True)
        assert h.dtype == np.float32, name
        if name.startswith("pool"):
            sizes.append(h.shape[1:])
    assert sizes == [(16, 16, 64), (8, 8, 64), (4, 4, 128)]
    assert h.shape == (2, 10)


def test_float32_training_step_stays_float32():
    model = CNN((16, 16, 3), (4, 4, 8), 12, input_dropout=0.1, fc_dropout=0.5,
                weight_decay=1e-3, rng=np.random.default_rng(0))
    rng = np.random.default_rng(1)
    x = rng.standard_normal((5, 16, 16, 3))  # float64: cast once by the model
    y = rng.integers(0, 10, 5)
    loss = model.loss_and_grads(x, y, rng=rng)
    assert isinstance(loss, float) and np.isfinite(loss)
    for name, layer in model.layers.items():
        for arrays in (layer.params, layer.grads):
            assert all(a.dtype == np.float32 for a in arrays.values()), name
    # every intermediate output (the layers keep their outputs in buffers)
    h = x.astype(np.float32)
    for name, layer in model.layers.items():
        h = layer.forward(h, train=True, rng=rng)
        assert h.dtype == np.float32, name
    before = {k: p.copy() for k, p in model.params.items()}
    Adam(lr=1e-3).update(model.params, model.grads)
    for k, p in model.params.items():
        assert p.dtype == np.float32 and p is model.layers[k.split(".")[0]].params[k.split(".")[1]]
        assert not np.array_equal(p, before[k]), k
    assert model.predict_proba(x).dtype == np.float32


def test_determinism_and_evaluation_without_dropout():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((4, 8, 8, 3))
    y = np.array([0, 1, 2, 1])
    a, b = small_cnn(fc_dropout=0.5, seed=7), small_cnn(fc_dropout=0.5, seed=7)
    for k in a.params:
        np.testing.assert_array_equal(a.params[k], b.params[k])
    la = a.loss_and_grads(x, y, rng=np.random.default_rng(11))
    ga = {k: g.copy() for k, g in a.grads.items()}
    assert la == b.loss_and_grads(x, y, rng=np.random.default_rng(11))
    for k in ga:
        np.testing.assert_array_equal(ga[k], b.grads[k])
    assert a.loss_and_grads(x, y, rng=np.random.default_rng(12)) != la  # another mask
    # evaluation: no dropout, no rng needed, the same answer every time
    p1 = a.predict_proba(x).copy()
    np.testing.assert_array_equal(p1, a.predict_proba(x))
    np.testing.assert_allclose(p1.sum(axis=1), 1.0, rtol=1e-12)
    np.testing.assert_array_equal(a.predict(x), np.argmax(p1, axis=1))
    assert a.predict(x).shape == (4,)
    np.testing.assert_allclose(a.loss_and_grads(x, y, rng=None, train=False),
                               softmax_cross_entropy(np.log(p1), y)[0], rtol=1e-12)


def test_input_errors_name_both_shapes():
    model = small_cnn()
    y = np.zeros(2, dtype=int)
    with pytest.raises(ValueError, match=r"\(N, 8, 8, 3\).*\(2, 8, 8, 1\)"):
        model.loss_and_grads(np.zeros((2, 8, 8, 1)), y, rng=None)
    with pytest.raises(ValueError, match=r"\(N, 8, 8, 3\).*\(2, 192\)"):
        model.predict(np.zeros((2, 192)))
    with pytest.raises(ValueError, match=r"\(N, 8, 8, 3\).*\(2, 6, 8, 3\)"):
        model.predict(np.zeros((2, 6, 8, 3)))
    with pytest.raises(ValueError, match="different numbers of examples"):
        model.loss_and_grads(np.zeros((3, 8, 8, 3)), y, rng=None)
    with pytest.raises(TypeError, match="floating-point"):
        model.predict(np.zeros((2, 8, 8, 3), dtype=np.uint8))
    dropout = small_cnn(input_dropout=0.5)
    with pytest.raises(TypeError, match="rng"):
        dropout.loss_and_grads(np.zeros((2, 8, 8, 3)), y, rng=None)


@pytest.mark.parametrize("kwargs, error, match", [
    ({"input_shape": (8, 8)}, ValueError, r"input_shape must be \(H, W, C\).*\(8, 8\)"),
    ({"channels": ()}, ValueError, "channels must be a non-empty sequence"),
    ({"channels": (4, 0)}, ValueError, r"channels.*\(4, 0\)"),
    ({"fc": 0}, ValueError, "fc must be a positive integer, got 0"),
    ({"n_classes": 1.5}, ValueError, "n_classes must be a positive integer, got 1.5"),
    ({"input_dropout": 1.0}, ValueError, r"input_dropout must be in \[0, 1\), got 1.0"),
    ({"fc_dropout": -0.1}, ValueError, r"fc_dropout must be in \[0, 1\), got -0.1"),
    ({"weight_decay": -1.0}, ValueError, "weight_decay must be a finite number >= 0, got -1.0"),
    ({"dtype": np.float16}, TypeError, "float16"),
])
def test_constructor_errors(kwargs, error, match):
    args = {"input_shape": (8, 8, 3), "channels": (2, 3, 4), "fc": 5, **kwargs}
    with pytest.raises(error, match=match):
        CNN(rng=np.random.default_rng(0), **args)


def stripes(n, rng):
    """8x8x3 images of horizontal stripes, vertical stripes or a checkerboard (labels 0, 1, 2),
    random phase, random colour, Gaussian noise."""
    y = rng.integers(0, 3, n)
    r = np.arange(8)
    patterns = [lambda ph: np.broadcast_to((r[:, None] + ph) % 2, (8, 8)),
                lambda ph: np.broadcast_to((r[None, :] + ph) % 2, (8, 8)),
                lambda ph: (r[:, None] + r[None, :] + ph) % 2]
    x = np.stack([patterns[k](rng.integers(0, 2))[:, :, None] * rng.uniform(0.5, 1.5, 3)
                  for k in y])
    x += 0.3 * rng.standard_normal(x.shape)
    return x.astype(np.float32), y


def test_cnn_learns_stripe_orientation():
    rng = np.random.default_rng(0)
    x_train, y_train = stripes(256, rng)
    x_test, y_test = stripes(256, rng)
    model = CNN((8, 8, 3), (4, 4, 8), 16, n_classes=3, rng=rng)
    opt = Adam(lr=1e-2)

    def test_loss():
        return softmax_cross_entropy(model.forward(x_test, train=False), y_test)[0]

    before = test_loss()
    assert before > 0.8  # about chance (ln 3 = 1.10) at the start
    for _ in range(30):
        i = rng.integers(0, 256, 32)
        model.loss_and_grads(x_train[i], y_train[i], rng=rng)
        opt.update(model.params, model.grads)
    after = test_loss()
    assert after < 0.25 and after < 0.2 * before, (before, after)
    assert np.mean(model.predict(x_test) == y_test) >= 0.95


def test_prediction_in_chunks_equals_one_batch():
    model = small_cnn(fc_dropout=0.5)
    x = np.random.default_rng(4).standard_normal((CNN.EVAL_BATCH + 5, 8, 8, 3))
    proba = model.predict_proba(x)
    assert proba.shape == (CNN.EVAL_BATCH + 5, 3)
    logits = model.forward(x, train=False)
    expected = np.exp(logits - logits.max(axis=1, keepdims=True))
    expected /= expected.sum(axis=1, keepdims=True)
    # Chunks of EVAL_BATCH and one batch run GEMMs of other shapes: their logits differ by up to
    # twice the round-off bound δ of the network, and softmax turns a shift of at most δ per
    # logit into a relative change of at most e^(2δ) − 1, plus its own rounding (C + 5 operations).
    _, bound = reference_logits(model, x, loops=False)
    delta = 2 * bound.max(axis=1, keepdims=True)
    assert_within(proba, expected, expected * (np.expm1(2 * delta) + 2 * gamma(3 + 5)),
                  computations=1, label="proba")
    np.testing.assert_array_equal(model.predict(x), np.argmax(proba, axis=1))
