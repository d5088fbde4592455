"""Temporal averaging of the parameters (Kingma & Ba 2015, §7.2; Polyak & Juditsky 1992).

θ̄_t = β·θ̄_{t−1} + (1 − β)·θ_t with θ̄_0 = 0 unrolls to θ̄_t = Σ_{i=1}^t (1 − β)·β^(t−i)·θ_i, whose
weights sum to 1 − β^t. Dividing by it (the bias correction θ̂_t = θ̄_t/(1 − β^t)) leaves a weighted
average with weights w_i = (1 − β)·β^(t−i)/(1 − β^t) that sum to 1 (:func:`average_weights`,
:func:`explicit_average`); its mean age is :func:`mean_age`.

The rest of the module runs the experiments of the chapter: many seeds at once, as the rows of one
parameter array (every optimizer in ``adamlab.optim`` acts element by element, so a row evolves
exactly as a separate run would), on a noisy quadratic (:func:`noisy_quadratic_grad`) and on a
synthetic logistic regression with a held-out set (:class:`LogisticTask`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from adamlab.optim import TemporalAverage
from adamlab.optim.base import check_unit_interval

__all__ = [
    "average_weights",
    "explicit_average",
    "mean_age",
    "mean_se",
    "run_with_averages",
    "noisy_quadratic_grad",
    "LogisticTask",
]


def _check_t(t) -> int:
    if isinstance(t, bool) or not isinstance(t, (int, np.integer)) or t < 1:
        raise ValueError(f"t must be an integer >= 1, got {t!r}")
    return int(t)


def average_weights(beta, t) -> np.ndarray:
    """w_i = (1 − β)·β^(t−i)/(1 − β^t), i = 1..t: the weights of θ̂_t on θ_1..θ_t (§7.2); Σ w_i = 1."""
    beta = check_unit_interval("beta", beta)
    t = _check_t(t)
    k = np.arange(t - 1, -1, -1, dtype=np.float64)  # age t − i of θ_i
    return (1.0 - beta) * beta**k / -np.expm1(t * np.log(beta)) if beta > 0 else (k == 0) * 1.0


def explicit_average(thetas, beta) -> np.ndarray:
    """θ̂_t = Σ_i w_i·θ_i for ``thetas`` of shape (t, ...) (iterates θ_1..θ_t), in float64."""
    thetas = np.asarray(thetas, dtype=np.float64)
    if thetas.ndim == 0 or thetas.shape[0] == 0:
        raise ValueError(f"thetas must hold at least one iterate along axis 0, got shape {thetas.shape}")
    w = average_weights(beta, thetas.shape[0])
    return np.tensordot(w, thetas, axes=(0, 0))


def mean_age(beta, t) -> float:
    """Σ_i (t − i)·w_i = β/(1 − β) − t·β^t/(1 − β^t): how many steps θ̂_t lags behind θ_t on average."""
    beta = check_unit_interval("beta", beta)
    t = _check_t(t)
    if beta == 0.0:
        return 0.0
    return beta / (1.0 - beta) - t * beta**t / -np.expm1(t * np.log(beta))


def mean_se(x, axis=-1) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard error of the mean (sample standard deviation / √n) along ``axis``."""
    x = np.asarray(x, dtype=np.float64)
    n = x.shape[axis]
    if n < 2:
        raise ValueError(f"need at least 2 values along axis {axis} for a standard error, got {n}")
    return x.mean(axis=axis), x.std(axis=axis, ddof=1) / np.sqrt(n)


def run_with_averages(opt, theta0, grad: Callable, steps: int, betas: Sequence[float],
                      evaluate: Callable, record: Sequence[int]) -> dict:
    """Run ``opt`` from ``theta0`` for ``steps`` steps, keeping one TemporalAverage per β.

    ``grad(theta, t)`` returns the stochastic gradient at step t; ``evaluate(theta)`` returns one
    number per run (per row of ``theta0``). At each step in ``record`` the last iterate θ_t and each
    bias-corrected average θ̂_t are evaluated. Returns ``{"steps": (R,), "last": (R, runs),
    "avg": {β: (R, runs)}}``.
    """
    steps = _check_t(steps)
    record = sorted(set(int(r) for r in record))
    if not record or record[0] < 1 or record[-1] > steps:
        raise ValueError(f"record must hold steps in 1..{steps}, got {record!r}")
    params = {"theta": np.array(theta0, dtype=np.float64)}
    avgs = {b: TemporalAverage(beta=b) for b in betas}
    last, avg = [], {b: [] for b in betas}
    wanted = set(record)
    for t in range(1, steps + 1):
        opt.update(params, {"theta": grad(params["theta"], t)})
        for a in avgs.values():
            a.update(params)
        if t in wanted:
            last.append(evaluate(params["theta"]))
            for b, a in avgs.items():
                avg[b].append(evaluate(a.average()["theta"]))
    return {"steps": np.array(record), "last": np.array(last),
            "avg": {b: np.array(v) for b, v in avg.items()}}


def noisy_quadratic_grad(theta, h, sigma, rng) -> np.ndarray:
    """Stochastic gradient of f(θ) = ½·Σ_j h_j·θ_j²: h·θ + σ·ξ with ξ ~ N(0, I) from ``rng``."""
    return h * theta + sigma * rng.normal(size=np.shape(theta))


@dataclass
class LogisticTask:
    """Synthetic binary logistic regression, one independent data set per run (row).

    Features x ~ N(0, I_d); a true weight vector w* ~ N(0, (snr²/d)·I) per run; labels
    y ~ Bernoulli(σ(x·w*)). ``X_train`` (runs, n_train, d), ``y_train`` (runs, n_train), and the
    same for a held-out set. Build with :meth:`make`.
    """

    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    w_true: np.ndarray

    @classmethod
    def make(cls, rng, runs, n_train, n_test, d, snr=2.0) -> "LogisticTask":
        w = rng.normal(size=(runs, d)) * snr / np.sqrt(d)

        def sample(n):
            X = rng.normal(size=(runs, n, d))
            p = 1.0 / (1.0 + np.exp(-np.einsum("rnd,rd->rn", X, w)))
            return X, (rng.random(size=(runs, n)) < p).astype(np.float64)

        X_train, y_train = sample(n_train)
        X_test, y_test = sample(n_test)
        return cls(X_train, y_train, X_test, y_test, w)

    @staticmethod
    def loss(w, X, y) -> np.ndarray:
        """Mean negative log-likelihood per run: mean_n log(1 + exp(−s·x·w)), s = 2y − 1."""
        z = np.einsum("rnd,rd->rn", X, w)
        return np.mean(np.logaddexp(0.0, -(2.0 * y - 1.0) * z), axis=1)

    def test_loss(self, w) -> np.ndarray:
        return self.loss(w, self.X_test, self.y_test)

    def train_loss(self, w) -> np.ndarray:
        return self.loss(w, self.X_train, self.y_train)

    def minibatch_grad(self, w, rng, batch) -> np.ndarray:
        """Gradient of the mean loss on ``batch`` training examples per run, drawn with replacement."""
        runs, n, _ = self.X_train.shape
        idx = rng.integers(0, n, size=(runs, batch))
        X = np.take_along_axis(self.X_train, idx[:, :, None], axis=1)
        y = np.take_along_axis(self.y_train, idx, axis=1)
        p = 1.0 / (1.0 + np.exp(-np.einsum("rbd,rd->rb", X, w)))
        return np.einsum("rbd,rb->rd", X, p - y) / batch
