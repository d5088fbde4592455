"""§4 of Kingma & Ba (2015): Theorem 4.1's regret bound, Lemmas 10.3 and 10.4, and online problems.

Online convex programming (Zinkevich 2003): at step t the learner plays θ_t, then sees the convex loss
f_t and its gradient g_t = ∇f_t(θ_t); the regret is R(T) = Σ_{t≤T} f_t(θ_t) − min_{θ∈X} Σ_{t≤T} f_t(θ).
The point θ_t here is the point where g_t is evaluated (θ_{t−1} in Algorithm 1's indexing); θ_1 is the
start. Everything works on histories: ``points`` (T, d) holds θ_1..θ_T and ``grads`` (T, d) g_1..g_T.

* :class:`OnlineLogistic`, :class:`OnlineLeastSquares`: streams of convex losses on a box X with
  projection (clipping), :func:`run_online` to play an optimizer on them, :func:`best_fixed` for the
  comparator θ*_T;
* :func:`theorem41_bound`: the three terms of Theorem 4.1 with G, G∞, D, D∞, γ, λ taken from a run;
* :func:`lemma103_sides`, :func:`lemma104_sides`: both sides of the appendix lemmas, vectorised over
  lanes, and :func:`lane_search`, a lane-parallel random local search used to look for violations;
* :func:`gamma_increments`, :func:`telescoping_check`: Γ_t = √v̂_t/α_t − √v̂_{t−1}/α_{t−1} and the
  step of the proof that needs Γ_t ≥ 0.

The statements follow the digest of the paper (Theorem 4.1, Lemma 10.3, Lemma 10.4) literally.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize

from .reddi import adam_moments

__all__ = [
    "OnlineLogistic",
    "OnlineLeastSquares",
    "run_online",
    "best_fixed",
    "running_diameter",
    "BoundTerms",
    "theorem41_bound",
    "lemma103_sides",
    "lemma104_sides",
    "lane_search",
    "gamma_increments",
    "telescoping_check",
]


# ----------------------------------------------------------------------------- online problems


class _OnlineBoxProblem:
    """A stream of losses f_t(θ) = ℓ(a_tᵀθ, y_t) on the box X = [lo, hi]^d (arrays or scalars)."""

    def __init__(self, A, y, lo, hi) -> None:
        A = np.asarray(A, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)
        if A.ndim != 2 or y.shape != A.shape[:1]:
            raise ValueError(f"A must be (T, d) and y (T,), got A {A.shape} and y {y.shape}")
        d = A.shape[1]
        self.lo = np.broadcast_to(np.asarray(lo, dtype=np.float64), (d,)).copy()
        self.hi = np.broadcast_to(np.asarray(hi, dtype=np.float64), (d,)).copy()
        if not np.all(self.lo < self.hi):
            raise ValueError(f"the box needs lo < hi in every coordinate, got lo={self.lo}, hi={self.hi}")
        self.A, self.y = A, y

    @property
    def T(self) -> int:
        return self.A.shape[0]

    @property
    def d(self) -> int:
        return self.A.shape[1]

    def project(self, theta: np.ndarray) -> None:
        """In place: θ ← Π_X(θ). On a box the Euclidean and every diagonally weighted projection agree."""
        np.clip(theta, self.lo, self.hi, out=theta)

    def _check_t(self, T) -> int:
        if isinstance(T, bool) or not isinstance(T, numbers.Integral) or not 1 <= T <= self.T:
            raise ValueError(f"T must be an integer in [1, {self.T}] for this stream, got {T!r}")
        return int(T)

    def loss(self, theta: np.ndarray, t: int) -> float:
        """f_t(θ) for t = 1..T."""
        return float(self._ell(self.A[t - 1] @ theta, self.y[t - 1]))

    def grad(self, theta: np.ndarray, t: int) -> np.ndarray:
        """∇f_t(θ) for t = 1..T."""
        return self._dell(self.A[t - 1] @ theta, self.y[t - 1]) * self.A[t - 1]

    def played_losses(self, points: np.ndarray) -> np.ndarray:
        """f_t(θ_t) for t = 1..len(points)."""
        n = points.shape[0]
        return self._ell(np.einsum("td,td->t", self.A[:n], points), self.y[:n])

    def total(self, theta: np.ndarray, T: int) -> tuple[float, np.ndarray]:
        """(Σ_{t≤T} f_t(θ), its gradient)."""
        z = self.A[:T] @ theta
        return float(np.sum(self._ell(z, self.y[:T]))), self.A[:T].T @ self._dell(z, self.y[:T])


class OnlineLogistic(_OnlineBoxProblem):
    """f_t(θ) = log(1 + exp(−y_t·a_tᵀθ)), labels y_t ∈ {−1, +1}: online logistic regression on a box."""

    def __init__(self, A, y, lo, hi) -> None:
        super().__init__(A, y, lo, hi)
        if not np.all(np.abs(self.y) == 1):
            raise ValueError("labels y must be -1 or +1 for OnlineLogistic")

    @staticmethod
    def _ell(z, y):
        return np.logaddexp(0.0, -y * z)

    @staticmethod
    def _dell(z, y):
        return -y * np.exp(-np.logaddexp(0.0, y * z))  # −y·σ(−y z)


class OnlineLeastSquares(_OnlineBoxProblem):
    """f_t(θ) = ½·(a_tᵀθ − y_t)²: a least-squares stream on a box."""

    @staticmethod
    def _ell(z, y):
        return 0.5 * (z - y) ** 2

    @staticmethod
    def _dell(z, y):
        return z - y


def run_online(opt, problem, theta0, T: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Play ``opt`` (projected onto the problem's box after every update) for T rounds.

    Returns ``(points, grads, losses)``: θ_1..θ_T (θ_1 = ``theta0``), g_t = ∇f_t(θ_t), f_t(θ_t).
    """
    T = problem._check_t(T)
    theta0 = np.asarray(theta0, dtype=np.float64)
    if theta0.shape != (problem.d,):
        raise ValueError(f"theta0 must have shape ({problem.d},), got {theta0.shape}")
    if np.any((theta0 < problem.lo) | (theta0 > problem.hi)):
        raise ValueError(f"theta0 must lie in the box [{problem.lo}, {problem.hi}], got {theta0}")
    params = {"theta": theta0.copy()}
    points = np.empty((T, problem.d))
    grads = np.empty((T, problem.d))
    for t in range(1, T + 1):
        points[t - 1] = params["theta"]
        grads[t - 1] = problem.grad(params["theta"], t)
        opt.update(params, {"theta": grads[t - 1].copy()})
        problem.project(params["theta"])  # θ_{t+1} = Π_X(θ_t − step)
    return points, grads, problem.played_losses(points)


def best_fixed(problem, T: int) -> tuple[np.ndarray, float]:
    """θ*_T = argmin_{θ∈X} Σ_{t≤T} f_t(θ) and the minimum, by L-BFGS-B on the box (tight tolerances)."""
    T = problem._check_t(T)
    x0 = np.clip(np.zeros(problem.d), problem.lo, problem.hi)
    res = minimize(problem.total, x0, args=(T,), jac=True, method="L-BFGS-B",
                   bounds=list(zip(problem.lo, problem.hi)),
                   options={"ftol": 1e-15, "gtol": 1e-11, "maxiter": 10_000})
    return res.x, float(res.fun)


# ----------------------------------------------------------------------------- Theorem 4.1


def running_diameter(points) -> np.ndarray:
    """D_t = max_{j,k ≤ t} ‖θ_j − θ_k‖₂ for t = 1..n (exact; O(n²·d) work in row blocks)."""
    P = np.asarray(points, dtype=np.float64)
    if P.ndim == 1:
        P = P[:, None]
    n = P.shape[0]
    if P.shape[1] == 1:
        x = P[:, 0]
        return np.maximum.accumulate(x) - np.minimum.accumulate(x)
    sq = np.einsum("td,td->t", P, P)
    row_max = np.zeros(n)  # max_{j ≤ t} ‖θ_t − θ_j‖
    block = max(1, 4_000_000 // max(n, 1))
    for s in range(0, n, block):
        e = min(n, s + block)
        d2 = sq[s:e, None] + sq[None, :e] - 2.0 * (P[s:e] @ P[:e].T)
        d2[:, s:][np.triu_indices(e - s, k=1)] = 0.0  # only pairs j ≤ t
        row_max[s:e] = np.sqrt(np.maximum(d2, 0.0).max(axis=1))
    return np.maximum.accumulate(row_max)


@dataclass(frozen=True)
class BoundTerms:
    """Theorem 4.1's right-hand side at one or several horizons T, with the constants it used."""

    T: np.ndarray
    G: np.ndarray
    G_inf: np.ndarray
    D: np.ndarray
    D_inf: np.ndarray
    gamma: float
    lam: float
    term1: np.ndarray
    term2: np.ndarray
    term3: np.ndarray

    @property
    def total(self) -> np.ndarray:
        return self.term1 + self.term2 + self.term3


def theorem41_bound(grads, points, theta_stars, Ts, alpha, beta1, beta2, lam) -> BoundTerms:
    """The bound of Theorem 4.1 at each horizon in ``Ts``, with its constants computed from the run.

    ``grads`` and ``points`` are (T, d) histories (g_t, θ_t), ``theta_stars`` is (len(Ts), d): the
    comparator θ*_T for each horizon. For horizon T: G = max_{t≤T} ‖g_t‖₂, G∞ = max_{t≤T} ‖g_t‖∞,
    D and D∞ the largest ℓ2 and ℓ∞ distance between any two of θ_1..θ_T, θ*_T (the proof bounds
    ‖θ_t − θ*‖, so θ* is included), v̂_T from Algorithm 1 with β2, γ = β1²/√β2, and

        term1 = D²/(2α(1−β1)) · Σ_i √(T·v̂_{T,i})
        term2 = α(1+β1)G∞/((1−β1)·√(1−β2)·(1−γ)²) · Σ_i ‖g_{1:T,i}‖₂
        term3 = Σ_i D∞²·G∞·√(1−β2)/(2α(1−β1)(1−λ)²)
    """
    grads = np.asarray(grads, dtype=np.float64)
    points = np.asarray(points, dtype=np.float64)
    if grads.ndim != 2 or points.shape != grads.shape:
        raise ValueError(f"grads and points must both be (T, d), got {grads.shape} and {points.shape}")
    n, d = grads.shape
    Ts = np.atleast_1d(np.asarray(Ts))
    if Ts.dtype.kind not in "iu" or np.any(Ts < 1) or np.any(Ts > n):
        raise ValueError(f"every horizon in Ts must be an integer in [1, {n}], got {Ts}")
    theta_stars = np.asarray(theta_stars, dtype=np.float64).reshape(len(Ts), d)
    if not alpha > 0:
        raise ValueError(f"alpha must be > 0, got {alpha!r}")
    if not (0 <= beta1 < 1 and 0 < beta2 < 1):
        raise ValueError(f"need beta1 in [0, 1) and beta2 in (0, 1), got beta1={beta1!r}, beta2={beta2!r}")
    gamma = beta1**2 / np.sqrt(beta2)
    if not gamma < 1:
        raise ValueError(f"Theorem 4.1 needs gamma = beta1**2/sqrt(beta2) < 1, got {gamma:.6g}")
    if not 0 < lam < 1:
        raise ValueError(f"lam must be in (0, 1), got {lam!r}")

    idx = Ts - 1
    G = np.maximum.accumulate(np.linalg.norm(grads, axis=1))[idx]
    G_inf = np.maximum.accumulate(np.abs(grads).max(axis=1))[idx]
    diam = running_diameter(points)[idx]
    D = np.array([max(diam[k], np.linalg.norm(points[:T] - theta_stars[k], axis=1).max())
                  for k, T in enumerate(Ts)])
    hi = np.maximum.accumulate(points, axis=0)[idx]
    lo = np.minimum.accumulate(points, axis=0)[idx]
    D_inf = (np.maximum(hi, theta_stars) - np.minimum(lo, theta_stars)).max(axis=1)
    _, v_hat = adam_moments(grads, beta1, beta2)
    g_norms = np.sqrt(np.cumsum(grads**2, axis=0))[idx]  # ‖g_{1:T,i}‖₂

    term1 = D**2 / (2 * alpha * (1 - beta1)) * np.sqrt(Ts[:, None] * v_hat[idx]).sum(axis=1)
    term2 = (alpha * (1 + beta1) * G_inf / ((1 - beta1) * np.sqrt(1 - beta2) * (1 - gamma) ** 2)
             * g_norms.sum(axis=1))
    term3 = d * D_inf**2 * G_inf * np.sqrt(1 - beta2) / (2 * alpha * (1 - beta1) * (1 - lam) ** 2)
    return BoundTerms(Ts, G, G_inf, D, D_inf, float(gamma), float(lam), term1, term2, term3)


# ----------------------------------------------------------------------------- the lemmas


def _as_lemma_grads(g) -> np.ndarray:
    g = np.asarray(g, dtype=np.float64)
    if g.ndim == 0 or g.shape[0] == 0:
        raise ValueError(f"g must be (T,), (T, d) or (T, d, *lanes) with T >= 1, got shape {g.shape}")
    if not np.all(np.isfinite(g)):
        raise ValueError("g must be finite")
    return g[:, None] if g.ndim == 1 else g


def lemma103_sides(g, G_inf=None) -> tuple[np.ndarray, np.ndarray]:
    """Lemma 10.3: Σ_{t≤T} √(g_{t,i}²/t) ≤ 2·G∞·‖g_{1:T,i}‖₂. Returns (lhs, rhs), shape (d, *lanes).

    ``g`` is (T,), (T, d) or (T, d, *lanes) (each lane is its own sequence of d-vectors); ``G_inf``
    defaults to the smallest admissible value, max_{t,i} |g_{t,i}| of each lane.
    """
    g = _as_lemma_grads(g)
    t = np.arange(1, g.shape[0] + 1).reshape((-1,) + (1,) * (g.ndim - 1))
    if G_inf is None:
        G_inf = np.abs(g).max(axis=(0, 1))
    elif np.any(np.asarray(G_inf) < np.abs(g).max(axis=(0, 1))):
        raise ValueError("G_inf is smaller than max |g|: the lemma's hypothesis ‖g_t‖∞ ≤ G∞ fails")
    lhs = np.sum(np.abs(g) / np.sqrt(t), axis=0)
    rhs = 2 * G_inf * np.sqrt(np.sum(g**2, axis=0))
    return lhs, rhs


def lemma104_sides(g, beta1, beta2) -> tuple[np.ndarray, np.ndarray]:
    """Lemma 10.4: Σ_{t≤T} m̂_{t,i}²/√(t·v̂_{t,i}) ≤ (2/(1−γ))·(1/√(1−β2))·‖g_{1:T,i}‖₂, γ = β1²/√β2 < 1.

    m̂_t, v̂_t are Algorithm 1's bias-corrected moments (ε = 0; a term with m̂ = 0 counts 0).
    ``beta1``, ``beta2`` may be arrays broadcasting over the lanes of ``g`` (T, d, *lanes).
    Returns (lhs, rhs), shape (d, *lanes).
    """
    g = _as_lemma_grads(g)
    beta1 = np.asarray(beta1, dtype=np.float64)
    beta2 = np.asarray(beta2, dtype=np.float64)
    if np.any((beta1 < 0) | (beta1 >= 1)) or np.any((beta2 <= 0) | (beta2 >= 1)):
        raise ValueError(f"need beta1 in [0, 1) and beta2 in (0, 1), got beta1={beta1}, beta2={beta2}")
    gamma = beta1**2 / np.sqrt(beta2)
    if np.any(gamma >= 1):
        raise ValueError(f"Lemma 10.4 needs gamma = beta1**2/sqrt(beta2) < 1, got max {gamma.max():.6g}")
    m_hat, v_hat = adam_moments(g, beta1, beta2)
    t = np.arange(1, g.shape[0] + 1).reshape((-1,) + (1,) * (g.ndim - 1))
    den = np.sqrt(t * v_hat)
    terms = np.zeros(np.broadcast_shapes(m_hat.shape, den.shape))
    np.divide(m_hat**2, den, out=terms, where=den > 0)
    lhs = terms.sum(axis=0)
    rhs = 2 / (1 - gamma) / np.sqrt(1 - beta2) * np.sqrt(np.sum(g**2, axis=0))
    return lhs, rhs


def lane_search(score, x0, iters: int, rng: np.random.Generator, sigma0: float = 0.2):
    """Maximise ``score`` by random local search in [0, 1]^P, one independent search per lane.

    ``x0`` is (P, L): L starting points; ``score(x)`` maps (P, L) to (L,). Each iteration perturbs
    every lane by σ·N(0, 1) (clipped to the cube), keeps improvements, and adapts σ per lane
    (×1.5 after a success, ×0.9 after a failure, within [1e-6, 0.5]). Returns (best x, best score,
    number of score evaluations per lane).
    """
    x = np.clip(np.asarray(x0, dtype=np.float64), 0.0, 1.0)
    if x.ndim != 2:
        raise ValueError(f"x0 must be (P, L), got shape {x.shape}")
    best = np.asarray(score(x), dtype=np.float64)
    sigma = np.full(x.shape[1], sigma0)
    for _ in range(iters):
        cand = np.clip(x + sigma * rng.normal(size=x.shape), 0.0, 1.0)
        s = score(cand)
        better = s > best
        x[:, better] = cand[:, better]
        best = np.where(better, s, best)
        sigma = np.clip(np.where(better, sigma * 1.5, sigma * 0.9), 1e-6, 0.5)
    return x, best, iters + 1


# ----------------------------------------------------------------------------- the proof's Γ_t


def gamma_increments(v_hat, alpha) -> np.ndarray:
    """Γ_t = √v̂_t/α_t − √v̂_{t−1}/α_{t−1} with α_t = α/√t, for t = 2..T (axis 0); shape (T−1, ...)."""
    v_hat = np.asarray(v_hat, dtype=np.float64)
    if v_hat.ndim == 0 or v_hat.shape[0] < 2:
        raise ValueError(f"v_hat needs at least two steps on axis 0, got shape {v_hat.shape}")
    if not alpha > 0:
        raise ValueError(f"alpha must be > 0, got {alpha!r}")
    t = np.arange(1, v_hat.shape[0] + 1).reshape((-1,) + (1,) * (v_hat.ndim - 1))
    r = np.sqrt(t * v_hat) / alpha  # √v̂_t/α_t
    return np.diff(r, axis=0)


def telescoping_check(points, theta_star, v_hat, alpha) -> dict:
    """The proof's sum S = Σ_i [(θ_{1,i}−θ*_i)²·√v̂_{1,i}/α_1 + Σ_{t=2..T} (θ_{t,i}−θ*_i)²·Γ_{t,i}]
    against its telescoped bound B = D∞²·Σ_i √v̂_{T,i}/α_T (valid when every Γ_{t,i} ≥ 0) and the
    bound that always holds, B⁺ = D∞²·Σ_i [√v̂_{1,i}/α_1 + Σ_t max(Γ_{t,i}, 0)].
    """
    points = np.asarray(points, dtype=np.float64)
    v_hat = np.asarray(v_hat, dtype=np.float64)
    if points.ndim == 1:
        points, v_hat = points[:, None], v_hat.reshape(-1, 1)
    if points.shape != v_hat.shape:
        raise ValueError(f"points and v_hat must have the same shape, got {points.shape} and {v_hat.shape}")
    theta_star = np.broadcast_to(np.asarray(theta_star, dtype=np.float64), points.shape[1:])
    T = points.shape[0]
    gam = gamma_increments(v_hat, alpha)
    sq = (points - theta_star) ** 2
    first = np.sqrt(v_hat[0]) / alpha
    S = float(np.sum(sq[0] * first) + np.sum(sq[1:] * gam))
    D_inf = float((np.maximum(points.max(axis=0), theta_star) - np.minimum(points.min(axis=0), theta_star)).max())
    B = D_inf**2 * float(np.sum(np.sqrt(T * v_hat[-1]) / alpha))
    B_plus = D_inf**2 * float(np.sum(first) + np.sum(np.maximum(gam, 0.0)))
    return {"S": S, "B": B, "B_plus": B_plus, "D_inf": D_inf,
            "negative_fraction": float(np.mean(gam < 0)), "min_gamma": float(gam.min())}
