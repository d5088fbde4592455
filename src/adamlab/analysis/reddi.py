"""Reddi, Kale & Kumar's counterexamples to Adam (ICLR 2018) and fast scalar recursions to run them.

Online problems on the interval X = [lo, hi] with linear losses f_t(x) = g_t·x. The gradient g_t does
not depend on x, so every moment estimate (m_t, v_t, v̂_t, AdaGrad's sum) is a function of the
gradient sequence alone and is computed for all t at once; only the projected iterate

    x_{t+1} = Π_X(x_t − δ_t),   Π_X(y) = min(hi, max(lo, y))

is a genuine recursion. Both recursions used here are associative scans, evaluated by doubling
(Hillis & Steele) in about log2(T) vectorised passes, so 10⁶ steps take a fraction of a second:

* :func:`affine_scan`: y_t = a_t·y_{t−1} + b_t (the moving averages m_t and v_t, also with a
  time-varying β1,t = β1·λ^(t−1));
* :func:`clamp_scan`: x_t = min(hi, max(lo, x_{t−1} − δ_t)). A map x ↦ min(b, max(a, x + c)) composed
  with another such map is again one, with c = c1 + c2, a = Π_[a2,b2](a1 + c2), b = Π_[a2,b2](b1 + c2).

On an interval (and on any box) the projection Π_{X,√V̂} weighted by a diagonal matrix, which
Reddi et al. use for adaptive methods, is the same clipping as the Euclidean projection.

Indexing: the learner plays x_1 (the start), sees f_1, moves to x_2, ...; ``fast_linear_run`` returns
the played points x_1..x_T, and :func:`linear_regret` gives R(T) = Σ_{t≤T} f_t(x_t) − min_{x∈X} Σ_{t≤T} f_t(x)
for every T.

:func:`barrier_run` plays the same linear losses without any projection, on the real line, with a
convex barrier K·max(0, |x| − 1) added to every loss so that plain Algorithm 1 stays bounded by itself.

Problems: :func:`reddi_gradients` (Theorem 1: g_t = C when t mod 3 = 1, else −1), and
:func:`periodic_gradients` / :func:`bernoulli_gradients` for the synthetic variants (a large gradient
once per period, or with a small probability, and a small opposite one otherwise).
"""

from __future__ import annotations

import numbers

import numpy as np

from adamlab.optim import SGD, AdaGrad, Adam, AMSGrad
from adamlab.optim.schedules import InverseSqrt

__all__ = [
    "affine_scan",
    "clamp_scan",
    "reddi_gradients",
    "periodic_gradients",
    "bernoulli_gradients",
    "lr_sequence",
    "adam_moments",
    "fast_steps",
    "fast_linear_run",
    "class_linear_run",
    "linear_regret",
    "barrier_run",
]


# ----------------------------------------------------------------------------- associative scans


def _as_float_time_series(name: str, x) -> np.ndarray:
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim == 0 or arr.shape[0] == 0:
        raise ValueError(f"{name} must have a time axis of length >= 1 (axis 0), got shape {arr.shape}")
    return arr


def affine_scan(a, b, y0=0.0) -> np.ndarray:
    """y_t = a_t·y_{t−1} + b_t for t = 1..T along axis 0, from y_0 = ``y0``; returns y_1..y_T.

    ``a`` and ``b`` broadcast to a common shape (T, ...); extra axes are independent lanes.
    Doubling scan: after the pass with offset k, entry t holds the composition of steps t−2k+1..t.
    """
    b = _as_float_time_series("b", b)
    a = np.broadcast_to(np.asarray(a, dtype=np.float64), b.shape).copy()
    b = b.copy()
    T = b.shape[0]
    k = 1
    while k < T:
        b_new = a[k:] * b[:-k] + b[k:]  # (step t after the block ending at t−k) applied to b
        a_new = a[k:] * a[:-k]
        b[k:] = b_new
        a[k:] = a_new
        k *= 2
    return a * y0 + b


def clamp_scan(delta, x0, lo: float, hi: float) -> np.ndarray:
    """x_t = min(hi, max(lo, x_{t−1} − δ_t)) for t = 1..T along axis 0; returns x_1..x_T.

    The projected (clipped) walk of a step sequence ``delta`` (shape (T, ...), extra axes are lanes;
    ``x0`` broadcasts to the lane shape). Exact up to the rounding of the partial sums of δ.
    """
    lo, hi = float(lo), float(hi)
    if not lo < hi:
        raise ValueError(f"the interval needs lo < hi, got lo={lo}, hi={hi}")
    delta = _as_float_time_series("delta", delta)
    x0 = np.asarray(x0, dtype=np.float64)
    if np.any((x0 < lo) | (x0 > hi)):
        raise ValueError(f"x0 must lie in [{lo}, {hi}], got {x0}")
    c = -delta  # each step is the map x ↦ min(b, max(a, x + c)) with a = lo, b = hi
    a = np.full_like(c, lo)
    b = np.full_like(c, hi)
    T = c.shape[0]
    k = 1
    while k < T:
        c2, a2, b2 = c[k:], a[k:], b[k:]
        a_new = np.minimum(np.maximum(a[:-k] + c2, a2), b2)
        b_new = np.minimum(np.maximum(b[:-k] + c2, a2), b2)
        c_new = c[:-k] + c2
        a[k:], b[k:], c[k:] = a_new, b_new, c_new
        k *= 2
    return np.minimum(np.maximum(x0 + c, a), b)


# ----------------------------------------------------------------------------- the problems


def _check_T(T) -> int:
    if isinstance(T, bool) or not isinstance(T, numbers.Integral) or T < 1:
        raise ValueError(f"T must be an integer >= 1, got {T!r}")
    return int(T)


def reddi_gradients(T: int, C: float) -> np.ndarray:
    """Reddi et al. Theorem 1: g_t = C when t mod 3 = 1 and −1 otherwise (f_t(x) = g_t·x), C > 2."""
    T = _check_T(T)
    if not C > 2:
        raise ValueError(f"C must be > 2 (Reddi et al., Theorem 1), got {C!r}")
    t = np.arange(1, T + 1)
    return np.where(t % 3 == 1, float(C), -1.0)


def periodic_gradients(T: int, big: float, small: float, period: int) -> np.ndarray:
    """g_t = ``big`` when t mod period = 1 and ``small`` otherwise (the synthetic, deterministic variant)."""
    T = _check_T(T)
    if isinstance(period, bool) or not isinstance(period, numbers.Integral) or period < 2:
        raise ValueError(f"period must be an integer >= 2, got {period!r}")
    t = np.arange(1, T + 1)
    return np.where(t % period == 1 % period, float(big), float(small))


def bernoulli_gradients(T: int, big: float, small: float, p: float, rng: np.random.Generator) -> np.ndarray:
    """g_t = ``big`` with probability p and ``small`` otherwise, independently (the stochastic variant)."""
    T = _check_T(T)
    if not 0 < p < 1:
        raise ValueError(f"p must be in (0, 1), got {p!r}")
    return np.where(rng.random(T) < p, float(big), float(small))


# ----------------------------------------------------------------------------- the optimizers, fast


def lr_sequence(lr, T: int) -> np.ndarray:
    """α_t for t = 1..T from an optimizer's ``lr`` (a float, ``inverse_sqrt(alpha)`` or any callable)."""
    T = _check_T(T)
    t = np.arange(1, T + 1, dtype=np.float64)
    if isinstance(lr, InverseSqrt):
        return lr.alpha / np.sqrt(t)  # α_t = α/√t
    if callable(lr):
        return np.array([lr(int(s)) for s in range(1, T + 1)], dtype=np.float64)
    return np.full(T, float(lr))


def adam_moments(g, beta1: float, beta2: float, beta1_decay=None, bias_correction: bool = True):
    """(m̂_t, v̂_t) of Algorithm 1 for t = 1..T along axis 0 of ``g`` (m_t, v_t if not bias-corrected).

    With ``beta1_decay=λ`` the m_t line uses β1,t = β1·λ^(t−1) while m̂_t keeps 1 − β1^t, as
    :class:`adamlab.optim.Adam` does.
    """
    g = _as_float_time_series("g", g)
    T = g.shape[0]
    t = np.arange(1, T + 1, dtype=np.float64).reshape((T,) + (1,) * (g.ndim - 1))
    beta1_t = beta1 * np.ones_like(t) if beta1_decay is None else beta1 * beta1_decay ** (t - 1)
    m = affine_scan(beta1_t, (1 - beta1_t) * g)  # m_t ← β1,t·m_{t−1} + (1 − β1,t)·g_t
    v = affine_scan(beta2, (1 - beta2) * g**2)  # v_t ← β2·v_{t−1} + (1 − β2)·g_t²
    if not bias_correction:
        return m, v
    return m / (1 - beta1**t), v / (1 - beta2**t)  # m̂_t, v̂_t


def _safe_ratio(num, den):
    out = np.zeros_like(num)
    np.divide(num, den, out=out, where=den != 0)  # den = 0 only where every gradient so far was 0
    return out


def fast_steps(opt, g) -> np.ndarray:
    """The steps δ_t (x_{t+1} = x_t − δ_t before projection) that ``opt`` takes on gradients ``g``.

    ``opt`` is a fresh :class:`~adamlab.optim.SGD`, :class:`~adamlab.optim.AdaGrad`,
    :class:`~adamlab.optim.Adam` or :class:`~adamlab.optim.AMSGrad`; only its hyper-parameters are
    read. Valid whenever the gradients do not depend on the iterate (linear losses).
    """
    g = _as_float_time_series("g", g)
    T = g.shape[0]
    if opt.t != 0:
        raise ValueError(f"fast_steps needs a fresh optimizer (t = 0), got one at t = {opt.t}")
    lr = lr_sequence(opt.lr, T).reshape((T,) + (1,) * (g.ndim - 1))
    t = np.arange(1, T + 1, dtype=np.float64).reshape(lr.shape)
    if type(opt) is SGD:
        return lr * g  # θ ← θ − α_t·g_t
    if type(opt) is AdaGrad:
        s = np.cumsum(g**2, axis=0)  # s_t ← s_{t−1} + g_t²
        return lr * _safe_ratio(g, np.sqrt(s) + opt.eps)
    if type(opt) is Adam:
        m_hat, v_hat = adam_moments(g, opt.beta1, opt.beta2, opt.beta1_decay, opt.bias_correction)
        return lr * _safe_ratio(m_hat, np.sqrt(v_hat) + opt.eps)  # α_t·m̂_t/(√v̂_t + ε)
    if type(opt) is AMSGrad:
        m, v = adam_moments(g, opt.beta1, opt.beta2, None, bias_correction=False)
        v_max = np.maximum.accumulate(v, axis=0)  # v̂_t ← max(v̂_{t−1}, v_t)
        if opt.bias_correction:
            m, v_max = m / (1 - opt.beta1**t), v_max / (1 - opt.beta2**t)
        return lr * _safe_ratio(m, np.sqrt(v_max) + opt.eps)
    raise TypeError(f"fast_steps supports SGD, AdaGrad, Adam and AMSGrad, got {type(opt).__name__}")


def fast_linear_run(opt, g, x0, lo: float = -1.0, hi: float = 1.0) -> np.ndarray:
    """Played points x_1..x_T of projected ``opt`` on f_t(x) = g_t·x over [lo, hi], from x_1 = ``x0``."""
    delta = fast_steps(opt, g)
    x0 = np.asarray(x0, dtype=np.float64)
    lanes = np.broadcast_shapes(delta.shape[1:], x0.shape)  # e.g. one gradient sequence, many starts
    T, own = delta.shape[0], delta.shape[1:]
    delta = np.broadcast_to(delta.reshape((T,) + (1,) * (len(lanes) - len(own)) + own), (T,) + lanes)
    after = clamp_scan(delta[:-1], x0, lo, hi) if delta.shape[0] > 1 else delta[:0]
    first = np.broadcast_to(x0, delta.shape[1:])[None]
    return np.concatenate([first, after], axis=0)


def class_linear_run(opt, g, x0: float, lo: float = -1.0, hi: float = 1.0) -> np.ndarray:
    """The reference for :func:`fast_linear_run`: ``opt.update`` then clipping, one step at a time."""
    g = _as_float_time_series("g", g)
    if g.ndim != 1:
        raise ValueError(f"class_linear_run takes one lane, g of shape (T,), got {g.shape}")
    if not lo <= x0 <= hi:
        raise ValueError(f"x0 must lie in [{lo}, {hi}], got {x0}")
    params = {"x": np.array([float(x0)])}
    xs = np.empty(g.shape[0])
    for i, gt in enumerate(g):
        xs[i] = params["x"][0]
        opt.update(params, {"x": np.array([gt])})
        np.clip(params["x"], lo, hi, out=params["x"])  # x_{t+1} = Π_X(x_t − δ_t)
    return xs


def linear_regret(g, x, lo: float = -1.0, hi: float = 1.0) -> np.ndarray:
    """R(T) = Σ_{t≤T} g_t·x_t − min_{x∈[lo,hi]} x·Σ_{t≤T} g_t, for every T = 1..len(g) (axis 0)."""
    g = _as_float_time_series("g", g)
    x = np.asarray(x, dtype=np.float64)
    if x.ndim < g.ndim or x.shape[0] != g.shape[0]:
        raise ValueError(f"x must have g's time axis first (and g's lanes), got x {x.shape} and g {g.shape}")
    g = g.reshape(g.shape + (1,) * (x.ndim - g.ndim))  # one gradient sequence for every lane of x
    if np.broadcast_shapes(x.shape, g.shape) != x.shape:
        raise ValueError(f"x and g have different lanes: x {x.shape}, g {g.shape}")
    played = np.cumsum(g * x, axis=0)
    total = np.cumsum(np.broadcast_to(g, x.shape), axis=0)
    return played - np.minimum(lo * total, hi * total)


def barrier_run(opt, g, x0: float, K: float):
    """Plain ``opt`` (no projection) on f_t(x) = g_t·x + K·max(0, |x| − 1) over the real line.

    With K > max|g_t| every f_t is convex with gradients bounded by max|g| + K, and the best fixed
    point of Σ_{t≤T} f_t is x* = −sign(Σ g_t) ∈ {−1, 1} with value −|Σ g_t| (outside [−1, 1] the
    barrier's slope K·T exceeds |Σ g_t|). Returns ``(x, grads, regret)``: the played points x_1..x_T,
    the gradients g_t + K·sign(x_t)·[|x_t| > 1], and R(T) for every T.
    """
    g = _as_float_time_series("g", g)
    if g.ndim != 1:
        raise ValueError(f"barrier_run takes one lane, g of shape (T,), got {g.shape}")
    if not K > np.max(np.abs(g)):
        raise ValueError(f"K must exceed max |g_t| = {np.max(np.abs(g)):g} (else x* may leave [-1, 1]), got {K!r}")
    params = {"x": np.array([float(x0)])}
    xs = np.empty(g.shape[0])
    grads = np.empty(g.shape[0])
    for i, gt in enumerate(g):
        x = xs[i] = params["x"][0]
        grads[i] = gt + (K * np.sign(x) if abs(x) > 1 else 0.0)  # ∇f_t(x_t)
        opt.update(params, {"x": np.array([grads[i]])})
    losses = g * xs + K * np.maximum(0.0, np.abs(xs) - 1)
    return xs, grads, np.cumsum(losses) + np.abs(np.cumsum(g))
