"""Small deterministic test objectives (float64) and a driver that records an optimizer's path.

* :func:`rosenbrock`: f(x, y) = (a − x)² + b·(y − x²)², minimum 0 at (a, a²).
* :func:`quadratic`: f(θ) = ½·Σ_i s_i·θ_i², minimum 0 at θ = 0; ill-conditioned when the scales
  s_i differ (condition number max s / min s).
* :func:`optimize`: run ``steps`` updates of an optimizer from θ_0 and return the path θ_0..θ_steps.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def rosenbrock(theta, a: float = 1.0, b: float = 100.0) -> tuple[float, np.ndarray]:
    """Rosenbrock's function and its gradient at ``theta`` of shape (2,); minimum at (a, a²)."""
    theta = np.asarray(theta, dtype=np.float64)
    if theta.shape != (2,):
        raise ValueError(f"rosenbrock needs theta of shape (2,), got {theta.shape}")
    x, y = theta
    r = y - x * x
    f = (a - x) ** 2 + b * r**2
    grad = np.array([-2.0 * (a - x) - 4.0 * b * x * r, 2.0 * b * r])
    return float(f), grad


def quadratic(theta, scales) -> tuple[float, np.ndarray]:
    """f(θ) = ½·Σ scales_i·θ_i² and its gradient scales·θ."""
    theta = np.asarray(theta, dtype=np.float64)
    scales = np.asarray(scales, dtype=np.float64)
    if scales.shape != theta.shape:
        raise ValueError(f"scales has shape {scales.shape} but theta has shape {theta.shape}")
    grad = scales * theta
    return float(0.5 * np.dot(theta.ravel(), grad.ravel())), grad


def optimize(opt, fun: Callable, theta0, steps: int) -> np.ndarray:
    """Run ``steps`` updates of ``opt`` on ``fun`` (θ ↦ (f, ∇f)) from ``theta0``.

    Uses ``params = {"theta": θ}`` and ``opt.update``; returns the float64 path, an array of shape
    (steps + 1, d) whose row k is θ_k (row 0 is θ_0). ``theta0`` is copied, never modified.
    """
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 0:
        raise ValueError(f"steps must be a non-negative integer, got {steps!r}")
    theta = np.array(theta0, dtype=np.float64, copy=True)
    if theta.ndim != 1:
        raise ValueError(f"theta0 must be a 1-D vector, got shape {theta.shape}")
    params = {"theta": theta}
    path = np.empty((steps + 1, theta.size), dtype=np.float64)
    path[0] = theta
    for k in range(1, steps + 1):
        _, grad = fun(theta)
        opt.update(params, {"theta": np.asarray(grad, dtype=np.float64)})
        path[k] = theta
    return path
