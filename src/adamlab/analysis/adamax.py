"""AdaMax (Kingma & Ba 2015, §7.1, Algorithm 2): the L∞ limit and the exact bound on its steps.

Notation of the paper: g_i the gradient at step i, k = t − i its age at step t, β1, β2 ∈ [0, 1).

* Lp-Adam (§7.1): v_t = β2^p·v_{t−1} + (1 − β2^p)·|g_t|^p, v_0 = 0, and u_t^(p) = v_t^(1/p). Unrolled,
  v_t = (1 − β2^p)·Σ_i (β2^k·|g_i|)^p, so u_t^(p) = (1 − β2^p)^(1/p)·‖(β2^k·|g_i|)_i‖_p, which tends
  to the largest decayed magnitude u_t = max_i β2^k·|g_i| = max(β2·u_{t−1}, |g_t|) as p → ∞.
  :func:`lp_u_naive` runs the recursion as written (it over- and underflows for large p);
  :func:`lp_u_log` runs it on log v_t (a log-sum-exp recursion), which stays accurate for every p.
* Step bound. With Δ_t = −(α/(1 − β1^t))·m_t/u_t and m_t = (1 − β1)·Σ_i β1^k·g_i, every
  |g_i| ≤ β2^(−k)·u_t, hence |Δ_t|/α ≤ A_t with (:func:`sup_step`)

      A_t = (1 − β1)/(1 − β1^t) · Σ_{k=0}^{t−1} (β1/β2)^k,

  attained by g_i = β2^(−k), i.e. a gradient that *shrinks* by the factor β2 per step, so that every
  past gradient decays to exactly u_t (:func:`attaining_history`). Equivalently A_t is the mean of
  β2^(−k) under the weights (1 − β1)·β1^k/(1 − β1^t) that m̂_t gives to ages k = 0..t−1, so A_1 = 1
  and, for β1 > 0, A_t > 1 at every t ≥ 2 and increases with t, towards (1 − β1)·β2/(β2 − β1) when
  β1 < β2 (:func:`sup_step_limit`) and without bound when β1 ≥ β2.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import optimize

from adamlab.optim.adam import AdaMax
from adamlab.optim.base import check_unit_interval

from .update_bound import optimizer_steps

__all__ = [
    "sup_step",
    "sup_step_limit",
    "attaining_history",
    "step_ratio",
    "adversarial_search",
    "adamax_u",
    "adamax_steps",
    "lp_u_naive",
    "lp_u_log",
    "lp_ratio_bounds",
]


def _check_t(t) -> int | float:
    if t == math.inf:
        return math.inf
    if isinstance(t, bool) or not isinstance(t, (int, np.integer)) or t < 1:
        raise ValueError(f"t must be an integer >= 1 or math.inf, got {t!r}")
    return int(t)


def _check_p(p) -> float:
    if isinstance(p, bool) or not isinstance(p, (int, float, np.integer, np.floating)) or not (
            math.isfinite(p) and p > 0):
        raise ValueError(f"p must be a finite number > 0, got {p!r}")
    return float(p)


def _as_history(grads) -> np.ndarray:
    g = np.asarray(grads, dtype=np.float64)
    if g.ndim == 0 or g.shape[0] == 0:
        raise ValueError(f"grads must have at least one step along axis 0, got shape {g.shape}")
    if not np.all(np.isfinite(g)):
        raise ValueError("grads must be finite")
    return g


def _one_minus_pow(beta: float, t: float) -> float:
    """1 − β^t without cancellation (β ∈ [0, 1), t > 0)."""
    return 1.0 if beta == 0.0 else -math.expm1(t * math.log(beta))


def sup_step_limit(beta1, beta2) -> float:
    """lim_{t→∞} A_t = sup over t and over all histories of |Δ_t|/α (§7.1).

    (1 − β1)·β2/(β2 − β1) when β1 < β2 (1 for β1 = 0), ``math.inf`` when β1 ≥ β2 and β1 > 0.
    """
    beta1 = check_unit_interval("beta1", beta1)
    beta2 = check_unit_interval("beta2", beta2)
    if beta1 == 0.0:
        return 1.0
    if beta1 >= beta2:
        return math.inf
    return (1.0 - beta1) * beta2 / (beta2 - beta1)


def sup_step(beta1, beta2, t) -> float:
    """A_t: the exact supremum of |Δ_t|/α over all real gradient histories g_1..g_t (§7.1).

    A_t = (1 − β1)/(1 − β1^t)·Σ_{k<t} (β1/β2)^k (the maximum, attained by :func:`attaining_history`);
    ``t = math.inf`` gives :func:`sup_step_limit`. Returns ``math.inf`` where the value overflows
    (β1 > β2, large t) and for β2 = 0 < β1 with t ≥ 2 (then u_t = |g_t| ignores g_{t−1}).
    """
    beta1 = check_unit_interval("beta1", beta1)
    beta2 = check_unit_interval("beta2", beta2)
    t = _check_t(t)
    if t == math.inf:
        return sup_step_limit(beta1, beta2)
    if beta1 == 0.0 or t == 1:
        return 1.0
    if beta2 == 0.0:
        return math.inf
    r = beta1 / beta2
    front = (1.0 - beta1) / _one_minus_pow(beta1, t)
    if r == 1.0:
        return front * t
    if r < 1.0:
        return front * _one_minus_pow(r, t) / (1.0 - r)
    # r > 1: Σ r^k = (r^t − 1)/(r − 1), in logs to reach the overflow threshold gracefully
    log_sum = t * math.log(r) + math.log(-math.expm1(-t * math.log(r))) - math.log(r - 1.0)
    log_value = math.log(front) + log_sum
    return math.exp(log_value) if log_value < 709.0 else math.inf


def attaining_history(beta2, t) -> np.ndarray:
    """g_i = β2^(−(t−i)), i = 1..t (float64, shape (t,)): AdaMax's step at t equals α·A_t.

    Every past gradient decays to exactly u_t = 1 = |g_t|, so all terms of m_t count at full
    weight. Needs β2 > 0 (for β2 = 0 the supremum is infinite and not attained for β1 > 0).
    """
    beta2 = check_unit_interval("beta2", beta2)
    t = _check_t(t)
    if t == math.inf:
        raise ValueError("t must be finite: the supremum over t is a limit, not attained")
    if beta2 == 0.0:
        raise ValueError("beta2 must be > 0 for an attaining history, got 0.0")
    if (t - 1) * -math.log(beta2) > 700.0:
        raise ValueError(f"beta2^-(t-1) overflows float64 for beta2 = {beta2!r}, t = {t}")
    return beta2 ** -np.arange(t - 1, -1, -1, dtype=np.float64)


def step_ratio(grads, beta1, beta2) -> np.ndarray:
    """|Δ_t|/α = |m_t|/((1 − β1^t)·u_t) at the last step t, straight from the unrolled sums.

    ``grads`` has shape (t,) or (t, n) (n independent coordinates); independent of
    ``adamlab.optim``. A coordinate whose gradients were all 0 gives 0 (the optimizer's convention).
    """
    beta1 = check_unit_interval("beta1", beta1)
    beta2 = check_unit_interval("beta2", beta2)
    g = _as_history(grads)
    t = g.shape[0]
    k = np.arange(t - 1, -1, -1, dtype=np.float64).reshape((t,) + (1,) * (g.ndim - 1))
    m = (1.0 - beta1) * np.sum(beta1**k * g, axis=0)
    u = np.max(beta2**k * np.abs(g), axis=0)
    ratio = np.divide(np.abs(m), u, out=np.zeros_like(u), where=u != 0)
    return ratio / _one_minus_pow(beta1, t)


def adversarial_search(beta1, beta2, t, seed=0, popsize=20, tol=1e-13):
    """Maximise :func:`step_ratio` over g ∈ R^t numerically, without using the closed form.

    |Δ_t|/α is unchanged when the whole history is scaled by c ≠ 0, so searching the box
    [−1, 1]^t loses nothing. The ratio is piecewise smooth (a max in u_t), so a derivative-free
    global optimiser is used: SciPy's differential evolution (seeded, vectorised over its
    population). Returns ``(best_ratio, best_history)``.
    """
    check_unit_interval("beta1", beta1)
    check_unit_interval("beta2", beta2)
    t = _check_t(t)
    if t == math.inf:
        raise ValueError("t must be finite for a numerical search")
    res = optimize.differential_evolution(
        lambda g: -step_ratio(g, beta1, beta2), [(-1.0, 1.0)] * t, seed=seed, popsize=popsize,
        tol=tol, atol=0.0, maxiter=20000, polish=False, vectorized=True, updating="deferred")
    return float(-res.fun), np.asarray(res.x)


def adamax_u(grads, beta2) -> np.ndarray:
    """u_1..u_t of Algorithm 2: u_t = max(β2·u_{t−1}, |g_t|), u_0 = 0; shape of ``grads``."""
    beta2 = check_unit_interval("beta2", beta2)
    g = _as_history(grads)
    u = np.empty_like(g)
    prev = np.zeros_like(g[0])
    for i, gi in enumerate(g):
        prev = np.maximum(beta2 * prev, np.abs(gi))
        u[i] = prev
    return u


def adamax_steps(grads, beta1, beta2, lr=0.002) -> np.ndarray:
    """The steps that ``adamlab.optim.AdaMax`` takes on a fixed history (see
    :func:`adamlab.analysis.update_bound.optimizer_steps`); ``grads`` must be finite."""
    return optimizer_steps(AdaMax(lr=lr, beta1=beta1, beta2=beta2), _as_history(grads))


def lp_u_naive(grads, beta2, p, dtype=np.float64) -> np.ndarray:
    """u_t^(p) = v_t^(1/p) from Lp-Adam's recursion as written in §7.1, in ``dtype``.

    v_t = β2^p·v_{t−1} + (1 − β2^p)·|g_t|^p. Large p over- or underflows |g_t|^p (inf or 0 in the
    result, or nan); floating-point warnings are silenced because that failure is what it shows.
    """
    beta2 = check_unit_interval("beta2", beta2)
    p = _check_p(p)
    g = _as_history(grads).astype(dtype)
    out = np.empty_like(g)
    with np.errstate(all="ignore"):
        decay = dtype(beta2) ** dtype(p)
        v = np.zeros_like(g[0])
        for i, gi in enumerate(g):
            v = decay * v + (dtype(1) - decay) * np.abs(gi) ** dtype(p)
            out[i] = v ** dtype(1.0 / p)
    return out


def lp_u_log(grads, beta2, p) -> np.ndarray:
    """u_t^(p) computed on L_t = log(v_t/(1 − β2^p)) = log Σ_i β2^(pk)·|g_i|^p, in float64.

    L_t = logaddexp(L_{t−1} + p·log β2, p·log|g_t|) and log u_t^(p) = (log(1 − β2^p) + L_t)/p:
    no power of g is ever formed, so nothing over- or underflows for any p > 0 (β2 > 0).
    """
    beta2 = check_unit_interval("beta2", beta2)
    p = _check_p(p)
    if beta2 == 0.0:
        raise ValueError("beta2 must be > 0 for the log form, got 0.0")
    g = _as_history(grads)
    log_c = math.log(_one_minus_pow(beta2, p))
    out = np.empty_like(g)
    with np.errstate(divide="ignore"):  # log 0 = −inf is exact here: a zero gradient adds nothing
        L = np.full_like(g[0], -np.inf)
        for i, gi in enumerate(g):
            L = np.logaddexp(L + p * math.log(beta2), p * np.log(np.abs(gi)))
            out[i] = np.exp((log_c + L) / p)
    return out


def lp_ratio_bounds(beta2, p, t) -> tuple[float, float]:
    """Bounds on u_t^(p)/u_t for every history of length t with u_t > 0:
    (1 − β2^p)^(1/p) ≤ u_t^(p)/u_t ≤ (1 − β2^p)^(1/p)·t^(1/p) (a p-norm of t numbers lies between
    their largest and t^(1/p) times it); both ends tend to 1 as p → ∞."""
    beta2 = check_unit_interval("beta2", beta2)
    p = _check_p(p)
    t = _check_t(t)
    if t == math.inf or beta2 == 0.0:
        raise ValueError("the bounds need finite t and beta2 > 0")
    lo = math.exp(math.log(_one_minus_pow(beta2, p)) / p)
    return lo, lo * math.exp(math.log(t) / p)
