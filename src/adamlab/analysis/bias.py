"""Initialisation bias of Adam's moment estimates (Kingma & Ba 2015, §3 and §6.4).

§3 unrolls the second-moment recursion v_t ← β2·v_{t−1} + (1 − β2)·g_t², v_0 = 0, into

    v_t = (1 − β2)·Σ_{i=1..t} β2^{t−i}·g_i²,
    E[v_t] = E[g_t²]·(1 − β2^t) + ζ,

with ζ = 0 when E[g_i²] is stationary, and divides by (1 − β2^t); the same argument, with β1, holds
for m_t. This module holds the symbolic forms (SymPy) and the numerical checks the chapter
``notebooks/03_bias_correction.ipynb`` calls:

* :func:`unrolled_ema`, :func:`expected_ema_stationary`: the unrolled sum and its expectation
  (:func:`generic_branch` picks the closed form out of SymPy's Piecewise sums);
* :func:`expected_ema_geometric`, :func:`zeta_geometric`, :func:`relative_bias`,
  :func:`relative_bias_value`, :func:`relative_bias_limit`: one non-stationary model,
  E[g_i²] = s·ρ^i;
* :func:`step_ratio`, :func:`step_ratio_value`: how much larger a step is without the correction
  (ε = 0), the reason β2 → 1 needs it (§3, §6.4);
* :func:`expected_ema_recursion`, :func:`exact_mean_by_enumeration`, :func:`monte_carlo_moments`:
  independent numerical expectations to check the symbolic ones against;
* :func:`sparse_logistic_problem`, :func:`logistic_loss`, :func:`logistic_loss_grad`,
  :func:`run_sparse`: a sparse-gradient problem run with Adam with and without the correction.

Numeric hyper-parameters are validated like the optimizers': ``ValueError("beta2 must be in [0, 1),
got 1.0")``. Symbolic arguments (SymPy symbols) are passed through unchecked.
"""

from __future__ import annotations

import itertools

import numpy as np
import scipy.sparse
import sympy as sp

from adamlab.optim import Adam
from adamlab.optim.base import check_positive, check_unit_interval

__all__ = [
    "unrolled_ema",
    "generic_branch",
    "expected_ema_stationary",
    "expected_ema_geometric",
    "zeta_geometric",
    "relative_bias",
    "relative_bias_value",
    "relative_bias_limit",
    "step_ratio",
    "step_ratio_value",
    "expected_ema_recursion",
    "exact_mean_by_enumeration",
    "monte_carlo_moments",
    "sparse_logistic_problem",
    "logistic_loss",
    "logistic_loss_grad",
    "run_sparse",
]


def _beta(name: str, value) -> None:
    """A symbolic β passes; a number must lie in [0, 1) (ValueError naming it otherwise)."""
    if isinstance(value, sp.Basic) and not value.is_number:
        return
    check_unit_interval(name, float(value))


def generic_branch(expr: sp.Expr) -> sp.Expr:
    """The evaluated branch of the Piecewise that ``sympy.summation`` returns for a geometric sum.

    A finite sum gives (special case, Eq(ratio, 1)), (closed form, True); an infinite one gives
    (closed form, |ratio| < 1), (unevaluated Sum, True). Returns the first branch whose condition is
    not an equality and which holds no unevaluated ``Sum``; an expression without Piecewise as is.
    """
    expr = sp.piecewise_fold(expr)
    if not isinstance(expr, sp.Piecewise):
        return expr
    for value, cond in expr.args:
        if not isinstance(cond, sp.Eq) and not value.has(sp.Sum):
            return value
    raise ValueError(f"no evaluated branch in {expr}")


def _check_beta_numeric(name: str, value) -> float:
    if isinstance(value, sp.Basic) and not value.is_number:
        raise TypeError(f"{name} must be a number here, got the symbolic {value}")
    return check_unit_interval(name, float(value))


def _check_steps(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


# ----------------------------------------------------------------------------- symbolic (SymPy)


def unrolled_ema(beta, t, g, i) -> sp.Expr:
    """§3's unrolled recursion: (1 − β)·Σ_{i=1..t} β^{t−i}·g_i, for a SymPy ``IndexedBase`` ``g``.

    With ``beta = β2`` and ``g`` the squared gradients this is v_t; with ``beta = β1``, m_t.
    """
    _beta("beta", beta)
    return (1 - beta) * sp.Sum(beta ** (t - i) * g[i], (i, 1, t))


def expected_ema_stationary(beta, t, moment) -> sp.Expr:
    """E of the unrolled average when E[g_i] = ``moment`` for every i (§3): moment·(1 − β^t).

    The geometric sum is evaluated by ``sympy.summation`` (not typed in), then simplified.
    """
    _beta("beta", beta)
    i = sp.Dummy("i", integer=True, positive=True)
    x = sp.Dummy("beta", positive=True)  # sum with a symbolic β; a numeric β is put in at the end
    total = (1 - x) * sp.summation(x ** (t - i) * moment, (i, 1, t))
    return sp.factor(sp.simplify(generic_branch(total))).subs(x, beta)


def expected_ema_geometric(beta, rho, t, s) -> sp.Expr:
    """E[v_t] when E[g_i²] = s·ρ^i drifts geometrically (ρ ≠ β): (1 − β)·Σ β^{t−i}·s·ρ^i, summed.

    The non-stationary case of §3, where ζ ≠ 0. Returns the generic branch (ρ ≠ β) of the sum.
    """
    _beta("beta", beta)
    i = sp.Dummy("i", integer=True, positive=True)
    x = sp.Dummy("beta", positive=True)  # sum with a symbolic β; a numeric β is put in at the end
    total = (1 - x) * sp.summation(x ** (t - i) * s * rho**i, (i, 1, t))
    return sp.factor(sp.simplify(generic_branch(total))).subs(x, beta)  # the branch for ρ ≠ β


def zeta_geometric(beta, rho, t, s) -> sp.Expr:
    """§3's ζ for the geometric model: ζ = E[v_t] − E[g_t²]·(1 − β^t), with E[g_t²] = s·ρ^t."""
    return sp.factor(sp.simplify(expected_ema_geometric(beta, rho, t, s) - s * rho**t * (1 - beta**t)))


def relative_bias(beta, rho, t) -> sp.Expr:
    """E[v̂_t]/E[g_t²] − 1 = ζ/(E[g_t²]·(1 − β^t)) for the geometric model (0 when ρ = 1)."""
    s = sp.Symbol("s", positive=True)
    return sp.simplify(zeta_geometric(beta, rho, t, s) / (s * rho**t * (1 - beta**t)))


def relative_bias_value(beta, rho, t) -> np.ndarray:
    """:func:`relative_bias` in float64, written with r = β/ρ so that no power overflows.

    E[v̂_t]/E[g_t²] = (1 − β)·(1 − r^t) / ((1 − r)·(1 − β^t)); requires 0 < β < 1, ρ > 0, ρ ≠ β.
    """
    beta = _check_beta_numeric("beta", beta)
    rho = check_positive("rho", rho)
    if beta == 0.0 or rho == beta:
        raise ValueError(f"relative_bias_value needs 0 < beta != rho, got beta={beta!r}, rho={rho!r}")
    t = np.asarray(t, dtype=np.float64)
    r = beta / rho
    return (1 - beta) * -np.expm1(t * np.log(r)) / ((1 - r) * _one_minus_pow(beta, t)) - 1.0


def relative_bias_limit(beta, rho) -> sp.Expr:
    """lim_{t→∞} of :func:`relative_bias` for β < ρ: β·(1 − ρ)/(ρ − β), derived by SymPy.

    The limit is taken with r = β/ρ ∈ (0, 1) so that r^t → 0 and β^t → 0.
    """
    t = sp.Symbol("t", positive=True)
    r = sp.Symbol("r", positive=True)
    ratio = relative_bias(beta, rho, t) + 1
    # E[v̂_t]/E[g_t²] = (1 − β)·(1 − (β/ρ)^t) / ((1 − β/ρ)·(1 − β^t)); both powers vanish as t → ∞
    ratio_r = sp.simplify(ratio.subs(beta**t, r**t * rho**t))
    lim = sp.limit(ratio_r.subs(r**t, 0).subs(beta**t, 0), t, sp.oo)
    return sp.factor(sp.simplify(lim - 1))


def step_ratio(beta1, beta2, t) -> sp.Expr:
    """Size of the uncorrected step over the corrected one, ε = 0: (1 − β1^t)/√(1 − β2^t).

    Derived from Algorithm 1 (§2, §3): α·m_t/√v_t divided by α·m̂_t/√v̂_t with m̂_t = m_t/(1 − β1^t)
    and v̂_t = v_t/(1 − β2^t). The moments cancel, so the ratio holds for every gradient history.
    """
    _beta("beta1", beta1)
    _beta("beta2", beta2)
    a, m, v, c1, c2 = sp.symbols("alpha m v c_1 c_2", positive=True)  # c_k = 1 − β_k^t ∈ (0, 1]
    uncorrected = a * m / sp.sqrt(v)
    corrected = a * (m / c1) / sp.sqrt(v / c2)
    return sp.simplify(uncorrected / corrected).subs({c1: 1 - beta1**t, c2: 1 - beta2**t})


def step_ratio_value(beta1, beta2, t) -> np.ndarray:
    """:func:`step_ratio` evaluated in float64 for numeric β1, β2 and integer step(s) t ≥ 1."""
    beta1 = _check_beta_numeric("beta1", beta1)
    beta2 = _check_beta_numeric("beta2", beta2)
    t = np.asarray(t)
    if not np.issubdtype(t.dtype, np.integer) or np.any(t < 1):
        raise ValueError(f"t must hold integers >= 1, got {t!r}")
    return _one_minus_pow(beta1, t) / np.sqrt(_one_minus_pow(beta2, t))


def _one_minus_pow(beta: float, t: np.ndarray) -> np.ndarray:
    """1 − β^t in float64, accurate also for β close to 1 (−expm1(t·log β)); 1 for β = 0."""
    t = np.asarray(t, dtype=np.float64)
    return -np.expm1(t * np.log(beta)) if beta > 0 else np.ones_like(t)


# ----------------------------------------------------------------------------- numerical expectations


def expected_ema_recursion(beta, moments) -> np.ndarray:
    """E of the moving average by running the recursion on expectations (it is linear).

    ``moments[i−1]`` is E[g_i] (or E[g_i²]); returns E[v_1..v_T] from E[v_t] = β·E[v_{t−1}] +
    (1 − β)·E[g_t²], E[v_0] = 0 (Algorithm 1, lines for m_t and v_t). An independent check of the
    summed forms, with no sums or closed forms.
    """
    beta = _check_beta_numeric("beta", beta)
    moments = np.asarray(moments, dtype=np.float64)
    if moments.ndim != 1 or moments.size == 0:
        raise ValueError(f"moments must be a non-empty 1-D array, got shape {moments.shape}")
    out = np.empty_like(moments)
    e = 0.0
    for k, x in enumerate(moments):
        e = beta * e + (1 - beta) * x
        out[k] = e
    return out


def exact_mean_by_enumeration(beta, t, values, probs, power=1, corrected=False) -> float:
    """E[v_t] (or E[m_t]) exactly, by enumerating all |values|^t histories of i.i.d. g_i.

    g_i takes ``values[k]`` with probability ``probs[k]``; the average is over g_i**power (1 for
    m_t, 2 for v_t), computed by the recursion of Algorithm 1. ``corrected=True`` divides by
    (1 − β^t), giving E[m̂_t] or E[v̂_t]. Brute force, for small t only (at most 2**16 histories).
    """
    beta = _check_beta_numeric("beta", beta)
    t = _check_steps("t", t)
    values = np.asarray(values, dtype=np.float64)
    probs = np.asarray(probs, dtype=np.float64)
    if values.shape != probs.shape or values.ndim != 1:
        raise ValueError(f"values and probs must be 1-D of the same shape, got {values.shape} and {probs.shape}")
    if np.any(probs < 0) or not np.isclose(probs.sum(), 1.0, rtol=0, atol=1e-12):
        raise ValueError(f"probs must be non-negative and sum to 1, got {probs.tolist()}")
    if len(values) ** t > 2**16:
        raise ValueError(f"{len(values)}**{t} histories is too many to enumerate (limit 2**16)")
    hist = np.array(list(itertools.product(range(len(values)), repeat=t)))  # (n_histories, t)
    weight = np.prod(probs[hist], axis=1)
    avg = np.zeros(len(hist))
    for k in range(t):
        avg = beta * avg + (1 - beta) * values[hist[:, k]] ** power
    if corrected:
        avg = avg / (1 - beta**t)
    return float(np.sum(weight * avg))


def monte_carlo_moments(beta1, beta2, steps, n_seeds, mean, std, seed, rho=1.0) -> dict:
    """Monte Carlo of Adam's moment estimates for Gaussian gradients g_t ~ N(mean, std²·ρ^t).

    ``rho=1`` (the default) gives stationary gradients; with ``mean=0`` and ρ ≠ 1, E[g_t²] = std²·ρ^t
    is the geometric model of :func:`expected_ema_geometric`.

    Each seed is one coordinate of one ``adamlab.optim.Adam`` parameter vector (the update is
    element-wise, so coordinates are independent runs); seed k draws its gradients from its own
    generator, ``SeedSequence(seed).spawn(n_seeds)[k]``. After each step m_t and v_t are read from
    the optimizer's state and m̂_t = m_t/(1 − β1^t), v̂_t = v_t/(1 − β2^t) formed (Algorithm 1).

    Returns a dict of arrays of length ``steps`` (index t − 1): ``"<q>_mean"`` and ``"<q>_se"``
    (mean across seeds and its standard error) for q in m, v, m_hat, v_hat, sqrt_v_hat.
    """
    beta1 = _check_beta_numeric("beta1", beta1)
    beta2 = _check_beta_numeric("beta2", beta2)
    steps = _check_steps("steps", steps)
    n_seeds = _check_steps("n_seeds", n_seeds)
    if n_seeds < 2:
        raise ValueError(f"n_seeds must be at least 2 for a standard error, got {n_seeds}")
    std, rho = check_positive("std", std), check_positive("rho", rho)
    children = np.random.SeedSequence(seed).spawn(n_seeds)
    grads = np.stack([np.random.default_rng(c).normal(mean, std, size=steps) for c in children], axis=1)
    if rho != 1.0:
        scale = rho ** (np.arange(1, steps + 1) / 2)  # std_t = std·ρ^{t/2}: E[(g_t − mean)²] = std²·ρ^t
        grads = mean + (grads - mean) * scale[:, None]
    opt = Adam(lr=1.0, beta1=beta1, beta2=beta2, eps=0.0)  # θ does not feed back into g: lr is moot
    params = {"theta": np.zeros(n_seeds)}
    names = ("m", "v", "m_hat", "v_hat", "sqrt_v_hat")
    out = {f"{q}_{s}": np.empty(steps) for q in names for s in ("mean", "se")}
    for t in range(1, steps + 1):
        opt.update(params, {"theta": grads[t - 1]})
        state = opt.state_dict()["state"]["theta"]
        m, v = state["m"], state["v"]
        v_hat = v / (1 - beta2**t)
        quantities = {"m": m, "v": v, "m_hat": m / (1 - beta1**t), "v_hat": v_hat, "sqrt_v_hat": np.sqrt(v_hat)}
        for q, x in quantities.items():
            out[f"{q}_mean"][t - 1] = x.mean()
            out[f"{q}_se"][t - 1] = x.std(ddof=1) / np.sqrt(n_seeds)
    return out


# ----------------------------------------------------------------------------- a sparse-gradient run


def sparse_logistic_problem(n=4000, d=400, seed=0, p_max=0.5, decay=0.8):
    """Logistic regression on sparse binary features, a bag-of-words in miniature (§3's sparse case).

    Feature j (j = 1..d) is present with probability min(p_max, p_max·j^−decay), so most features
    are rare and their minibatch gradients are zero most of the time. Labels come from a logistic
    model with weights w* ~ N(0, 1). Returns ``(X, y, p)``: X (n, d) float64 of 0/1, y (n,) of 0/1,
    p (d,) the presence probabilities.
    """
    n, d = _check_steps("n", n), _check_steps("d", d)
    rng = np.random.default_rng(seed)
    p = np.minimum(p_max, p_max / np.arange(1, d + 1) ** decay)
    X = (rng.random((n, d)) < p).astype(np.float64)
    w_star = rng.normal(size=d)
    z = X @ w_star
    y = (rng.random(n) < 1.0 / (1.0 + np.exp(-z))).astype(np.float64)
    return X, y, p


def _check_xy(w, X, y) -> None:
    if X.shape != (len(y), len(w)):
        raise ValueError(f"X must have shape ({len(y)}, {len(w)}) for {len(y)} labels and {len(w)} weights, "
                         f"got {X.shape}")


def logistic_loss(w, X, y) -> float:
    """Mean logistic loss −[y·log σ(z) + (1 − y)·log(1 − σ(z))] with z = X·w (X dense or scipy sparse)."""
    _check_xy(w, X, y)
    z = X @ w
    return float(np.mean(np.logaddexp(0.0, z) - y * z))


def logistic_loss_grad(w, X, y):
    """:func:`logistic_loss` and its gradient Xᵀ(σ(X·w) − y)/n, for a dense X."""
    _check_xy(w, X, y)
    z = X @ w
    loss = float(np.mean(np.logaddexp(0.0, z) - y * z))
    grad = ((0.5 * (1.0 + np.tanh(0.5 * z)) - y) @ X) / len(y)  # σ(z) without overflow
    return loss, grad


def run_sparse(X, y, lr, beta1, beta2, bias_correction, epochs=10, batch_size=32, seed=1,
               record_steps=(1, 10, 100)):
    """Train w (from 0) with ``adamlab.optim.Adam`` on minibatches of (X, y), shuffled each epoch.

    ``bias_correction=False`` is the uncorrected optimizer of §6.4 (θ ← θ − α·m_t/(√v_t + ε)).
    Returns a dict: ``"max_step"`` (per step, max_j |Δw_j|/α), ``"loss_at"`` (training loss on all
    of X after each step in ``record_steps``), ``"loss_epoch"`` (after each epoch, index 0 = start),
    ``"steps_per_epoch"``.
    """
    epochs, batch_size = _check_steps("epochs", epochs), _check_steps("batch_size", batch_size)
    opt = Adam(lr=lr, beta1=beta1, beta2=beta2, bias_correction=bias_correction)
    rng = np.random.default_rng(seed)
    n = len(y)
    per_epoch = -(-n // batch_size)
    params = {"w": np.zeros(X.shape[1])}
    X_all = scipy.sparse.csr_matrix(X)  # the full-data loss touches only the non-zero features
    max_step = np.empty(epochs * per_epoch)
    loss_epoch = [logistic_loss(params["w"], X_all, y)]
    loss_at = {}
    for _ in range(epochs):
        order = rng.permutation(n)
        for k in range(per_epoch):
            idx = order[k * batch_size:(k + 1) * batch_size]
            _, g = logistic_loss_grad(params["w"], X[idx], y[idx])
            before = params["w"].copy()
            opt.update(params, {"w": g})
            max_step[opt.t - 1] = np.max(np.abs(params["w"] - before)) / lr
            if opt.t in record_steps:
                loss_at[opt.t] = logistic_loss(params["w"], X_all, y)
        loss_epoch.append(logistic_loss(params["w"], X_all, y))
    return {"max_step": max_step, "loss_at": loss_at, "loss_epoch": np.array(loss_epoch),
            "steps_per_epoch": per_epoch}
