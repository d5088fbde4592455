"""Tests for adamlab.models: gradient checks (float64), dtypes, weight decay, sparse input,
determinism, errors, and that each model learns a small problem with Adam."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from _blas_bounds import gamma, product_bound, unit_roundoff
from adamlab.models import MLP, VAE, LogisticRegression, Model, SparseLogisticRegression
from adamlab.nn import numerical_gradient, relative_error
from adamlab.optim import Adam

TOL = 1e-6


class NoDenseCSR(sp.csr_matrix):
    """A CSR matrix that fails the test if anything densifies it."""

    def toarray(self, *args, **kwargs):
        raise AssertionError("the sparse input was densified")

    todense = toarray


def sparse_batch(rng, n, d, density=0.1, dtype=np.float64):
    x = sp.random(n, d, density=density, format="csr", dtype=dtype, rng=rng)
    x.data[:] = 1.0  # binary bag-of-words features, as adamlab.data.imdb gives
    return x


# Small versions of the paper's architectures and matching data, float64 for gradient checks.
def make_logistic(dtype, seed=0, **kw):
    rng = np.random.default_rng(seed)
    model = LogisticRegression(12, 5, rng=rng, dtype=dtype, **kw)
    return model, rng.standard_normal((7, 12)), rng.integers(0, 5, 7)


def make_sparse(dtype, seed=0, **kw):
    rng = np.random.default_rng(seed)
    model = SparseLogisticRegression(40, rng=rng, dtype=dtype, **kw)
    return model, sparse_batch(rng, 9, 40, 0.2, dtype), rng.integers(0, 2, 9)


def make_mlp(dtype, seed=0, **kw):
    rng = np.random.default_rng(seed)
    model = MLP((12, 9, 7, 4), rng=rng, dtype=dtype, **kw)
    return model, rng.standard_normal((6, 12)), rng.integers(0, 4, 6)


def make_vae(dtype, seed=0, **kw):
    rng = np.random.default_rng(seed)
    model = VAE(10, 8, 3, rng=rng, dtype=dtype, **kw)
    return model, rng.random((5, 10)), None


MAKERS = {"logistic": make_logistic, "sparse": make_sparse, "mlp": make_mlp, "vae": make_vae}
DECAYING = {"logistic": make_logistic, "sparse": make_sparse, "mlp": make_mlp}


def randomize_biases(model, rng):
    """Non-zero biases: with zero biases a dropped-out input row puts a ReLU exactly at its kink."""
    for k, p in model.params.items():
        if k.endswith(".b"):
            p[:] = rng.standard_normal(p.shape) * 0.5


def check_model(model, x, y, seed=7):
    """Every parameter gradient against central differences, with the randomness fixed."""
    def f():
        return model.loss_and_grads(x, y, rng=np.random.default_rng(seed))

    f()
    analytic = {k: g.copy() for k, g in model.grads.items()}
    for k, p in model.params.items():
        err = relative_error(analytic[k], numerical_gradient(f, p))
        assert err < TOL, f"{type(model).__name__}: gradient of {k} has relative error {err:.2e}"
        assert np.any(analytic[k] != 0), f"{k}: gradient is zero, the check proves nothing"


# ----------------------------------------------------------------------------- gradient checks


def test_logistic_regression_gradients_with_weight_decay():
    model, x, y = make_logistic(np.float64, weight_decay=0.3)
    randomize_biases(model, np.random.default_rng(1))
    check_model(model, x, y)


def test_sparse_logistic_regression_gradients_with_input_dropout_and_decay():
    model, x, y = make_sparse(np.float64, input_dropout=0.3, weight_decay=0.2)
    randomize_biases(model, np.random.default_rng(1))
    check_model(model, x, y)


def test_mlp_gradients_plain():
    model, x, y = make_mlp(np.float64)
    randomize_biases(model, np.random.default_rng(1))
    check_model(model, x, y)


def test_mlp_gradients_with_dropout_and_weight_decay():
    model, x, y = make_mlp(np.float64, input_dropout=0.2, hidden_dropout=0.3, weight_decay=0.1)
    randomize_biases(model, np.random.default_rng(1))
    assert {"drop0", "drop1", "drop2"} <= set(model.layers)
    check_model(model, x, y)


def test_vae_gradients_with_fixed_noise():
    model, x, _ = make_vae(np.float64)
    randomize_biases(model, np.random.default_rng(1))
    check_model(model, x, None)


# ----------------------------------------------------------------------------- dtypes


def record_dtypes(model):
    """Wrap every layer so that the dtypes of its outputs and input gradients are recorded."""
    seen = []
    for name, layer in model.layers.items():
        def wrap(fn, tag):
            def inner(*args, **kwargs):
                out = fn(*args, **kwargs)
                seen.append((tag, None if out is None else out.dtype))  # None: no input gradient
                return out
            return inner
        layer.forward = wrap(layer.forward, f"{name}.forward")
        layer.backward = wrap(layer.backward, f"{name}.backward")
    return seen


@pytest.mark.parametrize("kind", MAKERS)
def test_float32_step_keeps_float32_everywhere(kind):
    kw = {"vae": {}}.get(kind, {"weight_decay": 1e-3})
    if kind in ("sparse", "mlp"):
        kw["input_dropout"] = 0.2
    if kind == "mlp":
        kw["hidden_dropout"] = 0.2
    model, x, y = MAKERS[kind](np.float32, **kw)
    seen = record_dtypes(model)
    opt = Adam()
    loss = model.loss_and_grads(x, y, rng=np.random.default_rng(0))  # float64 x: cast once
    opt.update(model.params, model.grads)
    assert isinstance(loss, float) and np.isfinite(loss)
    tags = {tag for tag, _ in seen}
    assert {f"{n}.forward" for n in model.layers} <= tags
    assert {f"{n}.backward" for n, layer in model.layers.items() if layer.params} <= tags
    bad = [(tag, dt) for tag, dt in seen if dt not in (None, np.float32)]
    assert not bad, f"non-float32 outputs: {bad}"
    state = opt.state_dict()["state"]
    for k in model.params:
        assert model.params[k].dtype == np.float32, k
        assert model.grads[k].dtype == np.float32, k
        assert all(a.dtype == np.float32 for a in state[k].values()), k
    assert model.predict_proba(x).dtype == np.float32


def test_float64_input_is_cast_once_to_the_model_dtype():
    model, x, y = make_mlp(np.float32)
    a = model.loss_and_grads(x, y, rng=None)
    b = model.loss_and_grads(x.astype(np.float32), y, rng=None)
    assert a == b


# ----------------------------------------------------------------------------- structure


def test_params_and_grads_are_the_layers_arrays():
    model, x, y = make_mlp(np.float32)
    assert list(model.params) == ["fc1.W", "fc1.b", "fc2.W", "fc2.b", "fc3.W", "fc3.b"]
    assert model.params["fc2.W"] is model.layers["fc2"].params["W"]
    assert model.grads["fc2.W"] is model.layers["fc2"].grads["W"]
    before = model.layers["fc2"].params["W"].copy()
    model.loss_and_grads(x, y, rng=None)
    Adam(lr=0.1).update(model.params, model.grads)
    assert not np.array_equal(model.layers["fc2"].params["W"], before)


def test_default_architectures():
    rng = np.random.default_rng(0)
    mlp = MLP(rng=rng)
    assert [mlp.params[f"fc{i}.W"].shape for i in (1, 2, 3)] == [(784, 1000), (1000, 1000),
                                                                (1000, 10)]
    assert mlp.n_params == 784 * 1000 + 1000 + 1000 * 1000 + 1000 + 1000 * 10 + 10
    assert mlp.layers["fc1"].input_grad is False and mlp.layers["fc2"].input_grad is True
    assert LogisticRegression(rng=rng).params["fc.W"].shape == (784, 10)
    assert SparseLogisticRegression(rng=rng).params["fc.W"].shape == (10000, 1)
    vae = VAE(rng=rng)
    assert {k: v.shape for k, v in vae.params.items() if k.endswith(".W")} == {
        "enc.W": (784, 500), "mu.W": (500, 50), "logvar.W": (500, 50), "dec.W": (50, 500),
        "out.W": (500, 784)}
    assert all(p.dtype == np.float32 for m in (mlp, vae) for p in m.params.values())


def test_prediction_shapes_and_probabilities():
    model, x, _ = make_mlp(np.float64, hidden_dropout=0.5)
    p = model.predict_proba(x)
    assert p.shape == (6, 4)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-12)
    np.testing.assert_array_equal(model.predict(x), p.argmax(axis=1))
    np.testing.assert_array_equal(model.predict_proba(x), p)  # evaluation: no dropout
    sparse, xs, _ = make_sparse(np.float64, input_dropout=0.5)
    ps = sparse.predict_proba(xs)
    assert ps.shape == (9,) and np.all((ps > 0) & (ps < 1))
    np.testing.assert_array_equal(sparse.predict(xs), (ps > 0.5).astype(int))
    vae, xv, _ = make_vae(np.float64)
    r = vae.predict(xv)
    assert r.shape == (5, 10) and np.all((r > 0) & (r < 1))


# ----------------------------------------------------------------------------- weight decay


@pytest.mark.parametrize("kind", DECAYING)
def test_weight_decay_adds_half_lambda_norm_and_lambda_w(kind):
    lam = 0.25
    plain, x, y = DECAYING[kind](np.float64)
    decayed, _, _ = DECAYING[kind](np.float64, weight_decay=lam)
    l0 = plain.loss_and_grads(x, y, rng=None)
    l1 = decayed.loss_and_grads(x, y, rng=None)
    weights = [k for k in plain.params if k.endswith(".W")]
    assert weights and decayed.decayed == weights
    norm2 = sum(float(np.sum(plain.params[k] ** 2)) for k in weights)
    # Σ W² by a BLAS dot in the model and by np.sum here: each within γ_n·Σ W² (n terms, no
    # cancellation); adding it to the loss and subtracting the loss again rounds twice more.
    n = sum(plain.params[k].size for k in weights) + len(weights)
    bound = 0.5 * lam * norm2 * 2 * gamma(n + 3) + 2 * unit_roundoff() * (abs(l1) + abs(l0))
    assert abs((l1 - l0) - 0.5 * lam * norm2) <= bound
    for k in plain.params:
        expected = plain.grads[k] + (lam * plain.params[k] if k in weights else 0.0)
        np.testing.assert_allclose(decayed.grads[k], expected, rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("lam", [-0.1, float("nan"), float("inf"), "0.1", True])
def test_bad_weight_decay(lam):
    with pytest.raises(ValueError, match="weight_decay"):
        MLP((4, 3, 2), weight_decay=lam, rng=np.random.default_rng(0))


# ----------------------------------------------------------------------------- sparse input


def test_sparse_model_never_densifies_its_input():
    rng = np.random.default_rng(2)
    x = NoDenseCSR(sparse_batch(rng, 50, 300, 0.05, np.float32))
    y = rng.integers(0, 2, 50)
    model = SparseLogisticRegression(300, input_dropout=0.5, weight_decay=1e-3, rng=rng)
    opt = Adam(lr=0.05)
    for _ in range(3):
        model.loss_and_grads(x, y, rng=rng)
        opt.update(model.params, model.grads)
    assert model.predict_proba(x).shape == (50,)
    assert model.predict(x).shape == (50,)


def test_sparse_input_dropout_drops_stored_entries():
    """The loss equals the dense computation on x with stored entries dropped by the rng's mask."""
    p, seed = 0.4, 11
    model, x, y = make_sparse(np.float64, input_dropout=p)
    randomize_biases(model, np.random.default_rng(3))
    keep = np.random.default_rng(seed).random(x.nnz) < 1 - p
    assert 0 < keep.sum() < x.nnz
    dropped = sp.csr_matrix((x.data * keep / (1 - p), x.indices, x.indptr), shape=x.shape)
    z = dropped.toarray() @ model.params["fc.W"][:, 0] + model.params["fc.b"][0]
    expected = np.mean(np.logaddexp(0, z) - y * z)
    got = model.loss_and_grads(x, y, rng=np.random.default_rng(seed))
    assert abs(got - expected) <= bce_bound(dropped.toarray(), model, z, y)
    # without dropout (evaluation) sparse and dense input give the same loss
    a = model.loss_and_grads(x, y, rng=None, train=False)
    b = model.loss_and_grads(x.toarray(), y, rng=None, train=False)
    z = x.toarray() @ model.params["fc.W"][:, 0] + model.params["fc.b"][0]
    assert abs(a - b) <= bce_bound(x.toarray(), model, z, y)


def bce_bound(x, model, z, y):
    """Round-off bound on the difference of two computations of the mean of softplus(z) − y·z
    with z = x·w + b (a sparse product against a GEMM): each z is within δ = γ_{k+1}·(|x|·|w| + |b|)
    (tests/_blas_bounds.py), the loss moves by at most |σ(z) − y|·|Δz| ≤ |Δz| per example, and
    softplus, the product and the mean round within a few units of their terms."""
    delta = product_bound(x, model.params["fc.W"], bias=model.params["fc.b"])[:, 0]
    terms = np.abs(np.logaddexp(0, z)) + np.abs(y * z)
    return float(np.mean(2 * delta) + 2 * gamma(8 + len(z)) * np.mean(terms))


def test_sparse_count_features_are_cast_to_the_model_dtype():
    rng = np.random.default_rng(4)
    counts = sp.random(8, 30, density=0.2, format="csr", rng=rng,
                       data_rvs=lambda n: rng.integers(1, 5, n)).astype(np.int32)
    model = SparseLogisticRegression(30, rng=rng)
    assert np.isfinite(model.loss_and_grads(counts, rng.integers(0, 2, 8), rng=rng))
    assert model.grads["fc.W"].dtype == np.float32


# ----------------------------------------------------------------------------- determinism


@pytest.mark.parametrize("kind", MAKERS)
def test_same_seed_same_training(kind):
    kw = {"vae": {}, "logistic": {}}.get(kind, {"input_dropout": 0.3})

    def run(seed):
        model, x, y = MAKERS[kind](np.float32, seed=seed, **kw)
        opt, rng = Adam(lr=0.01), np.random.default_rng(seed + 100)
        losses = []
        for _ in range(3):
            losses.append(model.loss_and_grads(x, y, rng=rng))
            opt.update(model.params, model.grads)
        return losses, {k: v.copy() for k, v in model.params.items()}

    (la, pa), (lb, pb), (lc, _) = run(0), run(0), run(1)
    assert la == lb and la != lc
    for k in pa:
        np.testing.assert_array_equal(pa[k], pb[k])


# ----------------------------------------------------------------------------- errors


def test_model_errors_name_the_problem():
    rng = np.random.default_rng(5)
    mlp = MLP((6, 5, 3), rng=rng)
    with pytest.raises(ValueError, match=r"\(4, 6\).*\(3,\)"):
        mlp.loss_and_grads(np.zeros((4, 6)), np.zeros(3, dtype=int), rng=rng)
    with pytest.raises(ValueError, match=r"\(N, 6\).*\(4, 7\)"):
        mlp.loss_and_grads(np.zeros((4, 7)), np.zeros(4, dtype=int), rng=rng)
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        mlp.loss_and_grads(np.zeros((4, 6)), np.array([0, 1, 2, 3]), rng=rng)
    with pytest.raises(TypeError, match="floating-point.*uint8"):
        mlp.loss_and_grads(np.zeros((4, 6), dtype=np.uint8), np.zeros(4, dtype=int), rng=rng)
    with pytest.raises(TypeError, match="sparse"):
        mlp.predict(sp.csr_matrix((4, 6)))
    with pytest.raises(TypeError, match="float32 or float64"):
        MLP((6, 5, 3), rng=rng, dtype=np.int64)
    with pytest.raises(ValueError, match="hidden_dropout must be in \\[0, 1\\), got 1.0"):
        MLP((6, 5, 3), hidden_dropout=1.0, rng=rng)
    with pytest.raises(ValueError, match="input_dropout must be in \\[0, 1\\), got -0.5"):
        SparseLogisticRegression(10, input_dropout=-0.5, rng=rng)
    with pytest.raises(TypeError, match="rng"):
        MLP((6, 5, 3), hidden_dropout=0.5, rng=rng).loss_and_grads(
            np.zeros((2, 6)), np.zeros(2, dtype=int), rng=None)
    with pytest.raises(TypeError, match="rng"):
        SparseLogisticRegression(10, input_dropout=0.5, rng=rng).loss_and_grads(
            sp.csr_matrix(np.eye(2, 10)), np.array([0, 1]), rng=None)
    with pytest.raises(ValueError, match="0 or 1"):
        SparseLogisticRegression(10, rng=rng).loss_and_grads(
            sp.csr_matrix(np.eye(2, 10)), np.array([0, 2]), rng=rng)
    with pytest.raises(TypeError, match="rng"):
        VAE(6, 4, 2, rng=rng).loss_and_grads(np.zeros((2, 6)), rng=None)
    with pytest.raises(ValueError, match=r"\(N, 6\).*\(2, 5\)"):
        VAE(6, 4, 2, rng=rng).loss_and_grads(np.zeros((2, 5)), rng=rng)
    with pytest.raises(ValueError, match="n_classes"):
        LogisticRegression(5, 1, rng=rng)
    with pytest.raises(ValueError, match="sizes"):
        MLP((5,), rng=rng)


def test_model_base_refuses_duplicate_names_and_mixed_dtypes():
    from adamlab.nn import Linear
    rng = np.random.default_rng(6)
    with pytest.raises(ValueError, match="unique"):
        Model([("a", Linear(2, 2, rng=rng)), ("a", Linear(2, 2, rng=rng))])
    with pytest.raises(TypeError, match="a.W has dtype float64"):
        Model([("a", Linear(2, 2, rng=rng, dtype=np.float64))], dtype=np.float32)


# ----------------------------------------------------------------------------- learning


def train(model, x, y, *, steps, lr, seed=0):
    """Adam for ``steps`` full-batch steps; the evaluation loss (no dropout) before and after."""
    rng = np.random.default_rng(seed)
    opt = Adam(lr=lr)
    before = model.loss_and_grads(x, y, rng=np.random.default_rng(1), train=False)
    for _ in range(steps):
        model.loss_and_grads(x, y, rng=rng)
        opt.update(model.params, model.grads)
    return before, model.loss_and_grads(x, y, rng=np.random.default_rng(1), train=False)


def teacher_labels(rng, x, n_classes):
    """Labels of a random linear teacher: a problem the model can fit."""
    w = rng.standard_normal((x.shape[1], n_classes))
    return np.argmax(x @ w, axis=1)


def test_logistic_regression_learns():
    rng = np.random.default_rng(10)
    x = rng.standard_normal((256, 20)).astype(np.float32)
    y = teacher_labels(rng, x, 4)
    before, after = train(LogisticRegression(20, 4, weight_decay=1e-4, rng=rng), x, y,
                          steps=40, lr=0.05)
    assert before > 0.8 * np.log(4)  # starts near chance
    assert after < 0.5 * before


def test_sparse_logistic_regression_learns():
    rng = np.random.default_rng(11)
    x = sparse_batch(rng, 256, 200, 0.05, np.float32)
    score = x @ rng.standard_normal(200)
    y = (score > np.median(score)).astype(int)
    before, after = train(SparseLogisticRegression(200, input_dropout=0.1, rng=rng), x, y,
                          steps=40, lr=0.1)
    assert before > 0.8 * np.log(2)
    assert after < 0.5 * before


def test_mlp_learns_a_nonlinear_problem():
    rng = np.random.default_rng(12)
    x = rng.standard_normal((256, 10)).astype(np.float32)
    y = (x[:, 0] * x[:, 1] > 0).astype(int) + 2 * (x[:, 2] * x[:, 3] > 0)  # XOR-like, 4 classes
    model = MLP((10, 64, 64, 4), hidden_dropout=0.1, rng=rng)
    before, after = train(model, x, y, steps=60, lr=0.01)
    assert before > 0.8 * np.log(4)
    assert after < 0.5 * before
    linear_before, linear_after = train(LogisticRegression(10, 4, rng=rng), x, y, steps=60,
                                        lr=0.01)
    assert after < 0.6 * linear_after  # the hidden layers matter: a linear model cannot fit it


def test_vae_learns():
    rng = np.random.default_rng(13)
    prototypes = rng.random((4, 40)) < 0.2
    x = prototypes[rng.integers(0, 4, 256)] ^ (rng.random((256, 40)) < 0.02)
    x = x.astype(np.float32)
    model = VAE(40, 32, 4, rng=rng)
    before, after = train(model, x, None, steps=60, lr=0.01)
    assert before > 0.5 * 40 * np.log(2)  # a decoder near σ = 1/2 costs about log 2 per pixel
    assert after < 0.5 * before


# ---------------------------------------------------------------------------- bad input (issue 11)

from adamlab.models.cnn import CNN  # noqa: E402
from adamlab.nn import Conv2D, Linear  # noqa: E402

SMALL_CNN = {"input_shape": (8, 8, 1), "channels": (2,), "fc": 4, "n_classes": 3}
CONSTRUCTORS = {
    "LogisticRegression": lambda rng: LogisticRegression(12, 5, rng=rng),
    "SparseLogisticRegression": lambda rng: SparseLogisticRegression(40, rng=rng),
    "MLP": lambda rng: MLP((12, 9, 7, 4), rng=rng),
    "VAE": lambda rng: VAE(10, 8, 3, rng=rng),
    "CNN": lambda rng: CNN(**SMALL_CNN, rng=rng),
    "Linear": lambda rng: Linear(4, 3, rng=rng),
    "Conv2D": lambda rng: Conv2D(2, 3, kernel=3, rng=rng),
}


@pytest.mark.parametrize("name", list(CONSTRUCTORS))
def test_an_integer_seed_is_the_generator_of_that_seed(name):
    make = CONSTRUCTORS[name]
    from_seed, from_generator = make(7), make(np.random.default_rng(7))
    for key, value in from_generator.params.items():
        assert np.array_equal(from_seed.params[key], value)
    assert not np.array_equal(make(8).params[next(iter(from_seed.params))],
                              from_seed.params[next(iter(from_seed.params))])
    make(np.int64(7))
    make(np.random.SeedSequence(7))


def test_an_integer_seed_feeds_all_layers_from_one_generator():
    vae = VAE(10, 8, 3, rng=0)
    assert not np.array_equal(vae.params["mu.W"], vae.params["logvar.W"])  # not two copies of seed 0


@pytest.mark.parametrize("name", list(CONSTRUCTORS))
@pytest.mark.parametrize("bad", [None, -1, 1.5, True, "0", np.random.RandomState(0)],
                         ids=["None", "-1", "1.5", "True", "str", "RandomState"])
def test_a_bad_rng_is_a_type_error_naming_what_is_accepted(name, bad):
    with pytest.raises(TypeError, match=r"rng must be a numpy\.random\.Generator or a non-negative "
                                        r"integer seed, got"):
        CONSTRUCTORS[name](bad)


def _nan_inputs():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((6, 12))
    x[4, 3] = np.nan
    sparse = sparse_batch(rng, 9, 40, 0.2)
    sparse.data[5] = np.inf
    image = rng.standard_normal((3, 8, 8, 1))
    image[2, 1, 1, 0] = -np.inf
    vae_x = rng.random((5, 10))
    vae_x[0, 9] = np.nan
    return {"LogisticRegression": x, "MLP": x, "SparseLogisticRegression": sparse,
            "SparseLogisticRegression(dense)": np.vstack([np.zeros((2, 40)), np.full((1, 40), np.nan)]),
            "CNN": image, "VAE": vae_x}


@pytest.mark.parametrize("name", list(_nan_inputs()))
def test_predicting_on_non_finite_input_is_a_value_error(name):
    x = _nan_inputs()[name]
    model = CONSTRUCTORS[name.split("(")[0]](0)
    for method in (model.predict, model.predict_proba):
        with pytest.raises(ValueError, match=r"x.* has a non-finite entry \((nan|inf|-inf) at index"):
            method(x)
    y = np.zeros(x.shape[0], dtype=int)
    with pytest.raises(ValueError, match=r"non-finite entry"):
        model.loss_and_grads(x, y, rng=np.random.default_rng(0))


def test_the_error_names_the_position_of_the_first_non_finite_entry():
    x = np.zeros((6, 12))
    x[4, 3] = np.nan
    with pytest.raises(ValueError, match=r"\(nan at index \(4, 3\)\)"):
        MLP((12, 9, 7, 4), rng=0).predict(x)


@pytest.mark.parametrize("name", ["LogisticRegression", "SparseLogisticRegression", "MLP", "VAE",
                                  "CNN"])
def test_an_empty_minibatch_is_a_value_error(name):
    model = CONSTRUCTORS[name](0)
    shape = {"LogisticRegression": (0, 12), "SparseLogisticRegression": (0, 40), "MLP": (0, 12),
             "VAE": (0, 10), "CNN": (0, 8, 8, 1)}[name]
    empties = [np.zeros(shape)]
    if name == "SparseLogisticRegression":
        empties.append(sp.csr_matrix(shape))
    for x in empties:
        with pytest.raises(ValueError, match=r"the minibatch is empty"):
            model.loss_and_grads(x, np.zeros(0, dtype=int), rng=np.random.default_rng(0))
