"""Plain stochastic gradient descent and the two momentum methods of Sutskever et al. (2013).

* :class:`SGD`: θ ← θ − α·g.
* :class:`Momentum` (classical / heavy-ball momentum, Sutskever et al. 2013, eq. 1):
  v ← μ·v − α·∇f(θ); θ ← θ + v.
* :class:`Nesterov` (Nesterov's accelerated gradient, Sutskever et al. 2013, eq. 2):
  v ← μ·v − α·∇f(θ + μ·v); θ ← θ + v.

Reference: Sutskever, Martens, Dahl & Hinton, "On the importance of initialization and momentum in
deep learning", ICML 2013.
"""

from __future__ import annotations

import numpy as np

from .base import Optimizer, check_unit_interval


class SGD(Optimizer):
    """θ_t ← θ_{t−1} − α·g_t (no state)."""

    slots = ()

    def __init__(self, lr=0.01) -> None:
        super().__init__(lr)

    def hyperparams(self) -> dict:
        return {"lr": self.lr}

    def _step(self, theta, g, state, work, c) -> None:
        (lr,) = c
        (w,) = work
        np.multiply(g, lr, out=w)
        np.subtract(theta, w, out=theta)  # θ_t ← θ_{t−1} − α·g_t


class Momentum(Optimizer):
    """Classical momentum, Sutskever et al. 2013 eq. (1): v ← μ·v − α·g; θ ← θ + v.

    ``velocity`` starts at 0, so the first step equals SGD's; with ``momentum=0`` every step does.
    """

    slots = ("velocity",)

    def __init__(self, lr=0.01, momentum=0.9) -> None:
        super().__init__(lr)
        self.momentum = check_unit_interval("momentum", momentum)

    def hyperparams(self) -> dict:
        return {"lr": self.lr, "momentum": self.momentum}

    def _step(self, theta, g, state, work, c) -> None:
        (lr,) = c
        (vel,) = state
        (w,) = work
        np.multiply(vel, self.momentum, out=vel)
        np.multiply(g, lr, out=w)
        np.subtract(vel, w, out=vel)  # v_t ← μ·v_{t−1} − α·g_t
        np.add(theta, vel, out=theta)  # θ_t ← θ_{t−1} + v_t


class Nesterov(Momentum):
    """Nesterov's accelerated gradient, Sutskever et al. 2013 eq. (2).

    The paper's iteration is v_t = μ·v_{t−1} − α·∇f(θ_{t−1} + μ·v_{t−1}), θ_t = θ_{t−1} + v_t: the
    gradient is taken at the look-ahead point θ_{t−1} + μ·v_{t−1}. Because ``update`` receives the
    gradient at the *current* parameters, the ``params`` dict holds the look-ahead point

        φ_t = θ_t + μ·v_t        (φ_0 = θ_0, since v_0 = 0),

    and the update, rewritten in φ, is

        v_t ← μ·v_{t−1} − α·g_t,   g_t = ∇f(φ_{t−1}),
        φ_t ← φ_{t−1} + μ·v_t − α·g_t.

    This is exactly eq. (2) (substitute θ_t = φ_t − μ·v_t). The paper's iterate θ_t is
    ``params[name] - momentum * opt.state[name]["velocity"]``. With ``momentum=0`` it is SGD.
    Hyper-parameters and state are Momentum's; only the rule differs.
    """

    def _step(self, theta, g, state, work, c) -> None:
        (lr,) = c
        (vel,) = state
        (w,) = work
        mu = self.momentum
        np.multiply(vel, mu, out=vel)
        np.multiply(g, lr, out=w)
        np.subtract(vel, w, out=vel)  # v_t ← μ·v_{t−1} − α·∇f(θ_{t−1} + μ·v_{t−1})
        np.subtract(theta, w, out=theta)  # φ_t ← φ_{t−1} − α·g_t ...
        np.multiply(vel, mu, out=w)
        np.add(theta, w, out=theta)  # ... + μ·v_t   (θ_t = φ_t − μ·v_t = θ_{t−1} + v_t)
