"""How large can Adam's step be? Exact bounds on |m̂_t|/√v̂_t (Kingma & Ba 2015, §2.1).

§2.1 of the paper: with ε = 0 the effective step is Δ_t = α·m̂_t/√v̂_t, and it states the bounds
|Δ_t| ≤ α·(1 − β1)/√(1 − β2) when (1 − β1) > √(1 − β2), and |Δ_t| ≤ α otherwise.

Unrolling Algorithm 1 from m_0 = v_0 = 0 (the sums of §3), with k = t − i steps of age::

    m̂_t = Σ_{i=1..t} a_i g_i,     a_i = (1 − β1)·β1^k / (1 − β1^t),
    v̂_t = Σ_{i=1..t} b_i g_i²,    b_i = (1 − β2)·β2^k / (1 − β2^t).

Write a_i g_i = (a_i/√b_i)·(√b_i g_i); Cauchy–Schwarz gives |m̂_t| ≤ √(Σ a_i²/b_i)·√v̂_t, with
equality exactly when √b_i g_i ∝ a_i/√b_i, i.e. g_i ∝ a_i/b_i ∝ (β1/β2)^k. So, over all real
gradient histories of length t (with v̂_t > 0), the exact supremum is attained and equals::

    B_t = (1 − β1)/(1 − β1^t) · √((1 − β2^t)/(1 − β2)) · √(Σ_{k=0..t−1} κ^k),   κ = β1²/β2.

B_1 = 1 (the first step is exactly ±α). For κ < 1 (β1² < β2), B_t → (1 − β1)/√((1 − β2)(1 − κ)) as
t → ∞; for κ ≥ 1 it grows without bound. (κ is not the γ = β1²/√β2 of Theorem 4.1, §4: γ < 1 still
admits β2 ≤ β1², i.e. κ ≥ 1, where this supremum is infinite.) The limit squared minus one is
(β1 − β2)²/((1 − β2)(β2 − β1²)) ≥ 0, so only β1 = β2 keeps every step within α.

Functions (names stable: other chapters import them):

* :func:`check_betas` validates (β1, β2) as Algorithm 1 requires, β1, β2 ∈ [0, 1);
* :func:`moment_weights` the weights a_i, b_i; :func:`corrected_moments` m̂_s and v̂_s, and
  :func:`adam_ratio` m̂_s/√v̂_s, by Algorithm 1's recursion; :func:`adam_steps` the steps that
  ``adamlab.optim.Adam`` itself takes on a fixed history;
* :func:`sup_ratio` B_t (``t = math.inf`` for the limit), :func:`sup_ratio_limit`,
  :func:`sup_ratio_expr` (SymPy), :func:`attaining_history` the history that attains B_t;
* :func:`sparse_ratio` the paper's "most severe sparsity" case, :func:`paper_bound` §2.1's bound;
* :func:`adversarial_search` a numerical maximisation (scipy.optimize, random starts) of any
  ratio function of a gradient history, independent of the closed form.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Callable

import numpy as np
from scipy.optimize import minimize
from scipy.signal import lfilter

from adamlab.optim.adam import Adam
from adamlab.optim.base import check_unit_interval

__all__ = [
    "SearchResult",
    "adam_ratio",
    "adam_steps",
    "adversarial_search",
    "attaining_history",
    "check_betas",
    "check_t",
    "corrected_moments",
    "optimizer_steps",
    "moment_weights",
    "paper_bound",
    "sparse_ratio",
    "sup_ratio",
    "sup_ratio_expr",
    "sup_ratio_limit",
]


def check_betas(beta1, beta2) -> tuple[float, float]:
    """Return (β1, β2) as floats; ``ValueError`` naming the culprit unless both lie in [0, 1)."""
    return check_unit_interval("beta1", beta1), check_unit_interval("beta2", beta2)


def check_t(t, allow_inf: bool = False):
    """Return the step index t (an int ≥ 1, or ``math.inf`` where allowed); else ``ValueError``."""
    if allow_inf and isinstance(t, float) and t == math.inf:
        return math.inf
    if isinstance(t, bool) or not isinstance(t, numbers.Integral) or t < 1:
        what = "a positive integer or math.inf" if allow_inf else "a positive integer"
        raise ValueError(f"t must be {what}, got {t!r}")
    return int(t)


def _one_minus_pow(beta: float, t) -> float:
    """1 − β^t, accurate when β^t is close to 1 (β near 1, small t); t may be inf."""
    if beta == 0.0:
        return 1.0
    if t == math.inf:
        return 1.0
    return -math.expm1(t * math.log(beta))


def moment_weights(beta1, beta2, t) -> tuple[np.ndarray, np.ndarray]:
    """The weights of the unrolled moments (§3): m̂_t = Σ a_i g_i and v̂_t = Σ b_i g_i².

    Returns float64 arrays ``a``, ``b`` of length t, entry ``i − 1`` belonging to g_i (oldest first):
    a_i = (1 − β1)·β1^(t−i)/(1 − β1^t), b_i = (1 − β2)·β2^(t−i)/(1 − β2^t); each sums to 1.
    """
    beta1, beta2 = check_betas(beta1, beta2)
    t = check_t(t)
    k = np.arange(t - 1, -1, -1, dtype=np.float64)  # age t − i of g_i
    a = (1 - beta1) * np.power(beta1, k) / _one_minus_pow(beta1, t)
    b = (1 - beta2) * np.power(beta2, k) / _one_minus_pow(beta2, t)
    return a, b


def corrected_moments(grads, beta1, beta2) -> tuple[np.ndarray, np.ndarray]:
    """m̂_s and v̂_s for s = 1..t by Algorithm 1's recursion (lines L3–L6), from m_0 = v_0 = 0.

    ``grads`` has shape (t, ...) (time first; further axes are independent coordinates). The moving
    averages run as linear filters along time, without the closed-form weights.
    """
    beta1, beta2 = check_betas(beta1, beta2)
    g = np.asarray(grads, dtype=np.float64)
    if g.ndim == 0 or g.shape[0] == 0:
        raise ValueError(f"grads must have shape (t, ...) with t >= 1, got shape {g.shape}")
    m = lfilter([1 - beta1], [1.0, -beta1], g, axis=0)  # m_s ← β1·m_{s−1} + (1 − β1)·g_s
    v = lfilter([1 - beta2], [1.0, -beta2], g * g, axis=0)  # v_s ← β2·v_{s−1} + (1 − β2)·g_s²
    s = np.arange(1, g.shape[0] + 1, dtype=np.float64).reshape((-1,) + (1,) * (g.ndim - 1))
    m_hat = m / -np.expm1(s * np.log(beta1)) if beta1 > 0 else m  # m̂_s ← m_s/(1 − β1^s)
    v_hat = v / -np.expm1(s * np.log(beta2)) if beta2 > 0 else v  # v̂_s ← v_s/(1 − β2^s)
    return m_hat, np.maximum(v_hat, 0.0)  # the filter may round a true 0 to −1e−300


def adam_ratio(grads, beta1, beta2) -> np.ndarray:
    """m̂_s/√v̂_s for s = 1..t by Algorithm 1's recursion with ε = 0 (Δ_s = −α times this, §2.1).

    ``grads`` has shape (t, ...) (time first; further axes are independent coordinates); the moments
    come from :func:`corrected_moments`. Where v̂_s = 0 (every gradient so far was 0) the ratio is
    0, as ``adamlab.optim.Adam`` with ε = 0 steps 0.
    """
    m_hat, v_hat = corrected_moments(grads, beta1, beta2)
    root = np.sqrt(v_hat)
    out = np.zeros_like(m_hat)
    np.divide(m_hat, root, out=out, where=root > 0)
    return out


def optimizer_steps(opt, grads) -> np.ndarray:
    """The steps Δ_s = θ_s − θ_{s−1}, s = 1..t, that the optimizer ``opt`` takes on a fixed history.

    ``grads`` (float64) has shape (t, ...) with t >= 1. The gradients do not depend on θ, so θ is
    reset to 0 before each update and the step is read off exactly (a difference of two large θ
    would lose digits).
    """
    g = np.asarray(grads, dtype=np.float64)
    if g.ndim == 0 or g.shape[0] == 0:
        raise ValueError(f"grads must have shape (t, ...) with t >= 1, got shape {g.shape}")
    params = {"theta": np.zeros(g.shape[1:])}
    steps = np.empty(g.shape)
    for s, g_s in enumerate(g):
        params["theta"].fill(0.0)
        opt.update(params, {"theta": np.ascontiguousarray(g_s)})
        steps[s] = params["theta"]
    return steps


def adam_steps(grads, beta1, beta2, eps=0.0, lr=1.0) -> np.ndarray:
    """The steps that ``adamlab.optim.Adam`` takes on a fixed history (see :func:`optimizer_steps`)."""
    return optimizer_steps(Adam(lr=lr, beta1=beta1, beta2=beta2, eps=eps), grads)


def sup_ratio(beta1, beta2, t) -> float:
    """B_t = sup |m̂_t|/√v̂_t over all real gradient histories of length t (ε = 0; §2.1, exact).

    B_t = (1 − β1)/(1 − β1^t) · √((1 − β2^t)/(1 − β2)) · √((1 − κ^t)/(1 − κ)), κ = β1²/β2 (the last
    factor is √t when κ = 1). ``t = math.inf`` gives the limit, ``math.inf`` when β1² ≥ β2 > 0.
    β2 = 0 with β1 > 0 is unbounded for t ≥ 2 (v̂_t sees only g_t, which may be tiny).
    """
    beta1, beta2 = check_betas(beta1, beta2)
    t = check_t(t, allow_inf=True)
    if t == 1:
        return 1.0
    if beta1 == 0.0:
        # only g_t enters m̂_t: the paper's sparse case, √((1 − β2^t)/(1 − β2))
        return math.sqrt(_one_minus_pow(beta2, t) / (1 - beta2))
    if beta2 == 0.0:
        return math.inf
    one_minus_kappa = (beta2 - beta1 * beta1) / beta2
    if one_minus_kappa <= 0.0 and t == math.inf:
        return math.inf
    if one_minus_kappa == 0.0:
        geometric = float(t)
    else:  # (1 − κ^t)/(1 − κ), written to stay accurate for κ near 1
        geometric = -math.expm1(t * math.log(beta1 * beta1 / beta2)) / one_minus_kappa
    return ((1 - beta1) / _one_minus_pow(beta1, t)
            * math.sqrt(_one_minus_pow(beta2, t) / (1 - beta2)) * math.sqrt(geometric))


def sup_ratio_limit(beta1, beta2) -> float:
    """lim_{t→∞} B_t = (1 − β1)/√((1 − β2)(1 − β1²/β2)) for β1² < β2, else ``math.inf`` (§2.1)."""
    return sup_ratio(beta1, beta2, math.inf)


def sup_ratio_expr(beta1, beta2, t):
    """B_t as a SymPy expression in whatever ``beta1``, ``beta2``, ``t`` are (symbols or numbers).

    The closed form of :func:`sup_ratio` for κ = β1²/β2 ≠ 1, for symbolic work and printing.
    """
    import sympy as sp

    kappa = beta1**2 / beta2
    return ((1 - beta1) / (1 - beta1**t) * sp.sqrt((1 - beta2**t) / (1 - beta2))
            * sp.sqrt((1 - kappa**t) / (1 - kappa)))


def attaining_history(beta1, beta2, t) -> np.ndarray:
    """The gradient history g_1..g_t (oldest first) with |m̂_t|/√v̂_t = B_t: g_i ∝ (β1/β2)^(t−i).

    Cauchy–Schwarz is tight when g_i ∝ a_i/b_i (module docstring). Scaled so that max |g_i| = 1;
    entries that underflow are 0, which changes the attained ratio by less than rounding error.
    For β1 = 0 it is the paper's sparse history (0, ..., 0, 1). Needs β2 > 0: for β2 = 0 and β1 > 0
    the supremum is infinite and not attained.
    """
    beta1, beta2 = check_betas(beta1, beta2)
    t = check_t(t)
    if beta2 == 0.0:
        raise ValueError(f"attaining_history needs beta2 > 0, got {beta2!r}: with beta2 = 0 the "
                         "supremum is not attained (infinite for beta1 > 0)")
    k = np.arange(t - 1, -1, -1, dtype=np.float64)
    if beta1 == 0.0:
        return (k == 0).astype(np.float64)
    log_g = k * math.log(beta1 / beta2)
    return np.exp(log_g - log_g.max())


def sparse_ratio(beta1, beta2, t) -> float:
    """|m̂_t|/√v̂_t when g_i = 0 for every i < t and g_t ≠ 0 (§2.1's "most severe case of sparsity").

    (1 − β1)·√(1 − β2^t) / ((1 − β1^t)·√(1 − β2)); ``t = math.inf`` gives (1 − β1)/√(1 − β2).
    """
    beta1, beta2 = check_betas(beta1, beta2)
    t = check_t(t, allow_inf=True)
    return (1 - beta1) * math.sqrt(_one_minus_pow(beta2, t)) / (_one_minus_pow(beta1, t)
                                                                 * math.sqrt(1 - beta2))


def paper_bound(beta1, beta2) -> float:
    """§2.1's stated bound on |Δ_t|/α: (1 − β1)/√(1 − β2) if (1 − β1) > √(1 − β2), else 1."""
    beta1, beta2 = check_betas(beta1, beta2)
    sparse = (1 - beta1) / math.sqrt(1 - beta2)
    return sparse if (1 - beta1) > math.sqrt(1 - beta2) else 1.0


@dataclass(frozen=True)
class SearchResult:
    """Outcome of :func:`adversarial_search`.

    ``value``: the largest |ratio| found; ``history``: the history attaining it, scaled to
    max |g_i| = 1 (negated, where that leaves |ratio| unchanged, so that its ratio is positive);
    ``values``: the best value from each start;
    ``nfev``: evaluations of the ratio function in all.
    """

    value: float
    history: np.ndarray
    values: np.ndarray
    nfev: int


def adversarial_search(ratio_fn: Callable[[np.ndarray], float], t, *, starts: int = 8,
                       rng: np.random.Generator, maxiter: int = 2000,
                       odd: bool = False) -> SearchResult:
    """Maximise |ratio_fn(g)| over real histories g ∈ R^t numerically (scipy.optimize, L-BFGS-B).

    ``ratio_fn`` maps a history of shape (t,) (oldest first) to the ratio at step t, e.g.
    ``lambda g: adam_ratio(g, beta1, beta2)[-1]``. Each start is a history of i.i.d. normal entries
    with log-uniform magnitudes over two decades, drawn from ``rng``; gradients are by finite
    differences, so nothing of the closed form enters. Both ``ratio_fn`` and ``−ratio_fn`` are
    maximised from each start; with ``odd=True`` (the caller asserts ratio_fn(−g) = −ratio_fn(g), as
    for Adam's and AdaMax's ratios) only ``ratio_fn`` is, since then max |ratio| = max ratio.
    """
    t = check_t(t)
    if isinstance(starts, bool) or not isinstance(starts, numbers.Integral) or starts < 1:
        raise ValueError(f"starts must be a positive integer, got {starts!r}")
    best_value, best_g, values, nfev = -math.inf, None, [], 0
    for _ in range(starts):
        g0 = rng.normal(size=t) * 10.0 ** rng.uniform(-1.0, 1.0, size=t)
        start_best = -math.inf
        for sign in ((1.0,) if odd else (1.0, -1.0)):
            def objective(g, sign=sign):
                r = float(ratio_fn(g / np.max(np.abs(g)))) if np.any(g) else 0.0
                return -sign * r

            res = minimize(objective, g0, method="L-BFGS-B",
                           options={"maxiter": maxiter, "ftol": 1e-15, "gtol": 1e-12})
            nfev += int(res.nfev)
            value = -float(res.fun)
            if value > start_best:
                start_best = value
            if value > best_value:
                best_value, best_g = value, res.x
        values.append(start_best)
    history = best_g / np.max(np.abs(best_g))
    r, r_flipped = float(ratio_fn(history)), float(ratio_fn(-history))
    if r < 0 and abs(r + r_flipped) <= 1e-12 * abs(r):  # odd at this point: report the positive one
        history = -history
    return SearchResult(value=best_value, history=history, values=np.array(values), nfev=nfev)
