"""Finite-difference gradient checks (float64) for layers and models.

Every layer and model in :mod:`adamlab.nn` and :mod:`adamlab.models` is tested against central
differences, (f(x + h·e_i) − f(x − h·e_i)) / 2h, whose error is O(h²). A stochastic function
(dropout, the VAE's noise) is checked with its randomness fixed: pass a function that builds a new
``np.random.default_rng(seed)`` on every call, so every evaluation draws the same mask or noise.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

__all__ = ["numerical_gradient", "relative_error"]


def numerical_gradient(f: Callable[[], float], x: np.ndarray, *, h: float = 1e-6,
                       indices: np.ndarray | None = None) -> np.ndarray:
    """Central-difference gradient of the scalar ``f()`` with respect to the array ``x``.

    ``f`` takes no arguments and reads ``x`` (which is perturbed in place and restored exactly).
    With ``indices`` (flat indices into ``x``), only those coordinates are estimated and the rest of
    the returned array is 0; use it for big arrays. ``x`` must be float64: in float32 a step h that
    is small enough for O(h²) truncation error drowns in rounding error.
    """
    if x.dtype != np.float64:
        raise TypeError(f"gradient checks need a float64 array, got {x.dtype}")
    flat = x.reshape(-1)
    if not np.shares_memory(flat, x):
        raise ValueError("x must be contiguous so that it can be perturbed in place")
    out = np.zeros(x.size)
    for i in (range(x.size) if indices is None else np.asarray(indices).ravel()):
        old = flat[i]
        flat[i] = old + h
        f_plus = f()
        flat[i] = old - h
        f_minus = f()
        flat[i] = old
        out[i] = (f_plus - f_minus) / (2.0 * h)
    return out.reshape(x.shape)


def relative_error(analytic: np.ndarray, numeric: np.ndarray) -> float:
    """‖a − n‖₂ / max(‖a‖₂ + ‖n‖₂, 1e-300): 0 when equal, ≈ 1 when unrelated, 2 when opposite."""
    a = np.asarray(analytic, dtype=np.float64)
    n = np.asarray(numeric, dtype=np.float64)
    if a.shape != n.shape:
        raise ValueError(f"shape mismatch: analytic {a.shape} vs numeric {n.shape}")
    return float(np.linalg.norm(a - n) / max(np.linalg.norm(a) + np.linalg.norm(n), 1e-300))
