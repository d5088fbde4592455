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
    """``1e-12`` for 1e-12, ``2e-09`` written as ``2e-9``: the bound as a reader would write it."""
    mantissa, exponent = f"{bound:.0e}".split("e")
    if float(mantissa) * 10.0 ** int(exponent) != bound:
        mantissa, exponent = f"{bound:.1e}".split("e")
    exp = int(exponent)
    if -4 <= exp <= 4:
        return f"{bound:g}"
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
