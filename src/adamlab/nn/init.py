"""Weight initialisers: Glorot & Bengio (2010) uniform and He et al. (2015) normal.

Fan-in and fan-out of a dense weight ``(n_in, n_out)`` are ``n_in`` and ``n_out``; of a conv kernel
``(kh, kw, c_in, c_out)`` they are ``kh·kw·c_in`` and ``kh·kw·c_out``. Values are drawn in float64
from ``rng`` and rounded once to ``dtype``, so a float32 and a float64 layer built from the same
seed start from the same weights (up to float32 rounding).

**Perturbation mode.** With ``ADAMLAB_PERTURB=REL`` (or ``REL:SEED``) in the environment, or after
:func:`set_perturbation`, each initialiser multiplies its draw by 1 + u, u ~ U[−REL, REL] per entry,
before rounding to ``dtype``. u comes from its own stream, seeded by SEED (0 by default) and the
unperturbed values: ``rng`` is not touched, so data order, dropout masks and every later draw are
those of the normal run, and the same draw gets the same perturbation in any process and in any
order of construction. Every model's weights come from these initialisers (biases start at 0 and
stay 0). With REL = 1e-6 the mode shows which printed results survive a last-bit change of the
start, as another CPU's BLAS kernels make one: CI's second nbval pass runs under it
(``CONTRIBUTING.md``, "Outputs that every machine reproduces").
"""

from __future__ import annotations

import math
import os
import zlib

import numpy as np

from .base import check_dtype

__all__ = ["fans", "glorot_uniform", "he_normal", "perturbation", "set_perturbation",
           "PERTURB_ENV"]

PERTURB_ENV = "ADAMLAB_PERTURB"
_FORMAT = "REL or REL:SEED with 0 <= REL < 1 and SEED a non-negative integer, e.g. 1e-6 or 1e-6:3"


def _parse(text: str) -> tuple[float, int] | None:
    """``(rel, seed)`` from ``"REL"`` or ``"REL:SEED"``; None when empty or REL is 0."""
    text = text.strip()
    if not text:
        return None
    rel_text, _, seed_text = text.partition(":")
    try:
        rel = float(rel_text)
        seed = int(seed_text) if seed_text.strip() else 0
    except ValueError:
        rel, seed = math.nan, 0
    if not (0.0 <= rel < 1.0) or seed < 0:
        raise ValueError(f"{PERTURB_ENV}={text!r} is not valid: expected {_FORMAT} "
                         f"(empty or 0 for off)")
    return None if rel == 0.0 else (rel, seed)


def perturbation() -> tuple[float, int] | None:
    """The perturbation in force, ``(rel, seed)``, or None when the mode is off (the default)."""
    return _parse(os.environ.get(PERTURB_ENV, ""))


def set_perturbation(rel: float | None, seed: int = 0) -> None:
    """Turn the perturbation mode on (``rel`` > 0) or off (``rel`` None or 0).

    It sets ``ADAMLAB_PERTURB``, so worker processes started afterwards (the experiment engine's
    process pool) perturb alike. Models built before the call keep their parameters.
    """
    if rel is None or rel == 0:
        os.environ.pop(PERTURB_ENV, None)
        return
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise ValueError(f"perturbation seed must be a non-negative integer, got {seed!r}")
    text = f"{float(rel)!r}:{int(seed)}"
    _parse(text)  # the same check as the environment variable gets
    os.environ[PERTURB_ENV] = text


def _finish(w: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """The float64 draw ``w``, perturbed if the mode is on, rounded to ``dtype``."""
    mode = perturbation()
    if mode is not None:
        rel, seed = mode
        w = np.ascontiguousarray(w, dtype=np.float64)
        stream = np.random.default_rng([seed, zlib.crc32(w.tobytes())])
        w = w * (1.0 + stream.uniform(-rel, rel, size=w.shape))
    return w.astype(dtype)


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
    return _finish(rng.uniform(-a, a, size=shape), dt)


def he_normal(shape: tuple[int, ...], rng: np.random.Generator, dtype=np.float32) -> np.ndarray:
    """N(0, 2 / fan_in) (He et al. 2015, for layers followed by a ReLU)."""
    dt = check_dtype(dtype)
    fan_in, _ = fans(shape)
    return _finish(rng.standard_normal(size=shape) * math.sqrt(2.0 / fan_in), dt)
