"""RMSProp (Tieleman & Hinton 2012) and AdaDelta (Zeiler 2012): running averages of g².

RMSProp, as the Adam paper describes it (§5, §6.4):
    v_t ← β2·v_{t−1} + (1−β2)·g_t²
    (bias_correction=True: v̂_t = v_t/(1−β2^t); otherwise v̂_t = v_t)
    θ_t ← θ_{t−1} − α·g_t/(√v̂_t + ε)
and, with momentum μ > 0, momentum on the rescaled gradient (Graves 2013):
    u_t ← μ·u_{t−1} − α·g_t/(√v̂_t + ε);  θ_t ← θ_{t−1} + u_t     (u is the ``velocity`` slot).

AdaDelta, Zeiler 2012 Algorithm 1:
    E[g²]_t ← ρ·E[g²]_{t−1} + (1−ρ)·g_t²
    Δx_t ← −(√(E[Δx²]_{t−1} + ε) / √(E[g²]_t + ε))·g_t
    E[Δx²]_t ← ρ·E[Δx²]_{t−1} + (1−ρ)·Δx_t²
    x_t ← x_{t−1} + lr·Δx_t          (lr = 1 is Zeiler's algorithm; E[Δx²] accumulates the Δx
                                      before lr, as torch.optim.Adadelta does)
"""

from __future__ import annotations

import math

import numpy as np

from .base import Optimizer, bias_correction, check_nonnegative, check_positive, check_unit_interval, ema


class RMSProp(Optimizer):
    """RMSProp (Tieleman & Hinton 2012), optional bias correction of v and momentum (Graves 2013).

    Slots: ``("v",)``, or ``("v", "velocity")`` when ``momentum > 0``. With ``bias_correction=True``
    and ``momentum=0`` this is Adam with β1 = 0.

    Overflow: a gradient entry whose square overflows (|g| > 1.8e19 in float32) would make v
    infinite and freeze the entry; it is rejected with FloatingPointError before anything is
    written (``Optimizer.squares_gradient``).
    """

    slots = ("v",)
    nonnegative_slots = ("v",)
    squares_gradient = True  # |g| above SQUARE_LIMIT is rejected before any write

    def __init__(self, lr=0.001, beta2=0.9, eps=1e-8, momentum=0.0, bias_correction=False) -> None:
        super().__init__(lr)
        self.beta2 = check_unit_interval("beta2", beta2)
        self.eps = check_nonnegative("eps", eps)
        self.momentum = check_unit_interval("momentum", momentum)
        if not isinstance(bias_correction, bool):
            raise ValueError(f"bias_correction must be True or False, got {bias_correction!r}")
        self.bias_correction = bias_correction
        if self.momentum > 0.0:
            self.slots = ("v", "velocity")

    def hyperparams(self) -> dict:
        return {"lr": self.lr, "beta2": self.beta2, "eps": self.eps, "momentum": self.momentum,
                "bias_correction": self.bias_correction}

    def _constants(self, t: int, lr: float) -> tuple:
        # α/(√(v/(1−β2^t)) + ε) = α·√(1−β2^t)/(√v + ε·√(1−β2^t)): fold v̂ into two scalars.
        k = math.sqrt(bias_correction(self.beta2, t)) if self.bias_correction else 1.0
        return (lr * k, self.eps * k)

    def _step(self, theta, g, state, work, c) -> None:
        lr_t, eps_hat = c
        v = state[0]
        (w,) = work
        np.multiply(g, g, out=w)
        ema(v, w, self.beta2, out=w)  # v_t ← β2·v_{t−1} + (1−β2)·g_t²
        np.sqrt(v, out=w)
        np.add(w, eps_hat, out=w)  # √v̂_t + ε, times √(1−β2^t) when bias-corrected
        if eps_hat == 0.0:
            np.divide(g, w, out=w, where=w != 0)  # ε = 0, v = 0 (g = 0 or g² underflowed): step 0
        else:
            np.divide(g, w, out=w)
        np.multiply(w, lr_t, out=w)  # α·g_t/(√v̂_t + ε)
        if self.momentum > 0.0:
            vel = state[1]
            np.multiply(vel, self.momentum, out=vel)
            np.subtract(vel, w, out=vel)  # u_t ← μ·u_{t−1} − α·g_t/(√v̂_t + ε)
            np.add(theta, vel, out=theta)  # θ_t ← θ_{t−1} + u_t
        else:
            np.subtract(theta, w, out=theta)  # θ_t ← θ_{t−1} − α·g_t/(√v̂_t + ε)


class AdaDelta(Optimizer):
    """AdaDelta, Zeiler 2012 Algorithm 1 (``lr`` scales the applied step; lr = 1 is the paper)."""

    slots = ("E_g2", "E_dx2")
    nonnegative_slots = ("E_g2", "E_dx2")
    squares_gradient = True  # |g| above SQUARE_LIMIT is rejected before any write
    n_work = 2

    def __init__(self, lr=1.0, rho=0.95, eps=1e-6) -> None:
        super().__init__(lr)
        self.rho = check_unit_interval("rho", rho)
        self.eps = check_positive("eps", eps)

    def hyperparams(self) -> dict:
        return {"lr": self.lr, "rho": self.rho, "eps": self.eps}

    def _step(self, theta, g, state, work, c) -> None:
        (lr,) = c
        E_g2, E_dx2 = state
        w, dx = work
        rho, eps = self.rho, self.eps
        np.multiply(g, g, out=w)
        ema(E_g2, w, rho, out=w)  # E[g²]_t ← ρ·E[g²]_{t−1} + (1−ρ)·g_t²
        np.add(E_dx2, eps, out=dx)
        np.add(E_g2, eps, out=w)
        np.divide(dx, w, out=dx)
        np.sqrt(dx, out=dx)
        np.multiply(dx, g, out=dx)  # −Δx_t = (RMS[Δx]_{t−1}/RMS[g]_t)·g_t
        np.multiply(dx, dx, out=w)
        ema(E_dx2, w, rho, out=w)  # E[Δx²]_t ← ρ·E[Δx²]_{t−1} + (1−ρ)·Δx_t²
        np.multiply(dx, lr, out=dx)
        np.subtract(theta, dx, out=theta)  # x_t ← x_{t−1} + lr·Δx_t
