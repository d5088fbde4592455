"""AdaGrad (Duchi, Hazan & Singer, JMLR 2011), in the diagonal form the Adam paper compares with (§5).

s_t ← s_{t−1} + g_t²;  θ_t ← θ_{t−1} − α·g_t / (√s_t + ε).
"""

from __future__ import annotations

import numpy as np

from .base import Optimizer, check_nonnegative


class AdaGrad(Optimizer):
    """Diagonal AdaGrad: s ← s + g²; θ ← θ − α·g/(√s + ε)  (Duchi et al. 2011; Adam paper §5).

    ``eps=0`` is Duchi et al.'s form without ε; where s = 0 every gradient so far was 0 and the step
    is 0, not 0/0. (So is the step of an entry whose g² underflows to 0: |g| < 1e-19 in float32.)

    Overflow: a gradient entry whose square overflows (|g| > 1.8e19 in float32) is rejected with
    FloatingPointError before anything is written (``Optimizer.squares_gradient``). The sum s itself
    can still reach inf after many steps of large gradients (Σ g² > 3.4e38 in float32); that entry
    then stops moving. Checking s after each step would cost a pass over it, so it is not done.
    """

    slots = ("sum_sq",)
    nonnegative_slots = ("sum_sq",)
    squares_gradient = True  # |g| above SQUARE_LIMIT is rejected before any write

    def __init__(self, lr=0.01, eps=1e-8) -> None:
        super().__init__(lr)
        self.eps = check_nonnegative("eps", eps)

    def hyperparams(self) -> dict:
        return {"lr": self.lr, "eps": self.eps}

    def _step(self, theta, g, state, work, c) -> None:
        (lr,) = c
        (s,) = state
        (w,) = work
        np.multiply(g, g, out=w)
        np.add(s, w, out=s)  # s_t ← s_{t−1} + g_t²
        np.sqrt(s, out=w)
        np.add(w, self.eps, out=w)
        if self.eps == 0.0:
            np.divide(g, w, out=w, where=w != 0)  # s = 0: g = 0 (or g² underflowed); step 0
        else:
            np.divide(g, w, out=w)
        np.multiply(w, lr, out=w)
        np.subtract(theta, w, out=theta)  # θ_t ← θ_{t−1} − α·g_t/(√s_t + ε)
