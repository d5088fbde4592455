"""How the book prints numbers that every machine must reproduce.

A compared notebook output (one that nbval checks) may show only what any IEEE-754 machine, any
BLAS and any thread count prints alike. Round-off-level quantities, such as the error of an
identity, therefore appear as bounds: ``below(err, 1e-12)`` prints ``below 1e-12``. The bound is
chosen with room to spare over the error, so that another CPU's digits stay under it, and the
notebook asserts the same bound next to the print. Other results are rounded (``sig``) to a
precision that their numerical error cannot reach. ``CONTRIBUTING.md`` ("Writing a chapter") states
the whole policy.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["below", "sig"]


def _bound_text(bound: float) -> str:
    """The bound as a reader writes it: ``1e-12``, ``2.5e-9``, ``7e-16``, ``0.001``."""
    exp = int(f"{bound:e}".split("e")[1])
    if -4 <= exp <= 4:
        return f"{bound:g}"
    mantissa = f"{bound / 10.0 ** exp:.6f}".rstrip("0").rstrip(".")
    if mantissa == "10":  # 9.9999996e-13 read as 10e-13
        mantissa, exp = "1", exp + 1
    return f"{mantissa}e{exp}"


def below(value, bound: float) -> str:
    """``"below 1e-12"`` when every entry of ``|value|`` is below ``bound``.

    ``value`` may be a number or an array (its largest magnitude counts). When the bound does not
    hold, the text says so and shows the value (``"3.1e-11, NOT below 1e-12"``), so that the
    compared output changes and the reader sees why; the notebook's ``assert`` beside the print
    carries the verification.
    """
    bound = float(bound)
    if not (math.isfinite(bound) and bound > 0):
        raise ValueError(f"bound must be a finite positive number, got {bound!r}")
    worst = float(np.max(np.abs(np.asarray(value, dtype=np.float64)))) if np.size(value) else 0.0
    if worst < bound:
        return f"below {_bound_text(bound)}"
    return f"{worst:.1e}, NOT below {_bound_text(bound)}"


def sig(value: float, digits: int = 3) -> str:
    """``value`` rounded to ``digits`` significant digits, in plain or scientific notation.

    Use it for results whose numerical error is far below the last digit shown (for example a
    loss after training, to 3 digits); a round-off-level quantity is printed with :func:`below`.
    """
    if not isinstance(digits, int) or digits < 1:
        raise ValueError(f"digits must be a positive integer, got {digits!r}")
    return f"{float(value):.{digits}g}"
