"""Numerical helpers for the related-work chapter (Kingma & Ba 2015, §5; claims C14 and C15).

Four pieces, each tied to a paragraph of §5:

* **AdaGrad as a limit of Adam** (§5, "AdaGrad"). :func:`vhat_weights` gives the weight of each
  g_i² in the bias-corrected second moment v̂_t = (1−β2)/(1−β2^t)·Σ_{i≤t} β2^{t−i} g_i²; as β2 → 1
  every weight tends to 1/t, so v̂_t → (1/t)·Σ g_i² and Adam with β1 = 0 and α_t = α/√t takes
  AdaGrad's step α·g_t/√(Σ g_i²).
* **Batched optimizer runs** for long horizons and whole grids of settings at once:
  :func:`batched_paths` advances n independent copies of SGD, AdaGrad, RMSProp (optionally with
  momentum on the rescaled gradient, Graves 2013) or Adam, one row per setting, on a shared stream
  of gradients. The update rules are those of :mod:`adamlab.optim`, written out again with arrays
  of hyper-parameters; the tests check them against the library classes step by step.
* **Logistic regression and its Fisher information** (§5, "natural gradient"): per-example
  gradients, the diagonals of the empirical and of the true Fisher, the expected square of a
  minibatch gradient, and the v̂_T that Adam's second-moment average reaches on sampled minibatches
  at a fixed parameter (:func:`minibatch_vhat`, vectorised as a weighted sum).
* **Test streams** for the chapter's experiments: a noisy quadratic, sparse and non-stationary
  linear-regression streams (§1's "sparse gradients" and "non-stationary objectives").

Everything is float64 and deterministic given its ``seed``.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable

import numpy as np

__all__ = [
    "vhat_weights",
    "vhat_weights_recursive",
    "batched_paths",
    "METHODS",
    "noisy_quadratic_stream",
    "linear_regression_stream",
    "sigmoid",
    "logistic_data",
    "logistic_per_example_grads",
    "empirical_fisher_diag",
    "true_fisher_diag",
    "expected_minibatch_sq",
    "minibatch_vhat",
    "preconditioned_step",
    "impulse_response",
]

METHODS = ("sgd", "adagrad", "rmsprop", "adam")


# ----------------------------------------------------------------------------- validation


def _check_int(name: str, value, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _check_unit(name: str, value, closed_low: bool = True) -> np.ndarray:
    """Return ``value`` as a float64 array; every entry must lie in [0, 1) (or (0, 1))."""
    arr = np.asarray(value, dtype=np.float64)
    low_ok = arr >= 0.0 if closed_low else arr > 0.0
    if arr.size == 0 or not np.all(np.isfinite(arr) & low_ok & (arr < 1.0)):
        interval = "[0, 1)" if closed_low else "(0, 1)"
        raise ValueError(f"{name} must be in {interval}, got {value!r}")
    return arr


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num/den, with 0 where den == 0 (ε = 0 and every gradient so far 0: the step is 0, as in optim)."""
    num, den = np.broadcast_arrays(num, den)
    return np.divide(num, den, out=np.zeros(num.shape), where=den != 0)


def _one_minus_pow(one_minus_beta: np.ndarray, t) -> np.ndarray:
    """1 − β^t computed without cancellation from c = 1 − β: −expm1(t·log1p(−c)) (β = 0 gives 1)."""
    with np.errstate(divide="ignore"):  # β = 0: log1p(−1) = −inf, and −expm1(−inf) = 1 exactly
        return -np.expm1(np.multiply(t, np.log1p(-one_minus_beta)))


# ----------------------------------------------------------------------------- §5: AdaGrad limit


def vhat_weights(beta2, t: int) -> np.ndarray:
    """Weights w_i of g_i² in v̂_t = Σ_{i=1..t} w_i·g_i², i = 1..t (§3's unrolled v_t, §5's limit).

    w_i = (1−β2)·β2^{t−i}/(1−β2^t). They sum to 1 for every β2 in (0, 1) and tend to 1/t as β2 → 1.
    Computed as w_i = c·β2^{t−i}/(1 − β2^t) with c = 1 − β2 and 1 − β2^t = −expm1(t·log1p(−c)), which
    stays accurate for β2 within 1e-15 of 1.
    """
    c = 1.0 - float(_check_unit("beta2", beta2, closed_low=False))
    t = _check_int("t", t, 1)
    k = np.arange(t - 1, -1, -1, dtype=np.float64)  # t − i for i = 1..t
    return c * np.exp(k * math.log1p(-c)) / _one_minus_pow(c, t)


def vhat_weights_recursive(beta2, t: int) -> np.ndarray:
    """The same weights read off Algorithm 1's recursion: v̂_t for one-hot gradient sequences.

    Runs v_j ← β2·v_{j−1} + (1−β2)·g_j² on the t unit vectors at once (g_j² = 1 at j = i, else 0)
    and divides by 1 − β2^t: an independent check of :func:`vhat_weights`.
    """
    b2 = float(_check_unit("beta2", beta2, closed_low=False))
    t = _check_int("t", t, 1)
    v = np.zeros(t)
    for j in range(t):
        g2 = np.zeros(t)
        g2[j] = 1.0
        v = b2 * v + (1.0 - b2) * g2  # v_j ← β2·v_{j−1} + (1−β2)·g_j²
    return v / (1.0 - b2**t)


# ----------------------------------------------------------------------------- batched runs


def batched_paths(
    grad_fn: Callable[[np.ndarray, int], np.ndarray],
    theta0,
    steps: int,
    *,
    method: str,
    lr,
    lr_decay: bool = False,
    beta1=0.9,
    beta2=0.999,
    eps=1e-8,
    momentum=0.0,
    bias_correction: bool = True,
) -> np.ndarray:
    """Run n copies of one optimizer side by side; return the path, shape (steps + 1, n, d).

    ``theta0`` has shape (n, d) (or (d,), shared by every row once ``lr`` or ``beta2`` say how many
    rows there are); ``grad_fn(theta, t)`` returns the gradients at step t = 1, 2, ... for all rows,
    shape (n, d). ``lr``, ``beta1``, ``beta2``, ``eps`` and ``momentum`` are scalars or arrays of
    shape (n,), one value per row. ``lr_decay=True`` uses α_t = α/√t (§4, §5). The rules
    (element-wise; ``method``):

    * ``"sgd"``:     θ ← θ − α_t·g
    * ``"adagrad"``: s ← s + g²;  θ ← θ − α_t·g/(√s + ε)                          (Duchi et al. 2011)
    * ``"rmsprop"``: v ← β2·v + (1−β2)·g²;  v̂ = v/(1−β2^t) if ``bias_correction`` else v;
      with momentum μ = 0: θ ← θ − α_t·g/(√v̂ + ε); with μ > 0 (Graves 2013, §5):
      u ← μ·u − α_t·g/(√v̂ + ε), θ ← θ + u
    * ``"adam"``:    Algorithm 1 (m̂, v̂ corrected when ``bias_correction``; else θ ← θ − α_t·m/(√v + ε))

    1 − β2^t is computed from 1 − β2 without cancellation, so β2 may lie within 1e-12 of 1.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    steps = _check_int("steps", steps, 0)
    if not isinstance(bias_correction, bool):
        raise ValueError(f"bias_correction must be True or False, got {bias_correction!r}")
    lr = np.asarray(lr, dtype=np.float64)
    if lr.size == 0 or not np.all(np.isfinite(lr) & (lr > 0)):
        raise ValueError(f"lr must be positive, got {lr!r}")
    b1 = _check_unit("beta1", beta1)
    b2 = _check_unit("beta2", beta2)
    mu = _check_unit("momentum", momentum)
    eps = np.asarray(eps, dtype=np.float64)
    if not np.all(np.isfinite(eps) & (eps >= 0)):
        raise ValueError(f"eps must be >= 0, got {eps!r}")

    theta = np.asarray(theta0, dtype=np.float64)
    settings = {"lr": lr, "beta1": b1, "beta2": b2, "momentum": mu, "eps": eps}
    per_row = {name: arr.size for name, arr in settings.items() if arr.size > 1}
    if len(set(per_row.values())) > 1:
        listed = ", ".join(f"{name} {size}" for name, size in per_row.items())
        raise ValueError(f"per-row settings disagree on the number of rows: {listed}")
    rows = max(per_row.values(), default=1)
    if theta.ndim == 1:
        theta = np.broadcast_to(theta, (rows, theta.size))
    if theta.ndim != 2:
        raise ValueError(f"theta0 must have shape (n, d) or (d,), got shape {theta.shape}")
    n, d = theta.shape
    col = {}
    for name, arr in settings.items():
        if arr.size not in (1, n):
            raise ValueError(f"{name} has {arr.size} values but theta0 has {n} rows")
        col[name] = arr.reshape(-1, 1) if arr.size == n else arr.reshape(1, 1)
    c1, c2 = 1.0 - col["beta1"], 1.0 - col["beta2"]

    theta = theta.copy()
    path = np.empty((steps + 1, n, d))
    path[0] = theta
    m = np.zeros((n, d))
    v = np.zeros((n, d))
    u = np.zeros((n, d))
    for t in range(1, steps + 1):
        g = np.asarray(grad_fn(theta, t), dtype=np.float64)
        if g.shape != (n, d):
            raise ValueError(f"grad_fn returned shape {g.shape} at step {t}, expected {(n, d)}")
        lr_t = col["lr"] / math.sqrt(t) if lr_decay else col["lr"]
        if method == "sgd":
            theta -= lr_t * g  # θ ← θ − α_t·g
        elif method == "adagrad":
            v += g * g  # s_t ← s_{t−1} + g_t²
            theta -= lr_t * _ratio(g, np.sqrt(v) + col["eps"])  # θ ← θ − α_t·g/(√s_t + ε)
        else:
            v += c2 * (g * g - v)  # v_t ← β2·v_{t−1} + (1−β2)·g_t²
            v_hat = v / _one_minus_pow(c2, t) if bias_correction else v
            if method == "rmsprop":
                step = lr_t * _ratio(g, np.sqrt(v_hat) + col["eps"])
                if np.any(col["momentum"] > 0):
                    u = col["momentum"] * u - step  # u_t ← μ·u_{t−1} − α_t·g_t/(√v̂_t + ε)
                    theta += u
                else:
                    theta -= step
            else:
                m += c1 * (g - m)  # m_t ← β1·m_{t−1} + (1−β1)·g_t
                m_hat = m / _one_minus_pow(c1, t) if bias_correction else m
                theta -= lr_t * _ratio(m_hat, np.sqrt(v_hat) + col["eps"])  # θ ← θ − α_t·m̂_t/(√v̂_t + ε)
        path[t] = theta
    return path


def impulse_response(k: int, beta1, beta2, *, ordering: str) -> np.ndarray:
    """Steps Δ_0..Δ_{k−1} (in units of α, ε = 0) after a single gradient g ≠ 0 followed by zeros.

    State before the impulse is zero and bias correction is left out (the late-t regime), so the
    answer does not depend on g. ``ordering="adam"`` rescales the averaged gradient:
    Δ_j = m_j/√v_j = (1−β1)β1^j/√((1−β2)β2^j) · sign(g). ``ordering="rmsprop"`` averages the
    rescaled gradient with momentum μ = β1 and step size α(1−μ), so that both take the same steps
    on a constant gradient: Δ_j = (1−μ)·μ^j/√(1−β2)·sign(g). (§5: Graves 2013 versus Adam.)
    """
    k = _check_int("k", k, 1)
    b1 = float(_check_unit("beta1", beta1))
    b2 = float(_check_unit("beta2", beta2, closed_low=False))
    j = np.arange(k, dtype=np.float64)
    if ordering == "adam":
        return (1 - b1) * b1**j / np.sqrt((1 - b2) * b2**j)
    if ordering == "rmsprop":
        return (1 - b1) * b1**j / math.sqrt(1 - b2)
    raise ValueError(f"ordering must be 'adam' or 'rmsprop', got {ordering!r}")


# ----------------------------------------------------------------------------- test streams


def noisy_quadratic_stream(scales, sigma: float, steps: int, seed: int):
    """Gradients of f(θ) = ½·Σ scales_i·θ_i² plus seeded Gaussian noise σ·ξ_t, shared by all rows.

    Returns ``grad_fn(theta, t)`` for :func:`batched_paths`: scales·θ + σ·ξ_t, with ξ_1..ξ_steps
    drawn once (so every row and every call at step t sees the same noise).
    """
    scales = np.asarray(scales, dtype=np.float64)
    if scales.ndim != 1 or not np.all(scales > 0):
        raise ValueError(f"scales must be a 1-D array of positive numbers, got {scales!r}")
    steps = _check_int("steps", steps, 1)
    noise = sigma * np.random.default_rng(seed).normal(size=(steps, scales.size))

    def grad_fn(theta, t):
        return scales * theta + noise[t - 1]

    return grad_fn


def linear_regression_stream(w_star, steps: int, seed: int, *, density=1.0, scale=1.0, noise=0.1,
                             switch_at: int | None = None, w_star_after=None):
    """An online least-squares stream f_t(w) = ½(w·x_t − y_t)², y_t = w*_t·x_t + noise_t·ξ_t.

    x_tj = scale_tj·b_tj·z_tj with z ~ N(0, 1) and b ~ Bernoulli(density_j): ``density`` (scalar or
    one value per feature) is the probability that feature j is present at a step (sparse gradients,
    §1); ``scale`` broadcasts against (steps, d), so it can set per-feature scales, (d,), or a
    scale that changes over time, (steps, 1); ``noise`` is a scalar or one value per step. With
    ``switch_at = s`` the target changes from ``w_star`` to ``w_star_after`` after step s (a
    non-stationary objective). Returns ``(grad_fn, X, y, targets)``: ``grad_fn(W, t)`` gives the
    gradients (w·x_t − y_t)·x_t for every row w of W; ``targets`` has shape (steps, d): w*_t.
    """
    w_star = np.asarray(w_star, dtype=np.float64)
    if w_star.ndim != 1:
        raise ValueError(f"w_star must be 1-D, got shape {w_star.shape}")
    steps = _check_int("steps", steps, 1)
    density = np.broadcast_to(np.asarray(density, dtype=np.float64), w_star.shape)
    if not np.all((density > 0) & (density <= 1)):
        raise ValueError(f"density must be in (0, 1], got {density!r}")
    targets = np.tile(w_star, (steps, 1))
    if switch_at is not None:
        switch_at = _check_int("switch_at", switch_at, 1)
        w_after = np.asarray(w_star_after, dtype=np.float64)
        if w_after.shape != w_star.shape:
            raise ValueError(f"w_star_after must have shape {w_star.shape}, got {w_after.shape}")
        targets[switch_at:] = w_after
    try:
        scale = np.broadcast_to(np.asarray(scale, dtype=np.float64), targets.shape)
        noise = np.broadcast_to(np.asarray(noise, dtype=np.float64), (steps,))
    except ValueError:
        raise ValueError(f"scale must broadcast to {targets.shape} and noise to ({steps},), got shapes "
                         f"{np.shape(scale)} and {np.shape(noise)}") from None
    if not (np.all(scale > 0) and np.all(noise >= 0)):
        raise ValueError("scale must be positive and noise non-negative")
    rng = np.random.default_rng(seed)
    X = scale * (rng.random((steps, w_star.size)) < density) * rng.normal(size=(steps, w_star.size))
    y = np.einsum("td,td->t", X, targets) + noise * rng.normal(size=steps)

    def grad_fn(W, t):
        x = X[t - 1]
        return (W @ x - y[t - 1])[:, None] * x[None, :]

    return grad_fn, X, y, targets


# ----------------------------------------------------------------------------- §5: natural gradient


def sigmoid(z):
    """σ(z) = 1/(1 + e^{−z}), evaluated without overflow for large |z|."""
    z = np.asarray(z, dtype=np.float64)
    out = np.empty_like(z)
    pos = z >= 0
    out[pos] = 1.0 / (1.0 + np.exp(-z[pos]))
    ez = np.exp(z[~pos])
    out[~pos] = ez / (1.0 + ez)
    return out


def logistic_data(n: int, scales, seed: int, w_true=None):
    """Synthetic binary logistic regression: x_i = scales ⊙ z_i, z ~ N(0, I); y_i ~ Bernoulli(σ(w·x_i)).

    ``w_true`` defaults to w_j = 1/scales_j·(±1), so every feature contributes to the logit on the
    same scale while the features themselves span the range of ``scales``. Returns ``(X, y, w_true)``.
    """
    n = _check_int("n", n, 1)
    scales = np.asarray(scales, dtype=np.float64)
    if scales.ndim != 1 or not np.all(scales > 0):
        raise ValueError(f"scales must be a 1-D array of positive numbers, got {scales!r}")
    rng = np.random.default_rng(seed)
    if w_true is None:
        w_true = rng.choice([-1.0, 1.0], size=scales.size) / scales
    w_true = np.asarray(w_true, dtype=np.float64)
    if w_true.shape != scales.shape:
        raise ValueError(f"w_true must have shape {scales.shape}, got {w_true.shape}")
    X = rng.normal(size=(n, scales.size)) * scales
    y = (rng.random(n) < sigmoid(X @ w_true)).astype(np.float64)
    return X, y, w_true


def _check_xy(w, X, y=None):
    w = np.asarray(w, dtype=np.float64)
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2 or w.shape != (X.shape[1],):
        raise ValueError(f"w must have shape (d,) and X shape (n, d); got w {w.shape} and X {X.shape}")
    if y is None:
        return w, X, None
    y = np.asarray(y, dtype=np.float64)
    if y.shape != (X.shape[0],):
        raise ValueError(f"y must have shape ({X.shape[0]},) to match X {X.shape}, got {y.shape}")
    if not np.all((y == 0) | (y == 1)):
        raise ValueError("y must hold labels 0 and 1 only")
    return w, X, y


def logistic_per_example_grads(w, X, y) -> np.ndarray:
    """Per-example gradients of the negative log-likelihood, shape (n, d): (σ(w·x_i) − y_i)·x_i."""
    w, X, y = _check_xy(w, X, y)
    return (sigmoid(X @ w) - y)[:, None] * X


def empirical_fisher_diag(w, X, y) -> np.ndarray:
    """diag of the empirical Fisher (1/n)·Σ_i g_i g_iᵀ: (1/n)·Σ_i g_i², g_i the observed-label gradients."""
    return np.mean(logistic_per_example_grads(w, X, y) ** 2, axis=0)


def true_fisher_diag(w, X) -> np.ndarray:
    """diag of the Fisher information of the model at w on the inputs X (labels drawn from the model).

    F = (1/n)·Σ_i E_{y~p(y|x_i,w)}[g g ᵀ] = (1/n)·Σ_i σ_i(1−σ_i)·x_i x_iᵀ (Amari 1998); its diagonal is
    (1/n)·Σ_i σ_i(1−σ_i)·x_i².
    """
    w, X, _ = _check_xy(w, X)
    p = sigmoid(X @ w)
    return np.mean((p * (1 - p))[:, None] * X**2, axis=0)


def expected_minibatch_sq(G, batch: int) -> np.ndarray:
    """E[ĝ²] for the mean ĝ of ``batch`` rows of G drawn uniformly with replacement.

    With ḡ the mean row and F = mean(G²) (the empirical Fisher's diagonal when G holds per-example
    gradients): E[ĝ²] = ḡ² + (F − ḡ²)/batch. This is what v̂_t averages (§3: E[v̂_t] = E[g²]).
    """
    G = np.asarray(G, dtype=np.float64)
    if G.ndim != 2:
        raise ValueError(f"G must have shape (n, d), got {G.shape}")
    batch = _check_int("batch", batch, 1)
    gbar = G.mean(axis=0)
    return gbar**2 + (np.mean(G**2, axis=0) - gbar**2) / batch


def minibatch_vhat(G, batch: int, steps: int, beta2, seed: int, chunk: int = 4096) -> np.ndarray:
    """Adam's v̂_T after T = ``steps`` minibatch gradients sampled at a fixed parameter.

    Step t draws ``batch`` rows of G (per-example gradients) uniformly with replacement and forms
    their mean ĝ_t. Instead of running the recursion, v̂_T = Σ_t w_t·ĝ_t² with the weights of
    :func:`vhat_weights` (identical by §3's unrolling), accumulated over chunks of steps.
    """
    G = np.asarray(G, dtype=np.float64)
    if G.ndim != 2:
        raise ValueError(f"G must have shape (n, d), got {G.shape}")
    batch = _check_int("batch", batch, 1)
    steps = _check_int("steps", steps, 1)
    weights = vhat_weights(beta2, steps)
    rng = np.random.default_rng(seed)
    out = np.zeros(G.shape[1])
    for start in range(0, steps, chunk):
        stop = min(steps, start + chunk)
        idx = rng.integers(0, G.shape[0], size=(stop - start, batch))
        g = G[idx].mean(axis=1)  # ĝ_t, shape (chunk, d)
        out += weights[start:stop] @ (g * g)
    return out


def preconditioned_step(g, fisher_diag, power: float, lr: float = 1.0) -> np.ndarray:
    """−lr·g/F^power with a diagonal preconditioner F: power 1/2 is Adam's (§5), 1 natural gradient's."""
    g = np.asarray(g, dtype=np.float64)
    F = np.asarray(fisher_diag, dtype=np.float64)
    if g.shape != F.shape:
        raise ValueError(f"g has shape {g.shape} but fisher_diag has shape {F.shape}")
    if not np.all(F > 0):
        raise ValueError("fisher_diag must be positive in every entry")
    return -lr * g / F**power
