"""Weight initialisers: Glorot & Bengio (2010) uniform and He et al. (2015) normal.

Fan-in and fan-out of a dense weight ``(n_in, n_out)`` are ``n_in`` and ``n_out``; of a conv kernel
``(kh, kw, c_in, c_out)`` they are ``kh·kw·c_in`` and ``kh·kw·c_out``. Values are drawn in float64
from ``rng`` and rounded once to ``dtype``, so a float32 and a float64 layer built from the same
seed start from the same weights (up to float32 rounding).
"""

from __future__ import annotations

import math

import numpy as np

from .base import check_dtype

__all__ = ["fans", "glorot_uniform", "he_normal"]


def fans(shape: tuple[int, ...]) -> tuple[int, int]:
    """``(fan_in, fan_out)`` of a weight ``(n_in, n_out)`` or a kernel ``(kh, kw, c_in, c_out)``."""
    shape = tuple(int(s) for s in shape)
    if len(shape) == 2:
        return shape[0], shape[1]
    if len(shape) == 4:
        field = shape[0] * shape[1]
        return field * shape[2], field * shape[3]
    raise ValueError(f"fans are defined for 2-d weights and 4-d kernels, got shape {shape}")


def glorot_uniform(shape: tuple[int, ...], rng: np.random.Generator,
                   dtype=np.float32) -> np.ndarray:
    """U(−a, a) with a = √(6 / (fan_in + fan_out)) (Glorot & Bengio 2010, eq. 16)."""
    dt = check_dtype(dtype)
    fan_in, fan_out = fans(shape)
    a = math.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-a, a, size=shape).astype(dt)


def he_normal(shape: tuple[int, ...], rng: np.random.Generator, dtype=np.float32) -> np.ndarray:
    """N(0, 2 / fan_in) (He et al. 2015, for layers followed by a ReLU)."""
    dt = check_dtype(dtype)
    fan_in, _ = fans(shape)
    return (rng.standard_normal(size=shape) * math.sqrt(2.0 / fan_in)).astype(dt)
