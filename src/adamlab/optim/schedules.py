"""Step-size schedules: callables ``lr(t)`` for t = 1, 2, ... accepted wherever ``lr`` is."""

from __future__ import annotations

import math
import numbers

from .base import check_positive


class InverseSqrt:
    """α_t = α/√t, the decay of Theorem 4.1 (§4) and of the logistic-regression runs (§6.1)."""

    def __init__(self, alpha) -> None:
        self.alpha = check_positive("alpha", alpha)

    def __call__(self, t) -> float:
        if isinstance(t, bool) or not isinstance(t, numbers.Integral) or t < 1:
            raise ValueError(f"t must be an integer >= 1, got {t!r}")
        return self.alpha / math.sqrt(t)

    def __repr__(self) -> str:
        return f"inverse_sqrt(alpha={self.alpha!r})"

    def __eq__(self, other) -> bool:
        return isinstance(other, InverseSqrt) and other.alpha == self.alpha

    def __hash__(self) -> int:
        return hash((InverseSqrt, self.alpha))


def inverse_sqrt(alpha) -> InverseSqrt:
    """The schedule t ↦ alpha/√t (Kingma & Ba 2015, §4 and §6.1)."""
    return InverseSqrt(alpha)
